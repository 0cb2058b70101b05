"""A single (unbatched) gymnasium env over a native batched env of batch size 1.

Observations are numpy arrays and a string, as `gymnasium.utils.env_checker.check_env` and
ordinary gymnasium users expect; the simulation itself is the same batched torch code.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch

from vlarena.envs.nav_env import NavVectorEnv


def _to_numpy(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        value = value[0].cpu().numpy()
        return value.item() if value.ndim == 0 else value
    if isinstance(value, dict):
        return {k: _to_numpy(v) for k, v in value.items()}
    return value


class SingleNavEnv(gym.Env):
    """`gym.make` face of a NavVectorEnv subclass; episodes end without autoreset."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, vector_cls: type[NavVectorEnv], render_mode: str | None = None, **kwargs: Any):
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.render_mode = render_mode
        self.vec = vector_cls(num_envs=1, **kwargs)
        self.observation_space = self.vec.single_observation_space
        self.action_space = self.vec.single_action_space
        self._done = True

    def _obs(self, obs: dict[str, Any]) -> dict[str, Any]:
        return {k: v[0].cpu().numpy() if isinstance(v, torch.Tensor) else v[0] for k, v in obs.items()}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = dict(options or {})
        if "episode_id" in options:
            options["episode_id"] = [options["episode_id"]]
        obs, info = self.vec.reset(seed=seed, options=options)
        self._done = False
        return self._obs(obs), _to_numpy(info)

    def step(self, action: Any):
        if self._done:
            raise RuntimeError("the episode is over (or never began): call reset() before step()")
        a = np.asarray(action)
        if a.ndim != 0 or not np.issubdtype(a.dtype, np.integer) or not self.action_space.contains(a.item()):
            raise ValueError(f"action {action!r} is outside the action space {self.action_space} "
                             f"({self.vec.action_meanings})")
        obs, reward, terminated, truncated, info = self.vec.step(torch.tensor([int(action)]))
        self._done = bool(terminated[0] or truncated[0])
        return self._obs(obs), float(reward[0]), bool(terminated[0]), bool(truncated[0]), _to_numpy(info)

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        return self.vec.render()[0]


def make_objectnav(render_mode: str | None = None, **kwargs: Any) -> SingleNavEnv:
    from vlarena.envs.objectnav import ObjectNavVectorEnv

    return SingleNavEnv(ObjectNavVectorEnv, render_mode=render_mode, **kwargs)


def make_r2r_ce(render_mode: str | None = None, **kwargs: Any) -> SingleNavEnv:
    from vlarena.envs.r2r_ce import R2RCEVectorEnv

    return SingleNavEnv(R2RCEVectorEnv, render_mode=render_mode, **kwargs)


def make_r2r(render_mode: str | None = None, **kwargs: Any) -> SingleNavEnv:
    from vlarena.envs.r2r_graph import R2RGraphVectorEnv

    return SingleNavEnv(R2RGraphVectorEnv, render_mode=render_mode, **kwargs)


def make_alfred(render_mode: str | None = None, **kwargs: Any) -> SingleNavEnv:
    from vlarena.envs.alfred_env import AlfredVectorEnv

    return SingleNavEnv(AlfredVectorEnv, render_mode=render_mode, **kwargs)
