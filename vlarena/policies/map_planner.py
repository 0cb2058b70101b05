"""A differentiable planner on a top-down map: value iteration (VIN, Tamar et al. 2016; the planner of Cognitive
Mapping and Planning, Gupta et al. 2017), for policies that must walk to what the instruction names.

    planner = MapPlanner(channels=51, lang_dim=384, out_dim=256, iterations=40)
    features, goal_logits = planner(grid, instruction)  # grid (B, C, S, S) float, agent at the centre facing row 0

1. Goal: the instruction (the words of the current step, MapEncoder's query) gives a softmax over the map's
   object channels (those after the first `object_channel`); a cell's goal value is its object channels weighted
   by it (1 where a mapped object of the chosen type lies).
2. Passability: a 1x1 convolution of each cell's channels, through a sigmoid; it starts from the prior
   "floor and unseen cells are free, walls and objects are not" (p = 0.95 or 0.05) and is trained.
3. Value iteration over 4-connected cells: V <- max(goal, gamma * p * max of the 4 neighbours' V), `iterations`
   times (cells beyond the map count 0), so V = gamma^d along the most passable route of d cells to a goal.
4. Read-out: log V and the goal values on the (2r + 1)^2 cells around the agent, through an MLP to `out_dim`:
   the direction of the way to the goal (which neighbour's value is highest), that a recurrent policy would
   otherwise have to work out from the map's pixels itself.

The goal logits (B, C - object_channel) are returned beside the features so that a trainer can supervise the
goal choice (DAgger's `agent.goal_coef`: cross-entropy against the type of the object the expert heads for).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

GAMMA = 0.9  # the discount per cell
PRIOR_FREE, PRIOR_BLOCKED = 3.0, -3.0  # passability logits the 1x1 convolution starts from (sigmoid: 0.95, 0.05)
LOG_FLOOR = -20.0  # log V of cells no goal reaches


class MapPlanner(nn.Module):
    def __init__(self, channels: int, lang_dim: int, out_dim: int, iterations: int, radius: int = 3,
                 object_channel: int = 2, hidden: int = 128):
        super().__init__()
        if iterations < 1 or radius < 0:
            raise ValueError(f"the map planner needs iterations >= 1 and radius >= 0, got {iterations}, {radius}")
        self.iterations, self.radius = iterations, radius
        self.object_channel = object_channel
        self.goal_type = nn.Linear(lang_dim, channels - object_channel)
        self.passable = nn.Conv2d(channels, 1, 1)
        with torch.no_grad():  # channel 0 (seen floor) is free, the others (walls, objects) are not
            self.passable.weight.zero_()
            self.passable.weight[0, 1:] = PRIOR_BLOCKED - PRIOR_FREE
            self.passable.bias.fill_(PRIOR_FREE)
        side = 2 * radius + 1
        self.read = nn.Sequential(nn.Linear(2 * side * side, hidden), nn.ReLU(), nn.Linear(hidden, out_dim))

    def values(self, grid: torch.Tensor, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(V, goal), each (B, S, S): value iteration's values and the goal map of `grid` (B, C, S, S) for the goal
        logits (B, C - object_channel) (`goal_type` of the instruction)."""
        weights = torch.softmax(logits, dim=-1)                                 # (B, C - object_channel)
        goal = (grid[:, self.object_channel:] * weights[:, :, None, None]).sum(1)  # (B, S, S)
        keep = GAMMA * torch.sigmoid(self.passable(grid))[:, 0]                # (B, S, S)
        v = goal
        for _ in range(self.iterations):
            p = F.pad(v, (1, 1, 1, 1))
            best = torch.maximum(torch.maximum(p[:, :-2, 1:-1], p[:, 2:, 1:-1]), torch.maximum(p[:, 1:-1, :-2],
                                                                                               p[:, 1:-1, 2:]))
            v = torch.maximum(goal, keep * best)
        return v, goal

    def forward(self, grid: torch.Tensor, instruction: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(features (B, out_dim), goal logits (B, C - object_channel))."""
        s, r = grid.shape[-1], self.radius
        if s < 2 * r + 1:
            raise ValueError(f"the map planner reads {2 * r + 1} x {2 * r + 1} cells around the agent; the map has {s}")
        logits = self.goal_type(instruction)
        v, goal = self.values(grid, logits)
        near = slice(s // 2 - r, s // 2 + r + 1)
        window = (slice(None), near, near)
        logv = torch.log(v[window].clamp_min(math.exp(LOG_FLOOR))) / -LOG_FLOOR       # in [-1, 0]
        return self.read(torch.cat([logv.flatten(1), goal[window].flatten(1)], dim=-1)), logits
