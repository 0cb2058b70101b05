"""Tiny policy configs, spaces and observations for the policy tests (fast on a 2-core CPU)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from vlarena.policies import PolicyConfig

TEXTS = ("Go to the red chair in the kitchen.", "Find the blue sofa in the living room.",
         "Walk to the white fridge in the kitchen and stop there.", "Head over to the green plant in the office.")


def tiny_config(**overrides) -> PolicyConfig:
    base = dict(
        vision=dict(image_size=16, patch_size=8, width=32, depth=1, heads=2, mlp_ratio=2.0),
        language=dict(backbone="bert_random", hidden=32, layers=1, heads=2, intermediate=64, max_length=32),
        fusion=dict(dim=32, heads=2, out_dim=32),
        memory=dict(hidden=24),
    )
    for key, value in overrides.items():
        if isinstance(value, dict):
            base[key] = {**base.get(key, {}), **value}
        else:
            base[key] = value
    return PolicyConfig.from_dict(base)


def obs_space(res: int = 16, depth: bool = False, ids_len: int | None = None) -> gym.spaces.Dict:
    spaces: dict[str, gym.Space] = {"rgb": gym.spaces.Box(0, 255, (res, res, 3), np.uint8)}
    if depth:
        spaces["depth"] = gym.spaces.Box(0.0, 10.0, (res, res, 1), np.float32)
    if ids_len:
        spaces["instruction_ids"] = gym.spaces.Box(0, 30000, (ids_len,), np.int64)
        spaces["instruction_mask"] = gym.spaces.Box(0, 1, (ids_len,), np.int64)
    else:
        spaces["instruction"] = gym.spaces.Text(512)
    return gym.spaces.Dict(spaces)


def make_obs(batch: int, res: int = 16, seed: int = 0, depth: bool = False, lead: tuple[int, ...] = ()) -> dict:
    g = torch.Generator().manual_seed(seed)
    n = int(np.prod(lead)) * batch if lead else batch
    shape = (*lead, batch) if lead else (batch,)
    obs = {"rgb": torch.randint(0, 256, (*shape, res, res, 3), dtype=torch.uint8, generator=g),
           "instruction": tuple(TEXTS[k % len(TEXTS)] for k in range(n))}
    if depth:
        obs["depth"] = torch.rand((*shape, res, res, 1), generator=g) * 10
    return obs
