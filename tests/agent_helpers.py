"""Small envs, policies and fixtures for the agent tests (fast on a 2-core CPU)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode

from tests.policy_helpers import TEXTS, tiny_config
from vlarena.policies import VLAPolicy

OBJECTNAV = dict(num_scenes=1, episodes_per_scene=4, width=16, height=16)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny networks: one thread is as fast, and leaves the other core to whoever shares the machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class ScriptedEnv:
    """A NEXT_STEP vector env with fixed episode lengths per env (like NavVectorEnv's contract, no rendering).

    Episode b lasts `lengths[b]` valid steps and ends terminated, or truncated where `truncate[b]`. Reward:
    1 for action `good_action` (or 1 every step when good_action is None), 0 on reset steps. The rgb frame
    of every observation is filled with a running frame counter (mod 256); `info["expert_action"]` is
    `good_action` (or 1) and `info["success"]` marks terminations."""

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, lengths: list[int], truncate: list[bool] | None = None, good_action: int | None = None,
                 res: int = 16):
        self.num_envs = len(lengths)
        self.device = torch.device("cpu")
        self.lengths = torch.tensor(lengths)
        self.truncate = torch.tensor(truncate or [False] * self.num_envs)
        self.good_action = good_action
        self.res = res
        self.single_observation_space = gym.spaces.Dict({
            "rgb": gym.spaces.Box(0, 255, (res, res, 3), np.uint8), "instruction": gym.spaces.Text(512)})
        self.single_action_space = gym.spaces.Discrete(4)
        self.received: list[torch.Tensor] = []
        self.rewards: list[torch.Tensor] = []

    def _obs(self) -> dict[str, Any]:
        self.frame += 1
        rgb = torch.full((self.num_envs, self.res, self.res, 3), self.frame % 256, dtype=torch.uint8)
        rgb[:, 0, 0, 0] = torch.arange(self.num_envs, dtype=torch.uint8)  # tell the envs apart
        return {"rgb": rgb, "instruction": tuple(TEXTS[b % len(TEXTS)] for b in range(self.num_envs))}

    def _info(self, success: torch.Tensor) -> dict[str, Any]:
        expert = torch.full((self.num_envs,), 1 if self.good_action is None else self.good_action)
        return {"success": success, "expert_action": expert}

    def reset(self, seed: int | None = None, options: dict | None = None):
        self.frame = 0
        self.t = torch.zeros(self.num_envs, dtype=torch.long)
        self.pending = torch.zeros(self.num_envs, dtype=torch.bool)
        return self._obs(), self._info(torch.zeros(self.num_envs, dtype=torch.bool))

    def step(self, actions: torch.Tensor):
        actions = torch.as_tensor(actions)
        self.received.append(actions.clone())
        resetting = self.pending
        self.t = torch.where(resetting, torch.zeros_like(self.t), self.t + 1)
        done = ~resetting & (self.t >= self.lengths)
        terminated, truncated = done & ~self.truncate, done & self.truncate
        reward = torch.ones(self.num_envs) if self.good_action is None else (actions == self.good_action).float()
        reward = torch.where(resetting, torch.zeros_like(reward), reward)
        self.rewards.append(reward.clone())
        self.pending = done
        return self._obs(), reward, terminated, truncated, self._info(terminated)


def tiny_policy(env: Any, seed: int = 0, **overrides: Any) -> VLAPolicy:
    torch.manual_seed(seed)
    return VLAPolicy(tiny_config(**overrides), env.single_observation_space, env.single_action_space)
