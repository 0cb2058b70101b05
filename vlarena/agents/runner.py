"""EnvRunner: steps a vector env with a recurrent policy and keeps what crosses rollouts.

It holds the last observation and info, the policy's recurrent state, the `masks` and `valid`
flags of the next step (the convention is in rollout.py) and running sums over the episodes that
ended (count, success, SPL, return, length; one `.tolist()` when they are read, none per step).

Works with the native vlarena vector envs (torch tensors on their device) and with gymnasium
vector envs that speak numpy (e.g. BabyAI through `gym.make_vec`): their observations, rewards and
infos are moved to torch on the policy's device, and actions go back as numpy. Either way the env
must autoreset NEXT_STEP (gymnasium's default and the native env's).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from gymnasium.vector import AutoresetMode

STAT_NAMES = ("episodes", "success", "spl", "return", "length")


def policy_obs_keys(policy: Any, obs: dict[str, Any]) -> tuple[str, ...]:
    """The observation entries a rollout must keep for `policy.evaluate_actions` (no depth it does not read)."""
    keys = ["vision_tokens"] if policy.config.freeze_vision else ["rgb"]
    if not policy.config.freeze_vision and policy.config.vision.use_depth:
        keys.append("depth")
    keys += ["instruction"] if "instruction" in obs else ["instruction_ids", "instruction_mask"]
    keys += list(getattr(policy, "obs_keys", ()))  # candidate actions (R2R graph) and state keys the policy reads
    return tuple(keys)


class EnvRunner:
    def __init__(self, env: Any, policy: Any, seed: int | None = None):
        mode = env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
        if mode != AutoresetMode.NEXT_STEP:
            raise ValueError(f"training needs an env with autoreset_mode NEXT_STEP ('next_step'), got {mode}: the "
                             "rollout masks and the truncation bootstrap assume it (vlarena/agents/rollout.py)")
        self.env, self.policy = env, policy
        self.num_envs: int = env.num_envs
        self.native = getattr(env, "device", None) is not None
        self.device = torch.device(env.device) if self.native else policy.device
        self._sums = torch.zeros(len(STAT_NAMES), device=self.device)
        self.reported = {"success": True, "spl": True}  # whether the env's info holds them
        self.reset(seed)

    def reset(self, seed: int | None = None) -> None:
        """Reset every env and the recurrent state (all masks 0)."""
        obs, info = self.env.reset(seed=seed)
        b = self.num_envs
        self.obs, self.info = self._to_torch(obs), self._to_torch(info)
        self.state: torch.Tensor = self.policy.initial_state(b)
        self.masks = torch.zeros(b, device=self.device)
        self.valid = torch.ones(b, device=self.device)
        self.episode_return = torch.zeros(b, device=self.device)
        self.episode_length = torch.zeros(b, device=self.device)

    def policy_obs(self) -> dict[str, Any]:
        """The observation for the policy; with a frozen ViT, plus its cached `vision_tokens`."""
        if not self.policy.config.freeze_vision:
            return self.obs
        with torch.no_grad():
            return {**self.obs, "vision_tokens": self.policy.encode_vision(self.obs)}

    def expert_action(self) -> torch.Tensor:
        if "expert_action" not in self.info:
            raise ValueError("imitation needs info['expert_action'] from the env (native envs: expert=True; "
                             f"adapters: give an expert); info holds {sorted(self.info)}")
        return self.info["expert_action"]

    def step(self, actions: torch.Tensor, next_state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Step the env with `actions`, adopt the policy's `next_state`, update masks, valid and the episode sums.
        Returns (reward, terminated, truncated) as torch tensors on the runner's device."""
        sent = actions if self.native else actions.cpu().numpy()
        obs, reward, terminated, truncated, info = self.env.step(sent)
        reward = torch.as_tensor(reward, device=self.device).float()
        terminated = torch.as_tensor(terminated, device=self.device).bool()
        truncated = torch.as_tensor(truncated, device=self.device).bool()
        self.obs, self.info = self._to_torch(obs), self._to_torch(info)
        ended = (terminated | truncated).float() * self.valid
        self.episode_return += reward * self.valid
        self.episode_length += self.valid
        success = self.info.get("success")
        spl = self.info.get("spl")
        self.reported.update(success=success is not None, spl=spl is not None)
        zeros = torch.zeros_like(ended)
        self._sums += torch.stack([
            ended.sum(),
            (ended * (zeros if success is None else success.float())).sum(),
            (ended * (zeros if spl is None else torch.nan_to_num(spl.float(), nan=0.0, posinf=0.0))).sum(),
            (ended * self.episode_return).sum(),
            (ended * self.episode_length).sum()])
        self.episode_return *= 1.0 - ended
        self.episode_length *= 1.0 - ended
        self.state = next_state.detach().float()
        self.masks = self.valid
        self.valid = 1.0 - (terminated | truncated).float()
        return reward, terminated, truncated

    def pop_episode_sums(self) -> torch.Tensor:
        """Sums over the episodes ended since the last call ([episodes, success, spl, return, length]); resets them.
        A tensor, so that data-parallel ranks can all-reduce it before `episode_metrics`."""
        sums, self._sums = self._sums, torch.zeros_like(self._sums)
        return sums

    def episode_metrics(self, sums: torch.Tensor) -> dict[str, float]:
        """Means per ended episode ({"episodes": 0} when none ended); success and spl only if the env reports them."""
        values = dict(zip(STAT_NAMES, sums.tolist(), strict=True))
        n = values.pop("episodes")
        if n == 0:
            return {"episodes": 0}
        return {"episodes": int(n), **{k: v / n for k, v in values.items() if self.reported.get(k, True)}}

    # ---- numpy envs --------------------------------------------------------------------------
    def _to_torch(self, data: dict[str, Any]) -> dict[str, Any]:
        return data if self.native else numpy_to_torch(data, self.device)


def numpy_to_torch(data: dict[str, Any], device: torch.device | str) -> dict[str, Any]:
    """A gymnasium vector env's observation or info dict for the policy: numeric arrays as tensors on
    `device`, the instructions as a tuple of strings, anything else unchanged."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key == "instruction" and isinstance(value, (Sequence, np.ndarray)):
            out[key] = tuple(str(s) for s in value)
        elif isinstance(value, np.ndarray) and value.dtype != object:
            out[key] = torch.as_tensor(value, device=device)
        else:
            out[key] = value
    return out
