"""Geodesic distance fields on the device and the shortest-path expert.

Fields are computed once per (scene, goal) with scipy's Dijkstra on the navigable grid
(`vlarena.datasets.geodesic`) and kept in one padded tensor [F, R, C]; each agent points at a
field slot. The distance from a continuous position p is
    min over navigable cells n in the 5x5 block around p of  D[n] + |p - centre(n)|,
a one-step Dijkstra from p onto the grid.

The expert (batched, no loop over agents) follows the field: from the best cell next to the agent
it walks the steepest-descent chain `lookahead` cells ahead, aims at the farthest chain cell that
the agent's disc can reach in a straight line without touching anything, turns towards it while the
heading error exceeds half a turn, and otherwise moves forward. It calls STOP when the task says
stopping now succeeds.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from vlarena.datasets.geodesic import NEIGHBOURS
from vlarena.envs.motion import FORWARD, STOP, TURN_LEFT, TURN_RIGHT, MotionConfig, collides, wrap_angle
from vlarena.envs.scene_tensors import SceneTensors

INF = float("inf")


class FieldPool:
    """Distance fields [F, R, C] (float32, metres, inf = unreachable) on the scenes' device."""

    def __init__(self, scenes: SceneTensors):
        self.scenes = scenes
        self.fields = torch.full((0, scenes.rows, scenes.cols), INF, device=scenes.device)
        self.keys: dict[object, int] = {}

    def __len__(self) -> int:
        return self.fields.shape[0]

    def add(self, key: object, field: np.ndarray) -> int:
        """Store a field (padded to the pool's grid) under `key`; returns its slot."""
        if key in self.keys:
            return self.keys[key]
        padded = np.full((self.scenes.rows, self.scenes.cols), INF, dtype=np.float32)
        padded[: field.shape[0], : field.shape[1]] = field
        self.fields = torch.cat([self.fields, torch.from_numpy(padded).to(self.scenes.device)[None]])
        self.keys[key] = len(self.fields) - 1
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

    def distance(self, slot: torch.Tensor, xy: torch.Tensor) -> torch.Tensor:
        """Geodesic metres [B] from positions xy [B, 2] to each agent's goal (inf if unreachable)."""
        values, centres, _, _ = self._block(slot, xy, 2)
        return (values + (centres - xy[:, None, :]).norm(dim=-1)).min(dim=1).values


class ShortestPathExpert:
    """Batched expert actions (STOP, FORWARD, TURN_LEFT, TURN_RIGHT) following a FieldPool."""

    def __init__(self, scenes: SceneTensors, pool: FieldPool, motion: MotionConfig, lookahead: int = 4,
                 margin: float = 0.03):
        self.scenes, self.pool, self.motion = scenes, pool, motion
        self.lookahead = lookahead
        self.margin = margin
        nb = torch.tensor(NEIGHBOURS, device=scenes.device)
        self.nb_di, self.nb_dj = nb[:, 0], nb[:, 1]
        self.nb_cost = torch.tensor([math.hypot(a, b) for a, b in NEIGHBOURS], device=scenes.device) * scenes.cell_size

    def _descend(self, slot: torch.Tensor, i: torch.Tensor, j: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One steepest-descent step from cells (i, j) [B]; cells already at a minimum stay."""
        ni = i[:, None] + self.nb_di
        nj = j[:, None] + self.nb_dj
        vals = self.pool.lookup(slot, ni, nj) + self.nb_cost
        best = vals.argmin(dim=1)
        here = self.pool.lookup(slot, i, j)
        better = vals.gather(1, best[:, None]).squeeze(1) < here - 1e-4
        return torch.where(better, ni.gather(1, best[:, None]).squeeze(1), i), torch.where(
            better, nj.gather(1, best[:, None]).squeeze(1), j)

    def _clear_line(self, scene_idx: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """True [B] where the agent's disc (plus a margin) can travel straight from a to b."""
        radius = self.motion.agent_radius + self.margin
        length = (b - a).norm(dim=-1)
        n = max(2, int(math.ceil(self.lookahead * self.scenes.cell_size * 1.5 / 0.08)))
        ok = torch.ones(len(a), dtype=torch.bool, device=a.device)
        for k in range(1, n + 1):
            p = a + (b - a) * (k / n)
            ok &= ~collides(self.scenes, scene_idx, p, radius) | (length * k / n < 1e-6)
        return ok

    def act(self, scene_idx: torch.Tensor, pose: torch.Tensor, slot: torch.Tensor,
            stop_now: torch.Tensor) -> torch.Tensor:
        """Expert actions [B] (int64) for agents at `pose` heading to the goals of field `slot`."""
        xy = pose[:, :2]
        values, centres, ii, jj = self.pool._block(slot, xy, 1)
        start = (values + (centres - xy[:, None, :]).norm(dim=-1)).argmin(dim=1)
        i = ii.gather(1, start[:, None]).squeeze(1)
        j = jj.gather(1, start[:, None]).squeeze(1)
        cs = self.scenes.cell_size
        aim = torch.stack([(j + 0.5) * cs, (i + 0.5) * cs], dim=-1)
        for _ in range(self.lookahead):
            i, j = self._descend(slot, i, j)
            cand = torch.stack([(j + 0.5) * cs, (i + 0.5) * cs], dim=-1)
            aim = torch.where(self._clear_line(scene_idx, xy, cand)[:, None], cand, aim)
        delta = aim - xy
        close = delta.norm(dim=-1) < 1e-3
        err = wrap_angle(torch.atan2(delta[:, 1], delta[:, 0]) - pose[:, 2])
        half_turn = math.radians(self.motion.turn_deg) / 2
        action = torch.where(err > half_turn, TURN_LEFT, torch.where(err < -half_turn, TURN_RIGHT, FORWARD))
        action = torch.where(close, torch.full_like(action, FORWARD), action)
        return torch.where(stop_now, torch.full_like(action, STOP), action).long()
