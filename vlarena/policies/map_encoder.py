"""A top-down map observation read by a small CNN, the instruction choosing what to look for (FiLM).

    enc = MapEncoder(channels=51, size=31, lang_dim=128, out_dim=256)
    features, _ = enc(obs["semantic_map"], pooled_instruction)   # (B, S, S, C) -> (B, out_dim)

The map is (B, S, S, C), 0/1 per channel (ALFRED-v0's `semantic_map`: seen floor, wall, and one channel
per object type, centred on the agent). A 1x1 convolution embeds each cell's channels; the pooled
instruction scales and shifts those cell features (FiLM: which object types matter for this task). With
`progress_dim` > 0 the FiLM reads instead the instruction words attended from the pooled instruction and a
progress vector (B, progress_dim) (ALFRED-v0's `progress`: which step of the instruction the agent is at),
so it can look for this step's object rather than all the task's. Two stride-2 3x3 convolutions and a
linear layer reduce the map to one vector, which the policy adds to its fused features before the memory,
as it does with its state inputs. With `plan_iterations` > 0 a value-iteration planner (map_planner.MapPlanner)
reads the same map with the same instruction query and adds what it finds around the agent; the second
output is then its goal logits (B, C - 2) over the object types (None without a planner).

    enc = MapEncoder(51, 31, 128, 256, progress_dim=16, plan_iterations=31)
    features, goal_logits = enc(grid, pooled, tokens=tokens, mask=mask, progress=obs["progress"])

With `view_dim` = K > 0 (and a planner) it also reads a per-type view observation (B, C - 2, K) (ALFRED-v0's
`type_view`): its rows weighted by the planner's goal softmax (where the chosen type is in view, whether each
interaction would act on it) and their maximum over types (whether anything is there), through a linear layer.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from vlarena.policies.candidates import Attention
from vlarena.policies.map_planner import MapPlanner

WIDTH = 32


def check_view_space(space: gym.Space, key: str, types: int) -> int:
    """K of the per-type view observation `key`: a (types, K) Box of the observation space."""
    sub = getattr(space, "spaces", {}).get(key)
    if not isinstance(sub, gym.spaces.Box) or len(sub.shape) != 2 or sub.shape[0] != types:
        raise ValueError(f"policy.view_key names {key!r}, which must be a ({types}, K) Box of the observation space, one "
                         f"row per object type of the map (such as ALFRED-v0's type_view); got {sub} "
                         f"(keys: {sorted(getattr(space, 'spaces', {}))})")
    return int(sub.shape[1])


def check_map_space(space: gym.Space, key: str) -> tuple[int, int]:
    """(size, channels) of the map observation `key`: a (S, S, C) Box of the observation space."""
    sub = getattr(space, "spaces", {}).get(key)
    if not isinstance(sub, gym.spaces.Box) or len(sub.shape) != 3 or sub.shape[0] != sub.shape[1]:
        raise ValueError(f"policy.map_key names {key!r}, which must be a (S, S, C) Box of the observation space "
                         f"(a top-down map such as ALFRED-v0's semantic_map); got {sub} "
                         f"(keys: {sorted(getattr(space, 'spaces', {}))})")
    if not np.issubdtype(sub.dtype, np.number):
        raise ValueError(f"observation {key!r} must be numeric, got dtype {sub.dtype}")
    return int(sub.shape[0]), int(sub.shape[2])


class MapEncoder(nn.Module):
    def __init__(self, channels: int, size: int, lang_dim: int, out_dim: int, progress_dim: int = 0,
                 plan_iterations: int = 0, view_dim: int = 0):
        super().__init__()
        self.size, self.channels, self.progress_dim = size, channels, progress_dim
        self.attend = Attention(lang_dim + progress_dim, lang_dim, lang_dim, lang_dim) if progress_dim else None
        self.embed = nn.Conv2d(channels, WIDTH, 1)
        self.film = nn.Linear(lang_dim, 2 * WIDTH)
        self.conv = nn.Sequential(
            nn.ReLU(), nn.Conv2d(WIDTH, 2 * WIDTH, 3, stride=2, padding=1),
            nn.ReLU(), nn.Conv2d(2 * WIDTH, 2 * WIDTH, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten())
        reduced = (size + 3) // 4
        self.out = nn.Linear(2 * WIDTH * reduced * reduced, out_dim)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)
        self.planner = MapPlanner(channels, lang_dim, out_dim, plan_iterations) if plan_iterations else None
        if view_dim and self.planner is None:
            raise ValueError("a per-type view observation is read through the planner's goal choice: it needs "
                             "plan_iterations > 0")
        self.view_dim = view_dim
        self.view = nn.Linear(2 * view_dim, out_dim) if view_dim else None

    def forward(self, grid: torch.Tensor, instruction: torch.Tensor, tokens: torch.Tensor | None = None,
                mask: torch.Tensor | None = None, progress: torch.Tensor | None = None,
                index: torch.Tensor | None = None, view: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """grid (B, S, S, C), instruction (B, lang_dim) pooled -> ((B, out_dim), the planner's goal logits or None);
        with progress_dim also the instruction tokens (B, L, lang_dim), their mask (B, L) and progress
        (B, progress_dim); tokens and mask may hold M distinct instructions (M, L, ...) with `index` (B,)
        (candidates.Attention); with view_dim the per-type view (B, C - 2, view_dim)."""
        if grid.dim() != 4 or tuple(grid.shape[1:]) != (self.size, self.size, self.channels):
            raise ValueError(f"the map observation must be (B, {self.size}, {self.size}, {self.channels}), got "
                             f"{tuple(grid.shape)}")
        if self.attend is not None:
            if tokens is None or progress is None or tuple(progress.shape) != (grid.shape[0], self.progress_dim):
                raise ValueError(f"this map encoder reads the instruction tokens and a progress vector (B, "
                                 f"{self.progress_dim}); got tokens {None if tokens is None else tuple(tokens.shape)}, "
                                 f"progress {None if progress is None else tuple(progress.shape)}")
            query = torch.cat([instruction, progress.to(instruction.dtype)], dim=-1)[:, None]
            instruction = instruction + self.attend(query, tokens, mask, index)[:, 0]
        grid = grid.permute(0, 3, 1, 2).to(instruction.dtype)
        x = self.embed(grid)
        scale, shift = self.film(instruction).chunk(2, dim=-1)
        x = x * (1 + scale[..., None, None]) + shift[..., None, None]
        out = self.out(self.conv(x))
        if self.planner is None:
            return out, None
        planned, goal_logits = self.planner(grid, instruction)
        if self.view is not None:
            if view is None or tuple(view.shape) != (*goal_logits.shape, self.view_dim):
                raise ValueError(f"this map encoder reads a per-type view {(*goal_logits.shape, self.view_dim)}, got "
                                 f"{None if view is None else tuple(view.shape)}")
            view = view.to(goal_logits.dtype)
            goal = torch.einsum("bt,btk->bk", torch.softmax(goal_logits, dim=-1), view)
            planned = planned + self.view(torch.cat([goal, view.amax(dim=1)], dim=-1))
        return out + planned, goal_logits
