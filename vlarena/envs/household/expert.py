"""The expert's low-level actions for a household task, checked in the rendered world (ALFRED's
`plan.low_actions`).

    traj = expert_trajectory(hs, spec, start=(i, j, k, h))
    traj.actions          # ["RotateLeft", "MoveAhead", ..., "OpenObject", ...]
    traj.high_idx         # the high-level subgoal each action belongs to
    traj.objects          # the object slot of each interaction (-1 for navigation)

The high-level plan (planner.high_level_plan) lists interactions; before each one the expert walks to
the nearest pose from which that interaction picks its object (navigate.goal_poses, with the world as it
is at that point: an apple in a closed fridge is not visible until the fridge is open), then acts. Every
interaction is applied to the world; one that fails, or an object no pose can reach, is an error naming
the subgoal, so a generated task the expert cannot finish never reaches a dataset.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from vlarena.datasets.alfred.planner import high_level_plan
from vlarena.datasets.alfred.scenes import HouseholdScene
from vlarena.datasets.alfred.tasks import TaskSpec
from vlarena.envs.household.appearance import HouseholdLook
from vlarena.envs.household.goals import TaskGoals, goal_conditions
from vlarena.envs.household.navigate import Camera, blocked_table, goal_poses, next_pose, plan_to
from vlarena.envs.household.world import INTERACTIONS, HouseholdWorld
from vlarena.envs.motion import MotionConfig
from vlarena.envs.renderer import Renderer
from vlarena.envs.scene_tensors import SceneTensors

Pose = tuple[int, int, int, int]


@dataclass
class ExpertTrajectory:
    actions: list[str] = field(default_factory=list)
    high_idx: list[int] = field(default_factory=list)
    objects: list[int] = field(default_factory=list)
    goal_conditions: tuple[int, int] = (0, 0)  # (satisfied, total) at the end

    def low_actions(self) -> list[dict]:
        """ALFRED's `plan.low_actions` entries."""
        out = []
        for action, idx, obj in zip(self.actions, self.high_idx, self.objects, strict=True):
            api = {"action": action} if obj < 0 else {"action": action, "objectId": obj}
            name = f"{action}_25" if action == "MoveAhead" else action
            out.append({"high_idx": idx, "api_action": api, "discrete_action": {"action": name, "args": {}}})
        return out


def walk(pose: Pose, actions: list[str]) -> Pose:
    """The pose after navigation actions (the expert's route never collides)."""
    for a in actions:
        pose = next_pose(pose, a)
    return pose


def expert_trajectory(hs: HouseholdScene, spec: TaskSpec, start: Pose, camera: Camera | None = None,
                      motion: MotionConfig | None = None) -> ExpertTrajectory:
    camera = camera or Camera()
    motion = motion or MotionConfig(turn_deg=90.0)
    slots = hs.slots()
    world = HouseholdWorld.from_types([[t for t, _ in slots]], [[p for _, p in slots]])
    look = HouseholdLook.build([hs])
    renderer = Renderer(look.scene_tensors, camera.window_config())
    free, blocked = blocked_table(SceneTensors.from_scenes([hs.scene]), 0, motion)
    if not bool(free[start[0], start[1]]):
        raise ValueError(f"start pose {start} of {hs.scene.scene_id} is not on a free cell")
    traj, pose = ExpertTrajectory(), start
    for idx, sub in enumerate(high_level_plan(spec, slots)):
        for name, obj in sub.interactions:
            action = INTERACTIONS.index(name)
            look.update(world)
            renderer.refresh_objects()
            goals = goal_poses(look, renderer, camera, world, 0, obj, action, free)
            route = plan_to(pose, goals, blocked)
            if route is None:
                raise RuntimeError(f"{hs.scene.scene_id}: no pose from which {name} reaches object {obj} "
                                   f"({slots[obj][0]}) for subgoal {idx} ({sub.action}) of {spec}")
            pose = walk(pose, route)
            if not bool(world.interact(torch.tensor([action]), torch.tensor([obj]))[0]):
                raise RuntimeError(f"{hs.scene.scene_id}: {name} on object {obj} ({slots[obj][0]}) failed in "
                                   f"subgoal {idx} ({sub.action}) of {spec}")
            traj.actions += [*route, name]
            traj.high_idx += [idx] * (len(route) + 1)
            traj.objects += [-1] * len(route) + [obj]
    satisfied, total = goal_conditions(world, TaskGoals.from_specs([spec]))
    traj.goal_conditions = (int(satisfied[0]), int(total[0]))
    return traj
