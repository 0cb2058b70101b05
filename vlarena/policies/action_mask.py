"""The action-mask observation: an env says which discrete actions are allowed at this step.

Contract (generic, the convention of PettingZoo's and gymnasium's `action_mask`): an observation space
with the key `action_mask`, a Box (n,) of an int or bool dtype or MultiBinary(n), beside the action space
Discrete(n) (start 0). A policy built on such a space reads it from every observation ((B, n); (T, B, n) or
flat in `evaluate_actions`) and gives the actions where it is 0 no probability (heads.MASKED_LOGIT), in
`act` and `evaluate_actions` alike, so PPO's ratios and the imitation losses see the same distribution the
rollout sampled from. A row must allow at least one action. With candidate actions (candidates.py) both
masks apply. ALFRED-v0's `action_mask` (env.kwargs.action_mask) masks the actions that failed since the
last one that worked: in its deterministic world they would fail again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import torch

ACTION_MASK_KEY = "action_mask"


def is_mask_space(space: gym.Space, n: int) -> bool:
    """Whether `space` can hold a mask of n entries: a Box (n,) of an int or bool dtype, or MultiBinary(n)."""
    return (isinstance(space, gym.spaces.MultiBinary) and tuple(np.atleast_1d(space.n)) == (n,)) or (
        isinstance(space, gym.spaces.Box) and space.shape == (n,)
        and (np.issubdtype(space.dtype, np.integer) or space.dtype == np.bool_))


def check_action_mask_space(observation_space: gym.Space, action_space: gym.Space) -> bool:
    """Whether the observation space has an action mask; an error when it does not fit the action space."""
    space = getattr(observation_space, "spaces", {}).get(ACTION_MASK_KEY)
    if space is None:
        return False
    if not (isinstance(action_space, gym.spaces.Discrete) and int(action_space.start) == 0):
        raise ValueError(f"observation_space has {ACTION_MASK_KEY!r}, which masks a Discrete(n) action space with "
                         f"start 0; got {action_space}")
    n = int(action_space.n)
    if not is_mask_space(space, n):
        raise ValueError(f"observation_space[{ACTION_MASK_KEY!r}] must be a Box of shape ({n},) (the {n} actions of "
                         f"{action_space}) with an int or bool dtype, or MultiBinary({n}); got {space}")
    return True


def action_mask_input(obs: Mapping[str, Any], n: int, device: torch.device) -> torch.Tensor:
    """The bool (N, n) mask of a (flattened) observation, True on allowed actions; errors name the key."""
    mask = obs.get(ACTION_MASK_KEY)
    if not isinstance(mask, torch.Tensor) or mask.dim() != 2 or mask.shape[1] != n:
        got = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ValueError(f"observation {ACTION_MASK_KEY!r} must be a tensor (B, {n}), 1 on allowed actions (the policy "
                         f"was built on an observation space with it); got {got}")
    mask = mask.to(device, non_blocking=True) != 0
    if not bool(mask.any(dim=1).all()):
        raise ValueError(f"observation {ACTION_MASK_KEY!r} allows no action in some rows: every row needs at least one")
    return mask
