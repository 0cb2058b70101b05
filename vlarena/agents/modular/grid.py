"""The modular agent's map in the frame of its start pose, from the env's egocentric `semantic_map` and `pose`.

    grid = StartFrameGrid(size)               # size: the crop's cells across (odd)
    cells, here = grid.place(crop, pose)      # (size, size, CHANNELS) bool map, agent pose (i, j, k)

The start frame: x metres ahead of the start pose, y metres to its left, both in 0.25 m cells; cell
(i, j) is (y, x) + size // 2, so the start cell is the centre and heading k (k * 90 degrees counter-clockwise
from +x) follows household.navigate's convention (STEP, RotateLeft: k + 1). The crop
(household.semantic_map.egocentric) is drawn around the agent with its heading up; its cell (row, col) lies `size // 2 - row` cells ahead and `col - size // 2` to the right.
A crop at least twice the room across holds the whole map wherever the agent stands, so the grid is the
crop turned and shifted, every step.
"""

from __future__ import annotations

import math

import torch

CELL = 0.25  # metres: the household grid's cell


class StartFrameGrid:
    def __init__(self, size: int):
        self.size = size
        c = size // 2
        off = torch.arange(size) - c
        self._ahead = (-off)[:, None].expand(size, size)  # crop row -> cells ahead
        self._right = off[None, :].expand(size, size)

    def place(self, crop: torch.Tensor, pose: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int]]:
        """crop (size, size, C) of one env, pose (5,) the env's `pose` observation -> ((size, size, C) bool
        map in the start frame, the agent's (i, j, k))."""
        size, c = self.size, self.size // 2
        k = round(math.atan2(float(pose[2]), float(pose[3])) / (math.pi / 2)) % 4
        x, y = round(float(pose[0]) / CELL), round(float(pose[1]) / CELL)
        cos, sin = ((1, 0), (0, 1), (-1, 0), (0, -1))[k]
        dx = self._ahead * cos + self._right * sin
        dy = self._ahead * sin - self._right * cos
        i, j = c + y + dy, c + x + dx
        keep = (i >= 0) & (i < size) & (j >= 0) & (j < size)
        out = torch.zeros(size, size, crop.shape[-1], dtype=torch.bool)
        out[i[keep], j[keep]] = crop[keep].bool()
        return out, (c + y, c + x, k)
