"""Continuous motion of a batch of disc-shaped agents with collisions (VLN-CE style actions).

A FORWARD that would bring the agent's disc into a wall cell or an object footprint (at any of the
sub-steps along the move) leaves the agent where it was and reports a collision; there is no
sliding along walls (VLN-CE's `allow_sliding: False`). Turns never collide.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from vlarena.envs.scene_tensors import SceneTensors

STOP, FORWARD, TURN_LEFT, TURN_RIGHT = 0, 1, 2, 3
ACTION_NAMES = ("STOP", "FORWARD", "TURN_LEFT", "TURN_RIGHT")


@dataclass
class MotionConfig:
    forward_step: float = 0.25  # metres
    turn_deg: float = 15.0
    agent_radius: float = 0.18

    def __post_init__(self) -> None:
        for name in ("forward_step", "turn_deg", "agent_radius"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and value > 0 and math.isfinite(value)):
                raise ValueError(f"motion.{name} must be a positive number, got {value!r}")
        if self.turn_deg >= 180:
            raise ValueError(f"motion.turn_deg must be in (0, 180), got {self.turn_deg}")


def wrap_angle(a: torch.Tensor) -> torch.Tensor:
    """Angles into (-pi, pi]."""
    return torch.remainder(a + math.pi, 2 * math.pi) - math.pi


def object_distance(scenes: SceneTensors, scene_idx: torch.Tensor, xy: torch.Tensor) -> torch.Tensor:
    """Distance [B, K] from points xy [B, 2] to each object footprint of the agent's scene (0 inside)."""
    center = scenes.obj_center[scene_idx]  # [B, K, 2]
    half = scenes.obj_half[scene_idx]
    delta = xy[:, None, :] - center
    box = (delta.abs() - half).clamp(min=0).norm(dim=-1)
    cyl = (delta.norm(dim=-1) - half[..., 0]).clamp(min=0)
    return torch.where(scenes.obj_shape[scene_idx] == 1, cyl, box)


def collides(scenes: SceneTensors, scene_idx: torch.Tensor, xy: torch.Tensor, radius: float) -> torch.Tensor:
    """True [B] where a disc of `radius` at xy [B, 2] overlaps a solid cell or an object."""
    cs = scenes.cell_size
    reach = int(math.ceil(radius / cs))
    offsets = torch.arange(-reach, reach + 1, device=xy.device)
    ci, cj = scenes.cell_index(xy)  # [B]
    ii = ci[:, None, None] + offsets[None, :, None]  # [B, n, 1]
    jj = cj[:, None, None] + offsets[None, None, :]  # [B, 1, n]
    ii, jj = torch.broadcast_tensors(ii, jj)
    solid = scenes.lookup(scenes.solid, scene_idx, ii, jj, outside=True)
    # distance from the point to each cell's square
    dx = (torch.maximum(jj * cs - xy[:, 0, None, None], xy[:, 0, None, None] - (jj + 1) * cs)).clamp(min=0)
    dy = (torch.maximum(ii * cs - xy[:, 1, None, None], xy[:, 1, None, None] - (ii + 1) * cs)).clamp(min=0)
    hit_wall = (solid & (dx * dx + dy * dy < radius * radius)).flatten(1).any(dim=1)
    hit_obj = ((object_distance(scenes, scene_idx, xy) < radius) & scenes.obj_valid[scene_idx]).any(dim=1)
    return hit_wall | hit_obj


def forward_blocked(scenes: SceneTensors, scene_idx: torch.Tensor, pose: torch.Tensor,
                    config: MotionConfig) -> torch.Tensor:
    """True [B] where moving forward by config.forward_step would collide."""
    substeps = max(1, int(math.ceil(config.forward_step / config.agent_radius)))
    direction = torch.stack([torch.cos(pose[:, 2]), torch.sin(pose[:, 2])], dim=-1)
    blocked = torch.zeros(pose.shape[0], dtype=torch.bool, device=pose.device)
    for k in range(1, substeps + 1):
        xy = pose[:, :2] + direction * (config.forward_step * k / substeps)
        blocked |= collides(scenes, scene_idx, xy, config.agent_radius)
    return blocked


def apply_actions(scenes: SceneTensors, scene_idx: torch.Tensor, pose: torch.Tensor, actions: torch.Tensor,
                  config: MotionConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """New poses [B, 3] and a collision flag [B] after one action per agent (STOP leaves the pose)."""
    turn = math.radians(config.turn_deg)
    dtheta = torch.where(actions == TURN_LEFT, turn, torch.where(actions == TURN_RIGHT, -turn, 0.0))
    heading = wrap_angle(pose[:, 2] + dtheta.to(pose.dtype))
    moving = actions == FORWARD
    blocked = forward_blocked(scenes, scene_idx, pose, config) & moving
    step = (moving & ~blocked).to(pose.dtype) * config.forward_step
    direction = torch.stack([torch.cos(pose[:, 2]), torch.sin(pose[:, 2])], dim=-1)
    xy = pose[:, :2] + direction * step[:, None]
    return torch.cat([xy, heading[:, None]], dim=-1), blocked


@functools.cache
def compiled_apply_actions() -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
    """`apply_actions` under torch.compile (static shapes; one graph per batch size and scene pool)."""
    return torch.compile(apply_actions, dynamic=False)
