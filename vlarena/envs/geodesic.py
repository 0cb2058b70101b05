"""Geodesic distance fields on the device and the shortest-path expert.

Fields are computed once per (scene, goal) with scipy's Dijkstra on the navigable grid
(`vlarena.datasets.geodesic`) and kept in one padded tensor [F, R, C]; each agent points at a
field slot. The distance from a continuous position p is
    min over navigable cells n in the 3x3 block around p's cell of  D[n] + |p - centre(n)|,
a one-step Dijkstra from p onto the grid. The block is small enough that no straight line from p
to one of its cells crosses a wall (walls are a cell thick; p is at least the agent radius from
one), so the distance never leaks through a wall. Where the block has no navigable cell (an agent
squeezed beside furniture, off the 0.25 m-clearance grid) the field's extension to all free cells
(`vlarena.datasets.geodesic.extend_field`) gives the distance instead.

The expert is a batched greedy one-step planner over the exact collision test (see
ShortestPathExpert).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from vlarena.datasets.geodesic import GridGraph, extend_field
from vlarena.datasets.navigation import free_space, navigable_mask
from vlarena.datasets.scene import Scene
from vlarena.envs.motion import FORWARD, STOP, TURN_LEFT, TURN_RIGHT, MotionConfig, collides
from vlarena.envs.scene_tensors import SceneTensors

INF = float("inf")
# Cells whose centre is at least this far from obstacles: the cell under an agent's centre always is one
# (agent radius 0.18 m > half a cell diagonal, 0.177 m), so every pose an agent can reach has a distance.
FREE_CLEARANCE = 0.002


class FieldPool:
    """Distance fields [F, R, C] (float32, metres, inf = unreachable) on the scenes' device."""

    def __init__(self, scenes: SceneTensors, scene_list: Sequence[Scene] | None = None):
        self.scenes = scenes
        self.keys: dict[object, int] = {}
        self._stored: list[torch.Tensor] = []  # one [R, C] field per slot (on the device)
        self._fields: torch.Tensor | None = None  # their stack, rebuilt after an add
        self._slot_scene: list[int] = []
        self._slot_scene_t: torch.Tensor | None = None
        self.scene_list = list(scene_list) if scene_list is not None else None
        self._grids: dict[int, tuple[np.ndarray, GridGraph]] = {}
        nav = np.zeros((len(self.scene_list or []), scenes.rows, scenes.cols), dtype=bool)
        for k, scene in enumerate(self.scene_list or []):
            nav[k, : scene.shape[0], : scene.shape[1]] = navigable_mask(scene)
        self.navigable = torch.from_numpy(nav).to(scenes.device)  # [S, R, C], empty without scene_list

    def __len__(self) -> int:
        return len(self._stored)

    @property
    def fields(self) -> torch.Tensor:
        if self._fields is None:
            self._fields = (torch.stack(self._stored) if self._stored else
                            torch.full((0, self.scenes.rows, self.scenes.cols), INF, device=self.scenes.device))
        return self._fields

    def add(self, key: object, field: np.ndarray, scene: int | None = None) -> int:
        """Store a field (padded to the pool's grid) under `key`; returns its slot. With the pool's
        `scene_list` and the field's `scene` index, the field is first extended to the free cells
        off the navigable grid (`extend_field`), so every place an agent can stand has a distance."""
        if key in self.keys:
            return self.keys[key]
        if scene is not None and self.scene_list is not None:
            if scene not in self._grids:
                s = self.scene_list[scene]
                free = GridGraph(free_space(s, clearance=FREE_CLEARANCE), s.cell_size)
                self._grids[scene] = (self.navigable[scene, : s.shape[0], : s.shape[1]].cpu().numpy(), free)
            nav, free = self._grids[scene]
            field = extend_field(field, nav, free)
        padded = np.full((self.scenes.rows, self.scenes.cols), INF, dtype=np.float32)
        padded[: field.shape[0], : field.shape[1]] = field
        self._stored.append(torch.from_numpy(padded).to(self.scenes.device))
        self._fields = None
        self._slot_scene.append(-1 if scene is None else scene)
        self._slot_scene_t = None
        self.keys[key] = len(self._stored) - 1
        return self.keys[key]

    def _block(self, slot: torch.Tensor, xy: torch.Tensor, reach: int):
        """Field values and cell centres of the (2*reach+1)^2 cells around xy: [B, n], [B, n, 2]."""
        cs = self.scenes.cell_size
        ci, cj = self.scenes.cell_index(xy)
        off = torch.arange(-reach, reach + 1, device=xy.device)
        ii = (ci[:, None, None] + off[None, :, None]).expand(-1, -1, len(off)).reshape(len(xy), -1)
        jj = (cj[:, None, None] + off[None, None, :]).expand(-1, len(off), -1).reshape(len(xy), -1)
        values = self.lookup(slot, ii, jj)
        centres = torch.stack([(jj + 0.5) * cs, (ii + 0.5) * cs], dim=-1)
        return values, centres, ii, jj

    def lookup(self, slot: torch.Tensor, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        """fields[slot, i, j] for slot [B] and cells [B, ...]; inf off the grid."""
        inside = (i >= 0) & (i < self.scenes.rows) & (j >= 0) & (j < self.scenes.cols)
        s = slot.view(-1, *([1] * (i.dim() - 1)))
        flat = (s * self.scenes.rows + i.clamp(0, self.scenes.rows - 1)) * self.scenes.cols + j.clamp(
            0, self.scenes.cols - 1)
        vals = self.fields.reshape(-1)[flat]
        return torch.where(inside, vals, torch.full_like(vals, INF))

    def distances(self, slot: torch.Tensor, xy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(on_grid, any_cell) geodesic metres [B] from xy [B, 2] to each agent's goal: the first
        through the navigable cells of the 3x3 block only (inf off the grid), the second through
        every cell of the block, so also through the extended off-grid values."""
        values, centres, ii, jj = self._block(slot, xy, 1)
        d = values + (centres - xy[:, None, :]).norm(dim=-1)
        best = d.min(dim=1).values
        if self.navigable.shape[0] == 0:
            return best, best
        if self._slot_scene_t is None:
            self._slot_scene_t = torch.tensor(self._slot_scene, dtype=torch.long, device=xy.device)
        scene = self._slot_scene_t[slot].clamp(min=0)
        nav = self.scenes.lookup(self.navigable, scene, ii, jj, outside=False)
        return torch.where(nav, d, torch.full_like(d, INF)).min(dim=1).values, best

    def distance(self, slot: torch.Tensor, xy: torch.Tensor) -> torch.Tensor:
        """Geodesic metres [B] from positions xy [B, 2] to each agent's goal (inf if unreachable):
        through the navigable grid, and through the extended off-grid values only where that is inf."""
        on_grid, any_cell = self.distances(slot, xy)
        return torch.where(torch.isfinite(on_grid), on_grid, any_cell)


class ShortestPathExpert:
    """Batched greedy expert (STOP, FORWARD, TURN_LEFT, TURN_RIGHT) over a FieldPool.

    For every heading reachable by m turns (m = -n/2 .. n/2 with n = 360 / turn_deg) it checks,
    with the exact collision test, the position one FORWARD would reach and its geodesic distance
    to the goal. The best heading (smallest distance plus `turn_penalty` metres per turn) decides:
    m = 0 -> FORWARD, m > 0 -> TURN_LEFT, m < 0 -> TURN_RIGHT. The choice depends on the position
    only, so turning never oscillates. STOP when the task says stopping now succeeds.
    """

    def __init__(self, scenes: SceneTensors, pool: FieldPool, motion: MotionConfig, turn_penalty: float = 0.03):
        self.scenes, self.pool, self.motion = scenes, pool, motion
        n = max(1, round(360.0 / motion.turn_deg))
        self.turns = torch.arange(-(n // 2), n - n // 2, device=scenes.device)  # [M] turn counts, 0 included
        self.turn_penalty = turn_penalty
        self.substeps = max(1, int(math.ceil(motion.forward_step / motion.agent_radius)))

    def act(self, scene_idx: torch.Tensor, pose: torch.Tensor, slot: torch.Tensor,
            stop_now: torch.Tensor) -> torch.Tensor:
        """Expert actions [B] (int64) for agents at `pose` heading to the goals of field `slot`."""
        b, m = pose.shape[0], self.turns.shape[0]
        heading = pose[:, 2:3] + self.turns * math.radians(self.motion.turn_deg)  # [B, M]
        direction = torch.stack([torch.cos(heading), torch.sin(heading)], dim=-1)  # [B, M, 2]
        frac = torch.arange(1, self.substeps + 1, device=pose.device) / self.substeps
        pts = pose[:, None, None, :2] + direction[:, :, None, :] * (self.motion.forward_step * frac[:, None])
        rep = scene_idx.repeat_interleave(m * self.substeps)
        blocked = collides(self.scenes, rep, pts.reshape(-1, 2), self.motion.agent_radius)
        blocked = blocked.view(b, m, self.substeps).any(dim=-1)
        ends = pts[:, :, -1, :]
        on_grid, any_cell = self.pool.distances(slot.repeat_interleave(m), ends.reshape(-1, 2))
        on_grid, any_cell = on_grid.view(b, m), any_cell.view(b, m)
        # plan on the navigable grid; off it (no free move reaches it) head back by the extended values
        lost = torch.where(blocked, INF, on_grid).isinf().all(dim=1, keepdim=True)
        dist = torch.where(lost, any_cell, on_grid)
        score = torch.where(blocked, torch.full_like(dist, INF), dist) + self.turn_penalty * self.turns.abs()
        best = self.turns[score.argmin(dim=1)]
        action = torch.where(best > 0, TURN_LEFT, torch.where(best < 0, TURN_RIGHT, FORWARD))
        return torch.where(stop_now, torch.full_like(action, STOP), action).long()
