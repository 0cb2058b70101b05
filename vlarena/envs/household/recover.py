"""The recovering expert: from any pose, the fewest actions to the next interaction of the episode's plan.

The recorded expert (`plan.low_actions`) only answers while the agent replays it. `PlanExpert` answers
wherever the agent stands, as long as the world is as the plan expects: the agent has done the plan's
first k interactions, in order, and no other interaction that changed the world (failed ones change
nothing). Its answer is the plan's interaction k when the pose is one from which it acts on its object
(navigate.goal_poses, with the world as it is after k interactions), else the first action, in the
order RotateLeft, RotateRight, LookUp, LookDown, MoveAhead (plan_to's), that lowers the number of
actions left to such a pose; STOP once all interactions are done. Route lengths equal plan_to's (both
are shortest), so following it from the start takes as many steps as the recorded trajectory.

Distances to the goal poses of interaction k are one field over all poses (R, C, 4 headings,
len(HORIZONS)), computed the first time the agent needs them by value iteration over the pose graph
and cached, so an answer costs a lookup. On the recorded trajectory itself (given its start pose) the
answer is the recorded action, which is also a shortest route, and no field is computed: building the
field of one interaction (rendering its goal poses) costs about 85 ms on a 2-core CPU, more than
a dozen env steps, and teacher forcing on fresh episodes would need one for every interaction.
"""

from __future__ import annotations

import torch

from vlarena.datasets.alfred.scenes import HouseholdScene
from vlarena.envs.household.appearance import HouseholdLook
from vlarena.envs.household.navigate import STEP, Camera, goal_poses
from vlarena.envs.household.world import INTERACTIONS, HouseholdWorld
from vlarena.envs.renderer import Renderer

UNREACHABLE = 1 << 20
STOP, MOVE_AHEAD, ROTATE_LEFT, ROTATE_RIGHT, LOOK_UP, LOOK_DOWN = range(6)
FIRST_INTERACTION = 6


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


def recorded_actions(low_actions: list[dict], start: tuple[int, int, int, int]) -> dict[tuple, int]:
    """{((i, j, heading, horizon), interactions done): env action} along the recorded trajectory from `start`."""
    names = ("MoveAhead", "RotateLeft", "RotateRight", "LookUp", "LookDown")
    out: dict[tuple, int] = {}
    (i, j, h, v), k = start, 0
    for a in low_actions:
        name = a["api_action"]["action"]
        if name in INTERACTIONS:
            out[(i, j, h, v), k] = FIRST_INTERACTION + INTERACTIONS.index(name)
            k += 1
            continue
        out[(i, j, h, v), k] = MOVE_AHEAD + names.index(name)
        if name == "MoveAhead":
            i, j = i + STEP[h][0], j + STEP[h][1]
        h = (h + (name == "RotateLeft") - (name == "RotateRight")) % 4
        v += (name == "LookDown") - (name == "LookUp")
    return out


class PlanExpert:
    """The recovering expert of one episode (its scene, its plan's interactions, the env's camera)."""

    def __init__(self, hs: HouseholdScene, low_actions: list[dict], camera: Camera, free: torch.Tensor,
                 blocked: torch.Tensor, start: tuple[int, int, int, int] | None = None):
        self.hs, self.camera, self.free, self.blocked = hs, camera, free, blocked
        self.steps = [(INTERACTIONS.index(a["api_action"]["action"]), int(a["api_action"]["objectId"]))
                      for a in low_actions if "objectId" in a["api_action"]]
        self.recorded = {} if start is None else recorded_actions(low_actions, start)
        self._fields: dict[int, torch.Tensor] = {}
        self._world: HouseholdWorld | None = None
        self._done = 0  # interactions applied to self._world

    def __len__(self) -> int:
        return len(self.steps)

    def field(self, k: int) -> torch.Tensor:
        if k not in self._fields:
            slots = self.hs.slots()
            if self._world is None or self._done > k:
                self._world = HouseholdWorld.from_types([[t for t, _ in slots]], [[p for _, p in slots]])
                self._done = 0
            while self._done < k:
                action, obj = self.steps[self._done]
                self._world.interact(torch.tensor([action]), torch.tensor([obj]))
                self._done += 1
            look = HouseholdLook.build([self.hs])
            look.update(self._world)
            renderer = Renderer(look.scene_tensors, self.camera.window_config())
            action, obj = self.steps[k]
            goals = goal_poses(look, renderer, self.camera, self._world, 0, obj, action, self.free)
            self._fields[k] = distance_field(goals, self.blocked)
        return self._fields[k]

    def action(self, pose: tuple[int, int, int, int], k: int) -> int:
        """The env action (alfred_env.ACTIONS index) at `pose` after the plan's first k interactions; -1 when
        no goal pose of interaction k can be reached from here."""
        if k >= len(self.steps):
            return STOP
        if (pose, k) in self.recorded:
            return self.recorded[pose, k]
        d = self.field(k)
        i, j, h, v = pose
        here = int(d[i, j, h, v])
        if here == 0:
            return FIRST_INTERACTION + self.steps[k][0]
        if here >= UNREACHABLE:
            return -1
        nh = d.shape[3]
        options = [(ROTATE_LEFT, (i, j, (h + 1) % 4, v)), (ROTATE_RIGHT, (i, j, (h - 1) % 4, v))]
        if v > 0:
            options.append((LOOK_UP, (i, j, h, v - 1)))
        if v < nh - 1:
            options.append((LOOK_DOWN, (i, j, h, v + 1)))
        if not bool(self.blocked[i, j, h]):
            options.append((MOVE_AHEAD, (i + STEP[h][0], j + STEP[h][1], h, v)))
        for a, p in options:
            if 0 <= p[0] < d.shape[0] and 0 <= p[1] < d.shape[1] and int(d[p]) == here - 1:
                return a
        raise AssertionError("a distance field without a descending neighbour")  # cannot happen by construction

    def expects(self, k: int, action: int, obj: int) -> bool:
        """Whether interaction `action` (an INTERACTIONS index) on `obj` is the plan's interaction k."""
        return k < len(self.steps) and self.steps[k] == (action, obj)
