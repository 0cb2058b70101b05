"""VLAPolicy: ViT + language backbone + fusion + memory + action/value heads (DESIGN.md section 3).

    policy = VLAPolicy(PolicyConfig.preset("cpu"), env.single_observation_space, env.single_action_space)
    state = policy.initial_state(env.num_envs)
    obs, _ = env.reset()
    masks = torch.zeros(env.num_envs)                    # 0: first step of an episode
    action, log_prob, value, state = policy.act(obs, state, masks=masks)
    ...
    log_prob, entropy, value = policy.evaluate_actions(obs_seq, actions, state0, masks)  # masks (T, B)

Observations: see `observations.py` (rgb, optional depth, instruction strings or token ids,
optional cached `vision_tokens`). Masks follow SB3 / habitat-lab: `masks[b] = 0` where obs row b
is the first step of a new episode; the recurrent state of that row is zeroed before the step.
With the env's autoreset: `same_step` -> the masks of the observations a step returns are
`1 - (terminated | truncated)` of that step; `next_step` (the default of the native env) -> they are
`1 - done` of the step before (a step that ends returns the old episode's final frame; the next one
returns the new episode's first). At `reset()` all masks are 0 (or start from `initial_state`).
`act` takes optional masks (B,) (None: no reset); `evaluate_actions` takes the state at t = 0,
obs/actions as (T, B, ...) or flat (T * B, ...) time-major, masks (T, B), and returns flat
(T * B,) log-probs, entropies and values equal to stepping `act` T times.

Candidate actions (candidates.py): when the observation space has `candidates` (C, F) float and
`candidate_mask` (C,) int/bool, the action space must be Discrete(1 + C) (0 STOP, c >= 1 candidate
c - 1). The candidates are encoded per candidate and attended from the state (the value and action
heads see them), and action c >= 1 is allowed iff `candidate_mask[c - 1]` is nonzero: the others get
probability exactly 0 in `act`, `evaluate_actions` and `action_log_prob` (log-prob about -1e9).
A rollout must keep both keys for `evaluate_actions` (`policy.candidate_keys` names them).
Action mask (action_mask.py): when the observation space has `action_mask` (n,) int/bool beside a Discrete(n)
action space, the actions where it is 0 get probability 0 in the same three methods (`policy.obs_keys` has it).

Map input: `policy.map_key` names a (S, S, C) Box observation, a top-down map around the agent (ALFRED-v0's
`semantic_map`), read by map_encoder.MapEncoder (FiLM from the instruction) and added like the state inputs;
`policy.progress_key` (ALFRED-v0's `progress`) makes that FiLM read the instruction words attended from it;
`policy.view_key` (with the planner, `policy.map_plan`) names a (T, K) per-object-type observation (ALFRED-v0's
`type_view`) read through the planner's goal softmax.

State inputs: `policy.state_keys` names flat float Box observations (B, D_k), concatenated, projected by one
linear layer and added to the fused features before the memory (R2R's `last_move`, a GPS+compass, a robot's
proprioception); rollouts keep them (`obs_keys`).

Feature caching: with `freeze_vision=True` the ViT runs without gradients; a training loop may
store `encode_vision(obs)` in its rollouts as `obs["vision_tokens"]` so PPO epochs do not re-encode.
Instruction embeddings of a frozen language backbone are cached per instruction (language.py).

Checkpoints: `save_pretrained(dir)` writes config.json (config, spaces) and model.safetensors
(atomically, no pickle); `from_pretrained(dir)` rebuilds the policy offline. A frozen backbone loaded
from a path (MiniLM or `language.path`) is not copied into the checkpoint unless
`language.save_weights=True`; it is reloaded from its source.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch
from torch import nn

from vlarena.policies.action_mask import ACTION_MASK_KEY, action_mask_input, check_action_mask_space
from vlarena.policies.candidates import (
    CANDIDATE_KEYS,
    Attention,
    CandidateEncoder,
    CandidateScoringHead,
    candidate_inputs,
    candidate_spec,
)
from vlarena.policies.checkpoint import (
    CONFIG_NAME,
    FORMAT_VERSION,
    WEIGHTS_NAME,
    load_state,
    load_tensors,
    read_json,
    save_tensors,
    space_from_dict,
    space_to_dict,
    write_json,
)
from vlarena.policies.config import PolicyConfig
from vlarena.policies.diffusion_head import DiffusionPolicyHead
from vlarena.policies.fusion import Fusion
from vlarena.policies.heads import ValueHead, build_action_head
from vlarena.policies.landmarks import LandmarkMatcher
from vlarena.policies.language import Instructions, LanguageEncoder, resolve_backbone
from vlarena.policies.map_encoder import MapEncoder, check_map_space, check_view_space
from vlarena.policies.memory import build_memory
from vlarena.policies.observations import (
    check_obs,
    check_observation_space,
    check_state_space,
    flatten_time,
    state_input,
)
from vlarena.policies.vision import VisionEncoder

POLICY_FORMAT = "vlarena.policy"
LANGUAGE_BACKBONE_PREFIX = "language.backbone."

Obs = Mapping[str, Any]


class VLAPolicy(nn.Module):
    def __init__(self, config: PolicyConfig | None, observation_space: gym.Space, action_space: gym.Space):
        super().__init__()
        config = PolicyConfig.from_dict((config or PolicyConfig()).to_dict())  # a private copy
        config.language.backbone = resolve_backbone(config.language)
        check_observation_space(observation_space, config.vision)
        self.candidate_spec = candidate_spec(observation_space, action_space)
        self.masks_actions = check_action_mask_space(observation_space, action_space)
        self.config = config
        self.observation_space = observation_space
        self.action_space = action_space
        self.vision = VisionEncoder(config.vision)
        self.language = LanguageEncoder(config.language)
        self.fusion = Fusion(config.fusion, self.vision.out_dim, self.language.out_dim,
                             config.vision.num_tokens)
        self.state_size = check_state_space(observation_space, config.state_keys)
        self.state_proj = nn.Linear(self.state_size, self.fusion.out_dim) if self.state_size else None
        self.map_encoder = None
        if config.map_key is not None:
            size, channels = check_map_space(observation_space, config.map_key)
            progress = 0 if config.progress_key is None else check_state_space(
                observation_space, [config.progress_key], "policy.progress_key")
            view = 0 if config.view_key is None else check_view_space(observation_space, config.view_key,
                                                                       channels - 2)
            self.map_encoder = MapEncoder(channels, size, self.language.out_dim, self.fusion.out_dim, progress,
                                          config.map_plan, view)
        self.memory = build_memory(config.memory, self.fusion.out_dim)
        dim = self.memory.out_dim
        if config.memory.attend_instruction and self.candidate_spec is not None:
            raise ValueError("policy.memory.attend_instruction is for action spaces without candidates; with candidate "
                             "actions the candidate encoder reads the instruction (policy.candidates.attend_instruction)")
        self.readout = Attention(dim, self.language.out_dim, dim, dim) if config.memory.attend_instruction else None
        self.landmarks = None
        if config.candidates.landmarks:
            if self.candidate_spec is None:
                raise ValueError(f"policy.candidates.landmarks={config.candidates.landmarks} scores candidate actions, "
                                 f"but the observation space has no 'candidates' + 'candidate_mask' (candidates.py)")
            self.landmarks = LandmarkMatcher(config.candidates.landmarks, self.candidate_spec.features,
                                             self.vision.out_dim, self.language.out_dim)
        self.candidates = None if self.candidate_spec is None else CandidateEncoder(
            dataclasses.replace(self.candidate_spec, features=self.candidate_spec.features + bool(self.landmarks)),
            dim, config.candidates, self.vision.out_dim, self.language.out_dim)
        if config.action_head == "diffusion":
            self.action_head = DiffusionPolicyHead(dim, action_space, config.ddim_steps)
        elif self.candidate_spec is not None and config.candidates.head == "score":
            self.action_head = CandidateScoringHead(dim, self.candidate_spec.num)
        else:
            self.action_head = build_action_head(action_space, dim, config.init_log_std)
        self.value_head = ValueHead(dim)
        if config.freeze_vision:
            self.vision.requires_grad_(False)
            self.vision.eval()

    # ---- bookkeeping ---------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.value_head.v.weight.device

    def train(self, mode: bool = True) -> VLAPolicy:
        super().train(mode)
        if self.config.freeze_vision:
            self.vision.eval()
        return self

    @property
    def obs_keys(self) -> tuple[str, ...]:
        """Observation keys besides vision and instruction that a rollout must keep for `evaluate_actions`."""
        mask = (ACTION_MASK_KEY,) if self.masks_actions else ()
        return (*self.candidate_keys, *mask, *self._flat_keys, *self._map_keys, *self._view_keys)

    @property
    def _map_keys(self) -> tuple[str, ...]:
        return () if self.config.map_key is None else (self.config.map_key,)

    @property
    def _view_keys(self) -> tuple[str, ...]:
        return () if self.config.view_key is None else (self.config.view_key,)

    @property
    def _flat_keys(self) -> tuple[str, ...]:
        """The (B, D) observations besides the candidates: state keys and the progress key."""
        progress = () if self.config.progress_key is None else (self.config.progress_key,)
        return (*self.config.state_keys, *progress)

    @property
    def candidate_keys(self) -> tuple[str, ...]:
        """The candidate-action observation keys this policy reads (empty without candidates)."""
        return CANDIDATE_KEYS if self.candidate_spec is not None else ()

    def initial_state(self, batch_size: int) -> torch.Tensor:
        """Zero recurrent state (B, layers, hidden) on the policy's device ((B, 0, 0) without memory)."""
        return self.memory.initial_state(batch_size, self.device)

    def tokenize(self, texts: Sequence[str], max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids int64 (B, max_length) and mask bool (B, max_length) for `instruction_ids` observations."""
        return self.language.tokenize(texts, max_length)

    def _to_device(self, value: Any) -> Any:
        return value.to(self.device, non_blocking=True) if isinstance(value, torch.Tensor) else value

    # ---- encoders --------------------------------------------------------------------------------
    def encode_vision(self, obs: Obs) -> torch.Tensor:
        """Visual tokens (B, N, width); taken from obs['vision_tokens'] when present."""
        if "vision_tokens" in obs:
            return self._to_device(obs["vision_tokens"])
        rgb, depth = self._to_device(obs["rgb"]), self._to_device(obs.get("depth"))
        if self.config.freeze_vision:
            with torch.no_grad():
                return self.vision(rgb, depth if self.config.vision.use_depth else None)[0]
        return self.vision(rgb, depth if self.config.vision.use_depth else None)[0]

    def encode_instruction(self, obs: Obs) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(tokens (B, L, hidden), mask bool (B, L), pooled (B, hidden)) of the instruction."""
        return self._instructions(obs).per_item()

    def _instructions(self, obs: Obs) -> Instructions:
        """The observation's instructions, encoded once per distinct one (language.Instructions)."""
        if "instruction" in obs:
            return self.language.encode(texts=obs["instruction"])
        return self.language.encode(ids=self._to_device(obs["instruction_ids"]).long(),
                                    mask=self._to_device(obs["instruction_mask"]).bool())

    def encode_observation(self, obs: Obs) -> torch.Tensor:
        """Fused features (B, fusion.out_dim): vision + language + fusion, before memory and heads."""
        return self._encode(obs)[0]

    def _encode(self, obs: Obs) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor | None]:
        """(fused features, the encoders' tokens the candidate encoder may attend to, the map planner's goal logits
        or None)."""
        check_obs(obs, self.config.vision.use_depth)
        vis = self.encode_vision(obs)
        instr = self._instructions(obs)
        if instr.index.shape[0] != vis.shape[0]:
            raise ValueError(f"the observation holds {vis.shape[0]} frames but {instr.index.shape[0]} instructions")
        tokens, mask, index = instr.tokens.to(vis.dtype), instr.mask, instr.index
        pooled = instr.pooled.to(vis.dtype)[index]
        context = {"vision": vis, "instruction": tokens, "instruction_mask": mask, "instruction_index": index}
        fused = self.fusion(vis, tokens, mask, pooled, index)
        if self.state_proj is not None:
            state = state_input(obs, self.config.state_keys, self.state_size)
            fused = fused + self.state_proj(self._to_device(state).to(fused.dtype))
        if self.map_encoder is not None:
            grid = _required(obs, self.config.map_key, "policy.map_key")
            progress = None
            if self.config.progress_key is not None:
                progress = self._to_device(state_input(obs, [self.config.progress_key], self.map_encoder.progress_dim,
                                                       "policy.progress_key"))
            view = None if self.config.view_key is None else _required(obs, self.config.view_key, "policy.view_key")
            mapped, goal_logits = self.map_encoder(self._to_device(grid), pooled.to(fused.dtype), tokens, mask,
                                                   progress, index, self._to_device(view))
            return fused + mapped, context, goal_logits
        return fused, context, None

    # ---- the policy contract ---------------------------------------------------------------------
    def _candidates(self, obs: Obs) -> tuple[torch.Tensor, torch.Tensor] | None:
        return None if self.candidate_spec is None else candidate_inputs(obs, self.candidate_spec, self.device)

    def _heads_input(self, out: torch.Tensor, cands: tuple[torch.Tensor, torch.Tensor] | None,
                     context: dict[str, torch.Tensor], allowed: torch.Tensor | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(action-head features, value features, action mask or None) of the memory output (N, D); `allowed`:
        the observation's action mask (action_mask.py), combined with the candidates' validity."""
        if cands is None:
            if self.readout is not None:
                out = out + self.readout(out[:, None], context["instruction"], context["instruction_mask"],
                                         context.get("instruction_index"))[:, 0]
            return out, out, allowed
        scored = {}
        if self.landmarks is not None:  # the match score joins each candidate's features (landmarks.py)
            match, scored["landmark_near"], scored["landmark_named"] = self.landmarks(cands[0], **context)
            cands = (torch.cat([cands[0], match.to(cands[0].dtype)], dim=-1), cands[1])
        z, enc = self.candidates(out, *cands, **context)
        context.update(scored)
        valid = cands[1]
        action_mask = torch.cat([valid.new_ones(valid.shape[0], 1), valid], dim=1)  # STOP is always allowed
        if allowed is not None:
            action_mask = action_mask & allowed
        features = torch.cat([z.unsqueeze(1), enc], dim=1) if isinstance(self.action_head, CandidateScoringHead) else z
        return features, z, action_mask

    def _allowed(self, obs: Obs) -> torch.Tensor | None:
        return action_mask_input(obs, int(self.action_space.n), self.device) if self.masks_actions else None

    def _step(self, obs: Obs, state: torch.Tensor, masks: torch.Tensor | None
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor]:
        cands, allowed = self._candidates(obs), self._allowed(obs)  # checked before the encoders run
        features, context, _ = self._encode(obs)
        out, state = self.memory.step(features, self._to_device(state), self._to_device(masks))
        return (*self._heads_input(out, cands, context, allowed), state)

    def act(self, obs: Obs, state: torch.Tensor, deterministic: bool = False,
            masks: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(action, log_prob (B,), value (B,), next state) for one step of B envs."""
        features, value_features, action_mask, state = self._step(obs, state, masks)
        action, log_prob = self.action_head.act(features, deterministic, action_mask)
        return action, log_prob, self.value_head(value_features), state

    def get_value(self, obs: Obs, state: torch.Tensor, masks: torch.Tensor | None = None) -> torch.Tensor:
        """Values (B,) (e.g. to bootstrap the last step of a rollout)."""
        return self.value_head(self._step(obs, state, masks)[1])

    def action_log_prob(self, obs: Obs, actions: torch.Tensor, state: torch.Tensor,
                        masks: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """One step: (log-prob (B,) of `actions`, next state) (e.g. a reference policy's log-probs for a KL)."""
        features, _, action_mask, state = self._step(obs, state, masks)
        return self.action_head.log_prob(features, self._to_device(actions), action_mask), state

    def evaluate_actions(self, obs: Obs, actions: torch.Tensor, state: torch.Tensor, masks: torch.Tensor,
                         return_features: bool = False) -> tuple[torch.Tensor, ...]:
        """(log_prob, entropy, value), each flat (T * B,), of `actions` over a (T, B) rollout. With
        `return_features`, a 4th item: {"belief": memory outputs (T, B, H), "vision": pooled ViT tokens (T, B, D)}
        and, with a map planner (policy.map_plan), "map_goal_logits" (T, B, K) over the map's object types, with
        policy.candidates.landmarks, "landmark_near" (T, B, C, K) and "landmark_named" (T, B, K) logits (the
        inputs of auxiliary losses such as CPC|A and DAgger's goal_coef and landmark_coef)."""
        if not isinstance(masks, torch.Tensor) or masks.dim() != 2:
            raise ValueError(f"masks must be a tensor (T, B), got {getattr(masks, 'shape', type(masks).__name__)}")
        t, b = masks.shape
        obs = flatten_time(obs, t, b, self._flat_keys, self._map_keys, self._view_keys)
        cands, allowed = self._candidates(obs), self._allowed(obs)
        features, context, goal_logits = self._encode(obs)
        out, _ = self.memory.sequence(features.view(t, b, -1), self._to_device(state), self._to_device(masks))
        features, value_features, action_mask = self._heads_input(out.reshape(t * b, -1), cands, context, allowed)
        log_prob, entropy = self.action_head.evaluate(features, self._to_device(actions), action_mask)
        if not return_features:
            return log_prob, entropy, self.value_head(value_features)
        extras = {"belief": out.reshape(t, b, -1), "vision": context["vision"].mean(dim=1).view(t, b, -1)}
        if goal_logits is not None:
            extras["map_goal_logits"] = goal_logits.view(t, b, -1)
        if self.landmarks is not None:
            extras["landmark_near"] = context["landmark_near"].view(t, b, *context["landmark_near"].shape[1:])
            extras["landmark_named"] = context["landmark_named"].view(t, b, -1)
        return log_prob, entropy, self.value_head(value_features), extras

    # ---- checkpoints -----------------------------------------------------------------------------
    def _saves_language_backbone(self) -> bool:
        lang = self.config.language
        if lang.save_weights is not None:
            return lang.save_weights
        return not lang.freeze or lang.backbone == "bert_random"

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write `config.json` and `model.safetensors` into `directory` (each atomically)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        with_lang = self._saves_language_backbone()
        state = {k: v for k, v in self.state_dict().items() if with_lang or not k.startswith(LANGUAGE_BACKBONE_PREFIX)}
        config = self.config.to_dict()
        config["vision"]["weights"] = None  # the weights are in model.safetensors
        save_tensors(directory / WEIGHTS_NAME, state, metadata={"format": POLICY_FORMAT})
        write_json(directory / CONFIG_NAME, {
            "format": POLICY_FORMAT, "version": FORMAT_VERSION, "class": type(self).__name__,
            "config": config, "observation_space": space_to_dict(self.observation_space),
            "action_space": space_to_dict(self.action_space), "language_backbone_saved": with_lang})
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, config: PolicyConfig | None = None,
                        observation_space: gym.Space | None = None, action_space: gym.Space | None = None,
                        device: str | torch.device | None = None) -> VLAPolicy:
        """Rebuild a saved policy (offline). A `config` or spaces given here replace the saved ones;
        tensors that then do not fit raise `CheckpointMismatchError` naming each of them."""
        directory = Path(directory)
        meta = read_json(directory / CONFIG_NAME)
        if meta.get("format") != POLICY_FORMAT or not isinstance(meta.get("version"), int):
            raise ValueError(f"{directory / CONFIG_NAME} is not a vlarena policy config (field 'format' must be "
                             f"{POLICY_FORMAT!r}, 'version' an int; got {meta.get('format')!r}, {meta.get('version')!r})")
        if meta["version"] > FORMAT_VERSION:
            raise ValueError(f"{directory / CONFIG_NAME} has version {meta['version']}; this vlarena reads up to "
                             f"{FORMAT_VERSION}")
        config = config or PolicyConfig.from_dict(meta["config"])
        policy = cls(config, observation_space or space_from_dict(meta["observation_space"]),
                     action_space or space_from_dict(meta["action_space"]))
        state, _ = load_tensors(directory / WEIGHTS_NAME)
        skip = () if meta.get("language_backbone_saved", True) else (LANGUAGE_BACKBONE_PREFIX,)
        load_state(policy, state, str(directory / WEIGHTS_NAME), skip_prefixes=skip)
        return policy.to(device) if device is not None else policy


def _required(obs: Obs, key: str, option: str) -> torch.Tensor:
    """obs[key], which `option` names, or a clear error when it is missing."""
    value = obs.get(key)
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"observation {key!r} ({option}) is missing; keys {sorted(obs)}")
    return value
