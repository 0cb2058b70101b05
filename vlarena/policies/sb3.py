"""stable-baselines3 integration: a features extractor over our encoder stack and a VecEnv adapter.

    from stable_baselines3 import PPO
    from vlarena.policies.sb3 import make_sb3_vec_env, sb3_policy_kwargs

    venv = make_sb3_vec_env("ObjectNav", num_envs=8, language=cfg.language, max_length=32, width=32, height=32)
    model = PPO("MultiInputPolicy", venv, n_steps=64, policy_kwargs=sb3_policy_kwargs(cfg))
    model.learn(2048)

`sb3_policy_kwargs` sets `ortho_init=False`: SB3's default orthogonal re-initialisation would
overwrite every `nn.Linear` of the extractor, pretrained language backbone included.

SB3 cannot take `Text` spaces, so the adapter hands the instruction over as token ids
(`instruction_ids` int64 (L,), `instruction_mask` int64 (L,), from our tokenizer of the same language
config as the extractor). SB3's PPO is feedforward, so the extractor has no memory: ViT + language
backbone + fusion -> `fusion.out_dim` features. SB3 transposes uint8 images to channels-first and
divides them by 255 (`normalize_images=True`, its default); the extractor expects exactly that
(`images_scaled=True`) and maps them to [-1, 1] as `VisionEncoder.preprocess` does.

The adapter wraps our native batched env (torch tensors) in SB3's `VecEnv` contract: numpy
observations, same-step autoreset with `infos[i]["terminal_observation"]` (the env must run with
`autoreset_mode="same_step"`; its `info["final_obs"]` is used), `TimeLimit.truncated`, `is_success`
and the `episode` dict (`r`, `l`, `t`) that SB3's logger reads (no Monitor wrapper needed).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.vec_env import VecEnv

from vlarena.policies.config import LanguageConfig, PolicyConfig
from vlarena.policies.fusion import Fusion
from vlarena.policies.language import InstructionTokenizer, LanguageEncoder, resolve_backbone
from vlarena.policies.vision import VisionEncoder


class VLAFeaturesExtractor(BaseFeaturesExtractor):
    """ViT + language backbone + fusion for SB3's `MultiInputPolicy` (keys rgb, instruction_ids/mask, [depth])."""

    def __init__(self, observation_space: gym.spaces.Dict, config: PolicyConfig | dict | None = None,
                 images_scaled: bool = True):
        config = PolicyConfig.from_dict(config if isinstance(config, dict) else (config or PolicyConfig()).to_dict())
        config.language.backbone = resolve_backbone(config.language)
        super().__init__(observation_space, features_dim=config.fusion.out_dim)
        spaces = getattr(observation_space, "spaces", {})
        needed = ["rgb", "instruction_ids", "instruction_mask"] + (["depth"] if config.vision.use_depth else [])
        missing = [k for k in needed if k not in spaces]
        if missing:
            raise ValueError(f"VLAFeaturesExtractor needs observation keys {needed}; missing {missing} in "
                             f"{sorted(spaces)} (use VlarenaVecEnv to turn instructions into token ids)")
        if "candidates" in spaces or "candidate_mask" in spaces:
            raise ValueError("VLAFeaturesExtractor does not support candidate actions ('candidates' + "
                             "'candidate_mask': SB3's action heads cannot mask padded candidates); use VLAPolicy")
        self.config = config
        self.images_scaled = images_scaled
        self.vision = VisionEncoder(config.vision)
        self.language = LanguageEncoder(config.language)
        self.fusion = Fusion(config.fusion, self.vision.out_dim, self.language.out_dim,
                             config.vision.num_tokens)
        if config.freeze_vision:
            self.vision.requires_grad_(False)

    def _pixels(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        rgb = obs["rgb"].float()
        if rgb.shape[1] != 3 and rgb.shape[-1] == 3:  # channels-last (images not transposed by SB3)
            rgb = rgb.permute(0, 3, 1, 2)
        x = rgb * 2.0 - 1.0 if self.images_scaled else rgb / 127.5 - 1.0
        if self.config.vision.use_depth:
            depth = obs["depth"].float()
            depth = depth.permute(0, 3, 1, 2) if depth.shape[-1] == 1 else depth
            x = torch.cat([x, depth * (2.0 / self.config.vision.max_depth) - 1.0], dim=1)
        return self.vision.resize(x)

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        x = self._pixels(obs)
        if self.config.freeze_vision:
            with torch.no_grad():
                vis = self.vision.forward_pixels(x)
        else:
            vis = self.vision.forward_pixels(x)
        ids = obs["instruction_ids"].round().long()
        instr = self.language.encode(ids=ids, mask=obs["instruction_mask"] > 0.5)
        return self.fusion(vis, instr.tokens.to(vis.dtype), instr.mask, instr.pooled.to(vis.dtype)[instr.index],
                           instr.index)


class VlarenaVecEnv(VecEnv):
    """SB3 `VecEnv` over a native vlarena vector env (same-step autoreset, numpy out, token ids)."""

    def __init__(self, env: gym.vector.VectorEnv, tokenizer: InstructionTokenizer | LanguageConfig | None = None,
                 max_length: int = 32, include_depth: bool = False):
        if env.metadata.get("autoreset_mode") != AutoresetMode.SAME_STEP:
            raise ValueError(f"VlarenaVecEnv needs an env with same-step autoreset (SB3 semantics), got "
                             f"{env.metadata.get('autoreset_mode')}: make it with autoreset_mode='same_step'")
        if not isinstance(tokenizer, InstructionTokenizer):
            tokenizer = InstructionTokenizer(tokenizer)
        self.env = env
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.include_depth = include_depth
        single = env.single_observation_space
        spaces = {"rgb": single["rgb"],
                  "instruction_ids": gym.spaces.Box(0, tokenizer.vocab_size - 1, (max_length,), np.int64),
                  "instruction_mask": gym.spaces.Box(0, 1, (max_length,), np.int64)}
        if include_depth:
            spaces["depth"] = single["depth"]
        self._tokens: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._actions: torch.Tensor | None = None
        n = env.num_envs
        self._returns = np.zeros(n, dtype=np.float64)
        self._lengths = np.zeros(n, dtype=np.int64)
        self._t0 = time.time()
        super().__init__(n, gym.spaces.Dict(spaces), env.single_action_space)

    # ---- conversion ------------------------------------------------------------------------------
    def _token_rows(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        new = [t for t in dict.fromkeys(texts) if t not in self._tokens]
        if new:
            if len(self._tokens) + len(new) > 65536:
                self._tokens.clear()
            ids, mask = self.tokenizer.tokenize(new, self.max_length)
            for t, i, m in zip(new, ids.numpy(), mask.numpy().astype(np.int64), strict=True):
                self._tokens[t] = (i, m)
        rows = [self._tokens[t] for t in texts]
        return np.stack([r[0] for r in rows]), np.stack([r[1] for r in rows])

    def _numpy_obs(self, obs: dict[str, Any]) -> dict[str, np.ndarray]:
        ids, mask = self._token_rows(obs["instruction"])
        out = {"rgb": obs["rgb"].cpu().numpy(), "instruction_ids": ids, "instruction_mask": mask}
        if self.include_depth:
            out["depth"] = obs["depth"].cpu().numpy()
        return out

    # ---- VecEnv API --------------------------------------------------------------------------------
    def reset(self) -> dict[str, np.ndarray]:
        seed = self._seeds[0]
        options = self._options[0] or None
        obs, _ = self.env.reset(seed=seed, options=options)
        self._reset_seeds()
        self._reset_options()
        self._returns[:] = 0
        self._lengths[:] = 0
        return self._numpy_obs(obs)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = torch.as_tensor(np.asarray(actions), device=self.env.device).long().reshape(self.num_envs)

    def step_wait(self):
        obs, reward, terminated, truncated, info = self.env.step(self._actions)
        rewards = reward.cpu().numpy().astype(np.float32)
        term, trunc = terminated.cpu().numpy(), truncated.cpu().numpy()
        dones = term | trunc
        self._returns += rewards
        self._lengths += 1
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        if dones.any():
            final = self._numpy_obs(info["final_obs"])
            success = info["final_info"]["success"].cpu().numpy()
            elapsed = round(time.time() - self._t0, 6)
            for i in np.flatnonzero(dones):
                infos[i] = {"terminal_observation": {k: v[i] for k, v in final.items()},
                            "TimeLimit.truncated": bool(trunc[i] and not term[i]), "is_success": bool(success[i]),
                            "episode": {"r": float(self._returns[i]), "l": int(self._lengths[i]), "t": elapsed}}
            self._returns[dones] = 0
            self._lengths[dones] = 0
        return self._numpy_obs(obs), rewards, dones, infos

    def close(self) -> None:
        self.env.close()

    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        return [getattr(self.env, attr_name)] * len(self._get_indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        setattr(self.env, attr_name, value)

    def env_method(self, method_name: str, *method_args, indices=None, **method_kwargs) -> list[Any]:
        result = getattr(self.env, method_name)(*method_args, **method_kwargs)
        return [result] * len(self._get_indices(indices))

    def env_is_wrapped(self, wrapper_class: type, indices=None) -> list[bool]:
        return [False] * len(self._get_indices(indices))

    def get_images(self) -> Sequence[np.ndarray | None]:
        return list(self.env.render())


def sb3_policy_kwargs(config: PolicyConfig | dict | None = None, **extra: Any) -> dict[str, Any]:
    """`policy_kwargs` for SB3's MultiInputPolicy with our extractor; `ortho_init=False` keeps its weights
    (SB3's orthogonal init would re-initialise the ViT, the fusion and the pretrained language backbone)."""
    return {"features_extractor_class": VLAFeaturesExtractor, "features_extractor_kwargs": {"config": config},
            "ortho_init": False, **extra}


def make_sb3_vec_env(task: str = "ObjectNav", num_envs: int = 8, language: LanguageConfig | None = None,
                     max_length: int = 32, include_depth: bool = False, **env_kwargs: Any) -> VlarenaVecEnv:
    """`gym.make_vec("vlarena/<task>-v0", autoreset_mode="same_step", ...)` wrapped for SB3."""
    import vlarena.envs as envs

    env = gym.make_vec(envs.check_task(task), num_envs=num_envs, autoreset_mode="same_step", **env_kwargs)
    return VlarenaVecEnv(env, language, max_length=max_length, include_depth=include_depth)
