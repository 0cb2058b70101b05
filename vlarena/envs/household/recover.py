"""The recovering expert: from any pose, the fewest actions to the next interaction of the episode's plan.

The recorded expert (`plan.low_actions`) only answers while the agent replays it. `PlanExpert` answers
wherever the agent stands, as long as the world is as the plan expects: the agent has done the plan's
first k interactions, in order, and no other interaction that changed the world (failed ones change
nothing). Its answer is the plan's interaction k when the pose is one from which it acts on its object
(navigate.goal_poses, with the world as it is after k interactions), else the first action, in the
order of navigate.descend (plan_to's: MoveAhead, the turns, then the camera), that lowers the number of
actions left to such a pose; STOP once all interactions are done. It descends the field plan_to descends,
with the same tie-break, so from the recorded start it repeats the recorded trajectory.

After an interaction that is not the plan's next one, `replan` gives the expert of a repaired plan, when one
reaches the goal (the task's goal conditions all hold after it; checked by replaying it on the scene's world):
the same interaction on another object of the same type takes that object's place in the rest of the plan
(swapped with it when the plan uses it later: the second apple of pick_two_obj picked up first), or else the
interaction is undone next (PutObject back where a picked-up object was, PickupObject of what was put down,
CloseObject after OpenObject, ToggleObjectOff after ToggleObjectOn, and the reverse) and the plan goes on. A
repaired plan starts with the interactions done so far, so the world is always its first k interactions
replayed. SliceObject cannot be undone.

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
from vlarena.envs.household.goals import TaskGoals, goal_conditions
from vlarena.envs.household.navigate import (
    NAV_ACTIONS,
    UNREACHABLE,
    Camera,
    descend,
    distance_field,
    goal_poses,
    next_pose,
)
from vlarena.envs.household.world import CLOSE, INTERACTIONS, OPEN, PICKUP, PUT, TOGGLE_OFF, TOGGLE_ON, HouseholdWorld
from vlarena.envs.renderer import Renderer

STOP, MOVE_AHEAD = 0, 1  # alfred_env.ACTIONS: STOP, then NAV_ACTIONS, then the interactions
FIRST_INTERACTION = 6
UNDO = {OPEN: CLOSE, CLOSE: OPEN, TOGGLE_ON: TOGGLE_OFF, TOGGLE_OFF: TOGGLE_ON}  # and PickupObject <-> PutObject
Step = tuple[int, int]  # (INTERACTIONS index, object slot)


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
                 blocked: torch.Tensor, start: tuple[int, int, int, int] | None = None,
                 goals: TaskGoals | None = None, steps: list[Step] | None = None):
        """`goals` (the episode's task, one env) lets `replan` check a repaired plan; `steps` replaces the plan's
        interactions (then `low_actions` and `start` are not read)."""
        self.hs, self.camera, self.free, self.blocked, self.goals = hs, camera, free, blocked, goals
        if steps is None:
            steps = [(INTERACTIONS.index(a["api_action"]["action"]), int(a["api_action"]["objectId"]))
                     for a in low_actions if "objectId" in a["api_action"]]
            self.recorded = {} if start is None else recorded_actions(low_actions, start)
        else:
            self.recorded = {}
        self.steps: list[Step] = list(steps)
        self._fields: dict[int, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.steps)

    def field(self, k: int) -> torch.Tensor:
        if k not in self._fields:
            world = self.world_after(k)
            look = HouseholdLook.build([self.hs])
            look.update(world)
            renderer = Renderer(look.scene_tensors, self.camera.window_config())
            action, obj = self.steps[k]
            goals = goal_poses(look, renderer, self.camera, world, 0, obj, action, self.free)
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

    def repaired(self, steps: list[Step]) -> PlanExpert:
        """The expert of another plan (`replan`'s answer) in the same episode."""
        return PlanExpert(self.hs, [], self.camera, self.free, self.blocked, goals=self.goals, steps=steps)

    def replay(self, steps: list[Step]) -> HouseholdWorld | None:
        """The scene's world after `steps` from its start; None if one of them fails."""
        slots = self.hs.slots()
        world = HouseholdWorld.from_types([[t for t, _ in slots]], [[p for _, p in slots]])
        for action, obj in steps:
            if not bool(world.interact(torch.tensor([action]), torch.tensor([obj]))[0]):
                return None
        return world

    def world_after(self, k: int) -> HouseholdWorld:
        """The world after the plan's first k interactions."""
        world = self.replay(self.steps[:k])
        if world is None:
            raise ValueError(f"the plan's first {k} interactions do not replay on {self.hs.scene.scene_id}")
        return world

    def replan(self, k: int, action: int, obj: int) -> list[Step] | None:
        """The steps of a repaired plan after the plan's first k interactions and then `action` on `obj`, which
        is not the plan's interaction k (the module doc); None when no repair reaches the goal. The first k + 1
        steps of the answer are those done."""
        if self.goals is None:
            raise ValueError("replan needs the episode's goals (PlanExpert(..., goals=TaskGoals.from_specs([spec])))")
        before = self.world_after(k)
        done, rest = [*self.steps[:k], (action, obj)], self.steps[k:]
        repairs = []
        if rest and rest[0][0] == action and int(before.otype[0, rest[0][1]]) == int(before.otype[0, obj]):
            swap = {rest[0][1]: obj, obj: rest[0][1]}
            repairs.append([(a, swap.get(o, o)) for a, o in rest[1:]])
        undo = None
        if action == PICKUP and int(before.parent[0, obj]) >= 0:
            undo = (PUT, int(before.parent[0, obj]))
        elif action == PUT and int(before.held[0]) >= 0:
            undo = (PICKUP, int(before.held[0]))
        elif action in UNDO:
            undo = (UNDO[action], obj)
        if undo is not None:
            repairs.append([undo, *rest])
        for repair in repairs:
            world = self.replay(done + repair)
            if world is not None:
                satisfied, total = goal_conditions(world, self.goals)
                if bool((satisfied == total).all()):
                    return done + repair
        return None
