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
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from vlarena.policies.candidates import Attention
from vlarena.policies.map_planner import MapPlanner

WIDTH = 32


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
                 plan_iterations: int = 0):
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

    def forward(self, grid: torch.Tensor, instruction: torch.Tensor, tokens: torch.Tensor | None = None,
                mask: torch.Tensor | None = None, progress: torch.Tensor | None = None,
                index: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """grid (B, S, S, C), instruction (B, lang_dim) pooled -> ((B, out_dim), the planner's goal logits or None);
        with progress_dim also the instruction tokens (B, L, lang_dim), their mask (B, L) and progress
        (B, progress_dim); tokens and mask may hold M distinct instructions (M, L, ...) with `index` (B,)
        (candidates.Attention)."""
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
        return out + planned, goal_logits
