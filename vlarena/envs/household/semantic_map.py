"""The agent's top-down semantic map of what it has seen (FILM's semantic map), built from its own frames.

    smap = SemanticMap(batch, rows, cols, camera)
    smap.reset(new_rows)                                          # a new episode forgets its map
    smap.update(pose, depth, semantic, instance, otype, cell)     # every frame the agent sees
    view = smap.egocentric(i, j, k, size)                         # (B, size, size, CHANNELS) uint8

Every pixel of the agent's view is put on the 0.25 m grid with its depth and column (the point
`pose + depth * (forward + u * left)`, u the column's slope; depth is z-depth) and marks its cell:
channel 0 seen floor, 1 seen wall, 2 + t an object of ALFRED type t (`objects.TYPE_INDEX`, from the
pixel's instance id: ground-truth segmentation, the setting of FILM's ablation with ground-truth
perception). Marks accumulate over the episode, as FILM's map does (a moved object leaves its old mark).

`mark_wall` marks cells as walls that no frame shows as such (the env's `map_collisions`: the cell a failed
MoveAhead bumped into). `egocentric` crops the map around the agent and turns it so the agent looks up the
rows: the agent is at the centre cell (size // 2, size // 2), row 0 is the farthest ahead, column 0 the farthest to the left.
Cells beyond the crop are drawn on its border (what lies that way, past the edge).
"""

from __future__ import annotations

import torch

from vlarena.datasets.alfred.objects import TYPE_INDEX
from vlarena.datasets.catalog import SEM_FLOOR, SEM_OBJECT_BASE, SEM_WALL
from vlarena.envs.household.navigate import STEP, Camera
from vlarena.envs.renderer import column_slopes

CHANNELS = 2 + len(TYPE_INDEX)
SURFACE_PUSH = 0.02  # metres past a wall or object surface along the ray, into the thing that was hit


class SemanticMap:
    def __init__(self, batch: int, rows: int, cols: int, camera: Camera, device: str | torch.device = "cpu"):
        self.seen = torch.zeros(batch, rows, cols, CHANNELS, dtype=torch.bool, device=device)
        self._u = column_slopes(camera.width, camera.hfov_deg).to(torch.float32).to(device)
        self._steps = torch.tensor(STEP, device=device)

    def resize(self, rows: int, cols: int) -> None:
        """Grow the grid (marks are kept) so scenes of up to rows x cols cells fit."""
        b, r, c, ch = self.seen.shape
        if rows > r or cols > c:
            grown = torch.zeros(b, max(r, rows), max(c, cols), ch, dtype=torch.bool, device=self.seen.device)
            grown[:, :r, :c] = self.seen
            self.seen = grown

    def reset(self, rows: torch.Tensor) -> None:
        self.seen[rows] = False

    def update(self, pose: torch.Tensor, depth: torch.Tensor, semantic: torch.Tensor, instance: torch.Tensor,
               otype: torch.Tensor, cell: float, max_depth: float) -> None:
        """Mark the cells of the frames' pixels. pose (B, 3) (x, y, heading rad); depth (B, H, W, 1) z-depth
        (pixels at the renderer's `max_depth` hit nothing and are skipped); semantic, instance (B, H, W) the
        renderer's ids; otype (B, K) the world's object type per slot."""
        b, h, w = semantic.shape
        d = depth[..., 0]
        solid = (semantic == SEM_WALL) | (semantic >= SEM_OBJECT_BASE)
        d = d + solid * SURFACE_PUSH
        fwd = torch.stack([pose[:, 2].cos(), pose[:, 2].sin()], -1)            # (B, 2)
        left = torch.stack([-pose[:, 2].sin(), pose[:, 2].cos()], -1)
        ray = fwd[:, None, :] + self._u[None, :, None] * left[:, None, :]        # (B, W, 2)
        xy = pose[:, None, None, :2] + d[..., None] * ray[:, None, :, :]       # (B, H, W, 2)
        j = torch.floor(xy[..., 0] / cell).long()
        i = torch.floor(xy[..., 1] / cell).long()
        slot = instance.long().clamp(min=0)
        types = torch.gather(otype, 1, slot.reshape(b, -1)).reshape(b, h, w)
        channel = torch.where(semantic == SEM_FLOOR, 0, torch.where(semantic == SEM_WALL, 1, 2 + types))
        _, rows, cols, _ = self.seen.shape
        labelled = (semantic == SEM_FLOOR) | (semantic == SEM_WALL) | ((instance >= 0) & (types >= 0))
        keep = labelled & (depth[..., 0] < max_depth) & (i >= 0) & (i < rows) & (j >= 0) & (j < cols)
        env = torch.arange(b, device=d.device)[:, None, None].expand(b, h, w)
        self.seen[env[keep], i[keep], j[keep], channel[keep]] = True

    def mark_wall(self, rows: torch.Tensor, i: torch.Tensor, j: torch.Tensor) -> None:
        """Mark cell (i[b], j[b]) as a wall where rows[b] (B,) bool (the obstacle a failed move bumped into, as
        FILM adds it to its map); cells off the grid are skipped."""
        _, r, c, _ = self.seen.shape
        keep = rows & (i >= 0) & (i < r) & (j >= 0) & (j < c)
        self.seen[keep.nonzero()[:, 0], i[keep], j[keep], 1] = True

    def egocentric(self, i: torch.Tensor, j: torch.Tensor, k: torch.Tensor, size: int) -> torch.Tensor:
        """(B, size, size, CHANNELS) uint8: the map around cell (i, j), turned to heading k (see the module doc)."""
        b, rows, cols, ch = self.seen.shape
        ii = torch.arange(rows, device=i.device)[None, :, None] - i[:, None, None]   # (B, R, 1)
        jj = torch.arange(cols, device=i.device)[None, None, :] - j[:, None, None]   # (B, 1, C)
        f, r = self._steps[k], self._steps[(k + 3) % 4]                              # forward, right (di, dj)
        ahead = ii * f[:, 0, None, None] + jj * f[:, 1, None, None]
        right = ii * r[:, 0, None, None] + jj * r[:, 1, None, None]
        c = size // 2
        row = (c - ahead).clamp(0, size - 1)
        col = (c + right).clamp(0, size - 1)
        index = (row * size + col).reshape(b, rows * cols, 1).expand(-1, -1, ch)
        out = torch.zeros(b, size * size, ch, dtype=torch.uint8, device=self.seen.device)
        out.scatter_reduce_(1, index, self.seen.reshape(b, rows * cols, ch).to(torch.uint8), "amax")
        return out.reshape(b, size, size, ch)
