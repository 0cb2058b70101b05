"""The recovering expert: from any pose, the fewest actions to the next interaction of the episode's plan.

The recorded expert (`plan.low_actions`) only answers while the agent replays it. `PlanExpert` answers
wherever the agent stands, as long as the world is as the plan expects: the agent has done the plan's
first k interactions, in order, and no other interaction that changed the world (failed ones change
nothing). Its answer is the plan's interaction k when the pose is one from which it acts on its object
(navigate.goal_poses, with the world as it is after k interactions), else the first action, in the
order of navigate.descend (plan_to's: MoveAhead, the turns, then the camera), that lowers the number of
actions left to such a pose; STOP once all interactions are done. It descends the field plan_to descends,
with the same tie-break, so from the recorded start it repeats the recorded trajectory.

Distances to the goal poses of interaction k are one field over all poses (navigate.distance_field),
computed the first time the agent needs them and cached, so an answer costs a lookup. On the recorded
trajectory itself (given its start pose) the answer is the recorded action and no field is computed:
building the field of one interaction (rendering its goal poses) costs about 85 ms on a 2-core CPU, more than
a dozen env steps, and teacher forcing on fresh episodes would need one for every interaction.
"""

from __future__ import annotations

import torch

from vlarena.datasets.alfred.scenes import HouseholdScene
from vlarena.envs.household.appearance import HouseholdLook
from vlarena.envs.household.navigate import (
    NAV_ACTIONS,
    UNREACHABLE,
    Camera,
    descend,
    distance_field,
    goal_poses,
    next_pose,
)
from vlarena.envs.household.world import INTERACTIONS, HouseholdWorld
from vlarena.envs.renderer import Renderer

STOP, MOVE_AHEAD = 0, 1  # alfred_env.ACTIONS: STOP, then NAV_ACTIONS, then the interactions
FIRST_INTERACTION = 6


def recorded_actions(low_actions: list[dict], start: tuple[int, int, int, int]) -> dict[tuple, int]:
    """{((i, j, heading, horizon), interactions done): env action} along the recorded trajectory from `start`."""
    out: dict[tuple, int] = {}
    pose, k = start, 0
    for a in low_actions:
        name = a["api_action"]["action"]
        if name in INTERACTIONS:
            out[pose, k] = FIRST_INTERACTION + INTERACTIONS.index(name)
            k += 1
            continue
        out[pose, k] = MOVE_AHEAD + NAV_ACTIONS.index(name)
        pose = next_pose(pose, name)
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
        here = int(d[pose])
        if here == 0:
            return FIRST_INTERACTION + self.steps[k][0]
        if here >= UNREACHABLE:
            return -1
        return MOVE_AHEAD + NAV_ACTIONS.index(descend(d, pose, self.blocked))

    def expects(self, k: int, action: int, obj: int) -> bool:
        """Whether interaction `action` (an INTERACTIONS index) on `obj` is the plan's interaction k."""
        return k < len(self.steps) and self.steps[k] == (action, obj)
