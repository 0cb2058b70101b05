"""Goal conditions of ALFRED's task types over a batched HouseholdWorld (the counts are in
`vlarena.datasets.alfred.tasks`).

    goals = TaskGoals.from_specs(specs, device)
    satisfied, total = goal_conditions(world, goals)     # (B,) long each; success = satisfied == total
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from vlarena.datasets.alfred.objects import TYPE_INDEX
from vlarena.datasets.alfred.tasks import BASE_GOAL_CONDITIONS, STATE_CHANGE, TASK_TYPES, TaskSpec
from vlarena.envs.household.world import HouseholdWorld


@dataclass
class TaskGoals:
    """One task per env: type index into TASK_TYPES and the target type ids (-1 where unused)."""

    task_type: torch.Tensor  # (B,) long
    object_target: torch.Tensor
    parent_target: torch.Tensor
    toggle_target: torch.Tensor
    mrecep_target: torch.Tensor
    object_sliced: torch.Tensor  # (B,) bool

    @classmethod
    def from_specs(cls, specs: Sequence[TaskSpec], device: str | torch.device = "cpu") -> TaskGoals:
        def ids(name: str) -> torch.Tensor:
            return torch.tensor([TYPE_INDEX[getattr(s, name)] if getattr(s, name) else -1 for s in specs],
                                dtype=torch.long, device=device)

        for s in specs:
            s.check()
        return cls(torch.tensor([TASK_TYPES.index(s.task_type) for s in specs], dtype=torch.long, device=device),
                   ids("object_target"), ids("parent_target"), ids("toggle_target"), ids("mrecep_target"),
                   torch.tensor([s.object_sliced for s in specs], dtype=torch.bool, device=device))


def goal_conditions(world: HouseholdWorld, goals: TaskGoals) -> tuple[torch.Tensor, torch.Tensor]:
    """(satisfied, total) goal conditions per env, as ALFRED counts them (tasks.py module doc)."""
    kind = goals.task_type
    parent_type = world.gather(world.otype, world.parent)
    grandparent_type = world.gather(parent_type, world.parent)
    targets = (world.otype == goals.object_target[:, None]) & (world.sliced | ~goals.object_sliced[:, None])
    in_parent = targets & (parent_type == goals.parent_target[:, None])
    any_in_parent = in_parent.any(1)

    def count(x: torch.Tensor) -> torch.Tensor:
        return x.long()

    simple = count(any_in_parent)
    two = in_parent.sum(1).clamp(max=2)
    lamp_on = ((world.otype == goals.toggle_target[:, None]) & world.is_on).any(1)
    holding = world.gather(targets, world.held, False)
    look = count(lamp_on) + count(holding)
    changed = {}
    for task, state in STATE_CHANGE.items():
        done = targets & getattr(world, state)
        changed[task] = count(any_in_parent) + count(done.any(1)) + count((done & in_parent).any(1))
    in_mrecep = targets & (parent_type == goals.mrecep_target[:, None])
    mrecep_in_parent = ((world.otype == goals.mrecep_target[:, None]) &
                        (parent_type == goals.parent_target[:, None])).any(1)
    nested = in_mrecep & (grandparent_type == goals.parent_target[:, None])
    movable = count(in_mrecep.any(1)) + count(mrecep_in_parent) + count(nested.any(1))

    by_type = {"pick_and_place_simple": simple, "pick_two_obj_and_place": two, "look_at_obj_in_light": look,
               **changed, "pick_and_place_with_movable_recep": movable}
    satisfied = torch.zeros_like(kind)
    total = torch.zeros_like(kind)
    for i, name in enumerate(TASK_TYPES):
        mine = kind == i
        satisfied = torch.where(mine, by_type[name], satisfied)
        total = torch.where(mine, torch.full_like(kind, BASE_GOAL_CONDITIONS[name]), total)
    sliced = count((targets & world.sliced).any(1))
    satisfied = satisfied + torch.where(goals.object_sliced, sliced, 0)
    total = total + goals.object_sliced.long()
    return satisfied, total
