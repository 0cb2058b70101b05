"""ALFRED's agent on the 0.25 m grid, and the expert's way to a pose where an object is in reach.

Pose: cell (i, j) centre, heading k in 0..3 (k * 90 degrees counter-clockwise from +x: east, north,
west, south) and horizon h, an index into HORIZONS (degrees below level; ALFRED's -30..60 in 15 degree
steps, starting at 30). Actions: MoveAhead (one cell, 0.25 m, unless it would collide with a wall or
furniture), RotateLeft / RotateRight (90 degrees), LookUp / LookDown (15 degrees).

Looking up and down is drawn as a vertical shift of a taller frame (the "y-shearing" of 2.5D engines):
the view is `view_height` rows of a frame rendered `render_height` rows tall, centred on row
`centre_row(h)` = render_height / 2 + f * tan(HORIZONS[h]) with f the focal length in pixels.

`goal_poses` renders every pose within reach of an object (all headings and horizons) and keeps those
whose view centre sees it within 1.5 m (appearance.HouseholdLook.target): the same rule the env
applies, so an expert that reaches a goal pose can interact. `distance_field` gives the fewest actions from
every pose to the goal poses (value iteration over the pose graph) and `plan_to` descends it, with
`descend`'s tie-break among equally short routes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from vlarena.envs.household.appearance import REACH, WINDOW, HouseholdLook
from vlarena.envs.household.world import HouseholdWorld
from vlarena.envs.motion import MotionConfig, collides, forward_blocked
from vlarena.envs.renderer import RenderConfig, Renderer
from vlarena.envs.scene_tensors import SceneTensors

HORIZONS = (-30.0, -15.0, 0.0, 15.0, 30.0, 45.0, 60.0)
START_HORIZON = 4  # 30 degrees down, ALFRED's init_action horizon
NAV_ACTIONS = ("MoveAhead", "RotateLeft", "RotateRight", "LookUp", "LookDown")  # the expert's preference among equally short routes (descend)
STEP = ((0, 1), (1, 0), (0, -1), (-1, 0))  # (di, dj) of MoveAhead for heading k


@dataclass(frozen=True)
class Camera:
    width: int = 64
    view_height: int = 64
    hfov_deg: float = 90.0

    @property
    def focal(self) -> float:
        return self.width / 2 / math.tan(math.radians(self.hfov_deg) / 2)

    @property
    def render_height(self) -> int:
        reach = max(abs(math.tan(math.radians(a))) for a in HORIZONS) * self.focal
        return self.view_height + 2 * math.ceil(reach)

    def window_config(self) -> RenderConfig:
        """A renderer config for just the centre window's columns: same focal length, and the same
        half-pixel offset of the centre column as the full view (so both see the same objects)."""
        width = 2 * WINDOW + 2
        return RenderConfig(width=width, height=self.render_height,
                            hfov_deg=math.degrees(2 * math.atan(width / 2 / self.focal)))

    def centre_row(self, h: torch.Tensor | int) -> torch.Tensor:
        """Row of the tall frame at the view centre for horizon index h."""
        tan = torch.tan(torch.deg2rad(torch.tensor(HORIZONS)))[torch.as_tensor(h)]
        return (self.render_height // 2 + torch.round(self.focal * tan)).long()


def pose_tensor(i: torch.Tensor, j: torch.Tensor, k: torch.Tensor, cell_size: float) -> torch.Tensor:
    """(x, y, heading) of cell centres and headings."""
    return torch.stack([(j.float() + 0.5) * cell_size, (i.float() + 0.5) * cell_size, k.float() * math.pi / 2], -1)


def blocked_table(motion_scenes: SceneTensors, slot: int, motion: MotionConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """((R, C) free: the agent fits on the cell centre, (R, C, 4) blocked: MoveAhead from there with heading
    k collides, or the cell is not free)."""
    r, c = (int(v) for v in motion_scenes.grid_shape[slot])
    ii, jj, kk = torch.meshgrid(torch.arange(r), torch.arange(c), torch.arange(4), indexing="ij")
    pose = pose_tensor(ii.flatten(), jj.flatten(), kk.flatten(), motion_scenes.cell_size).to(motion_scenes.device)
    idx = torch.full((pose.shape[0],), slot, dtype=torch.long, device=pose.device)
    here = collides(motion_scenes, idx, pose[:, :2], motion.agent_radius)
    ahead = forward_blocked(motion_scenes, idx, pose, motion)
    here = here.reshape(r, c, 4).cpu()
    return ~here[..., 0], (here | ahead.reshape(r, c, 4).cpu())


def goal_poses(look: HouseholdLook, renderer: Renderer, camera: Camera, world: HouseholdWorld, slot: int,
               target: int, action: int, free: torch.Tensor) -> torch.Tensor:
    """(R, C, 4, len(HORIZONS)) bool: poses from which interaction `action` of env `slot` would act on object
    `target` (look.target with the action's affordance filter). `free`: (R, C) cells the agent may stand
    on. Renders only cells within reach of the object, with the world as it is now; `renderer` may be
    one made with `camera.window_config()` (faster) or with the full view."""
    st = look.scene_tensors
    cs = st.cell_size
    r, c = free.shape
    centre = st.obj_center[slot, target].cpu()
    half = st.obj_half[slot, target].cpu()
    ii, jj = torch.nonzero(free, as_tuple=True)
    x, y = (jj.float() + 0.5) * cs, (ii.float() + 0.5) * cs
    gap = torch.stack([(x - centre[0]).abs() - half[0], (y - centre[1]).abs() - half[1]], -1).clamp(min=0).norm(dim=-1)
    near = gap <= REACH
    ii, jj = ii[near], jj[near]
    out = torch.zeros(r, c, 4, len(HORIZONS), dtype=torch.bool)
    if ii.numel() == 0:
        return out
    n = ii.numel()
    ii4, jj4 = ii.repeat_interleave(4), jj.repeat_interleave(4)
    kk4 = torch.arange(4).repeat(n)
    pose = pose_tensor(ii4, jj4, kk4, cs).to(st.device)
    rows = [camera.centre_row(h) for h in range(len(HORIZONS))]
    for start in range(0, pose.shape[0], 256):
        p = pose[start:start + 256]
        frame = renderer.render(torch.full((p.shape[0],), slot, dtype=torch.long, device=st.device), p,
                                outputs=("depth", "instance"))
        for h, row in enumerate(rows):
            allowed = world.allowed(torch.full((world.batch_size,), action, dtype=torch.long))[slot]
            allowed = allowed[None].expand(p.shape[0], -1)
            seen = look.target(frame["instance"], frame["depth"], int(row), allowed.to(st.device)).cpu() == target
            sel = slice(start, start + p.shape[0])
            out[ii4[sel][seen], jj4[sel][seen], kk4[sel][seen], h] = True
    return out


UNREACHABLE = 1 << 20


def distance_field(goals: torch.Tensor, blocked: torch.Tensor) -> torch.Tensor:
    """(R, C, 4, H) int32: the fewest navigation actions from each pose to a goal pose (UNREACHABLE if none).
    `blocked` (R, C, 4): MoveAhead from cell (i, j) with heading k collides (or the cell is not free)."""
    r, c, _, nh = goals.shape
    d = torch.where(goals, 0, UNREACHABLE).int()
    inf = torch.full_like(d[..., :1], UNREACHABLE)
    free_ahead = ~blocked
    while True:
        succ = torch.minimum(d.roll(-1, dims=2), d.roll(1, dims=2))  # RotateLeft: k + 1, RotateRight: k - 1
        succ = torch.minimum(succ, torch.cat([inf, d[..., :-1]], dim=3))  # LookUp: h - 1
        succ = torch.minimum(succ, torch.cat([d[..., 1:], inf], dim=3))  # LookDown: h + 1
        ahead = torch.full_like(d, UNREACHABLE)
        for k, (di, dj) in enumerate(STEP):
            src_i, dst_i = (slice(0, r - di), slice(di, r)) if di >= 0 else (slice(-di, r), slice(0, r + di))
            src_j, dst_j = (slice(0, c - dj), slice(dj, c)) if dj >= 0 else (slice(-dj, c), slice(0, c + dj))
            ahead[src_i, src_j, k] = d[dst_i, dst_j, k]
        ahead = torch.where(free_ahead[..., None], ahead, UNREACHABLE)
        new = torch.minimum(d, torch.minimum(succ, ahead) + 1).clamp(max=UNREACHABLE)
        if torch.equal(new, d):
            return d
        d = new


def next_pose(pose: tuple[int, int, int, int], action: str) -> tuple[int, int, int, int]:
    """The pose after navigation action `action` (a NAV_ACTIONS name), ignoring collisions."""
    i, j, k, h = pose
    if action == "MoveAhead":
        return i + STEP[k][0], j + STEP[k][1], k, h
    if action in ("RotateLeft", "RotateRight"):
        return i, j, (k + (1 if action == "RotateLeft" else -1)) % 4, h
    return i, j, k, h + (1 if action == "LookDown" else -1)


def descend(d: torch.Tensor, pose: tuple[int, int, int, int], blocked: torch.Tensor) -> str:
    """The first of NAV_ACTIONS (MoveAhead, then the turns, then the camera) that lowers distance field `d`
    by one from `pose` (not a goal pose, and one from which a goal pose is reachable). Among equally short
    routes the expert thus walks as long as it can, turns when it must, and sets the camera last, when the
    object is near and in view: horizon changes commute with the other actions, so they can always wait."""
    here = int(d[pose])
    r, c, _, nh = d.shape
    for name in NAV_ACTIONS:
        t = next_pose(pose, name)
        if name == "MoveAhead" and bool(blocked[pose[:3]]):
            continue
        if 0 <= t[0] < r and 0 <= t[1] < c and 0 <= t[3] < nh and int(d[t]) == here - 1:
            return name
    raise AssertionError(f"no action lowers the distance field at {pose}")  # cannot happen by construction


def plan_to(start: tuple[int, int, int, int], goals: torch.Tensor, blocked: torch.Tensor) -> list[str] | None:
    """The fewest NAV_ACTIONS from pose `start` = (i, j, k, h) to any goal pose, with `descend`'s tie-break;
    None if no goal pose is reachable."""
    d = distance_field(goals, blocked)
    if int(d[start]) >= UNREACHABLE:
        return None
    route, pose = [], start
    while int(d[pose]) > 0:
        route.append(descend(d, pose, blocked))
        pose = next_pose(pose, route[-1])
    return route
