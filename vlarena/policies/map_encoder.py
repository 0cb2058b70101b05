"""A top-down map observation read by a small CNN, the instruction choosing what to look for (FiLM).

    enc = MapEncoder(channels=51, size=31, lang_dim=128, out_dim=256)
    features = enc(obs["semantic_map"], pooled_instruction)      # (B, S, S, C) -> (B, out_dim)

The map is (B, S, S, C), 0/1 per channel (ALFRED-v0's `semantic_map`: seen floor, wall, and one channel
per object type, centred on the agent). A 1x1 convolution embeds each cell's channels; the pooled
instruction scales and shifts those cell features (FiLM: which object types matter for this task); two
stride-2 3x3 convolutions and a linear layer reduce the map to one vector, which the policy adds to
its fused features before the memory, as it does with its state inputs.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from torch import nn

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
    def __init__(self, channels: int, size: int, lang_dim: int, out_dim: int):
        super().__init__()
        self.size, self.channels = size, channels
        self.embed = nn.Conv2d(channels, WIDTH, 1)
        self.film = nn.Linear(lang_dim, 2 * WIDTH)
        self.conv = nn.Sequential(
            nn.ReLU(), nn.Conv2d(WIDTH, 2 * WIDTH, 3, stride=2, padding=1),
            nn.ReLU(), nn.Conv2d(2 * WIDTH, 2 * WIDTH, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten())
        reduced = (size + 3) // 4
        self.out = nn.Linear(2 * WIDTH * reduced * reduced, out_dim)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)

    def forward(self, grid: torch.Tensor, instruction: torch.Tensor) -> torch.Tensor:
        """grid (B, S, S, C), instruction (B, lang_dim) -> (B, out_dim)."""
        if grid.dim() != 4 or tuple(grid.shape[1:]) != (self.size, self.size, self.channels):
            raise ValueError(f"the map observation must be (B, {self.size}, {self.size}, {self.channels}), got "
                             f"{tuple(grid.shape)}")
        x = self.embed(grid.permute(0, 3, 1, 2).to(instruction.dtype))
        scale, shift = self.film(instruction).chunk(2, dim=-1)
        x = x * (1 + scale[..., None, None]) + shift[..., None, None]
        return self.out(self.conv(x))
