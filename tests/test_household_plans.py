"""ALFRED task types: the expert's plan, run interaction by interaction in the batched world, meets every goal condition."""

from __future__ import annotations

import pytest
import torch

from vlarena.datasets.alfred.planner import high_level_plan
from vlarena.datasets.alfred.tasks import TASK_TYPES, TaskSpec
from vlarena.envs.household.goals import TaskGoals, goal_conditions
from vlarena.envs.household.world import INTERACTIONS, HouseholdWorld

# a kitchen-and-living-room scene: (type, parent index)
SCENE = [
    ("CounterTop", -1), ("Fridge", -1), ("Microwave", -1), ("SinkBasin", -1), ("Faucet", -1), ("DiningTable", -1),
    ("Cabinet", -1), ("DeskLamp", -1), ("SideTable", -1),
    ("Apple", 1),        # 9: in the fridge (closed)
    ("Apple", 0),        # 10: on the counter
    ("Knife", 5),        # 11: on the table
    ("Bowl", 0),         # 12
    ("Mug", 6),          # 13: in the cabinet
    ("Book", 8),         # 14
    ("Potato", 0),       # 15
]

SPECS = [
    TaskSpec("pick_and_place_simple", "Apple", parent_target="DiningTable"),
    TaskSpec("pick_and_place_simple", "Apple", parent_target="DiningTable", object_sliced=True),
    TaskSpec("pick_two_obj_and_place", "Apple", parent_target="Cabinet"),
    TaskSpec("pick_two_obj_and_place", "Apple", parent_target="CounterTop", object_sliced=True),
    TaskSpec("look_at_obj_in_light", "Book", toggle_target="DeskLamp"),
    TaskSpec("pick_clean_then_place_in_recep", "Potato", parent_target="DiningTable"),
    TaskSpec("pick_heat_then_place_in_recep", "Potato", parent_target="Fridge"),
    TaskSpec("pick_cool_then_place_in_recep", "Apple", parent_target="Microwave", object_sliced=True),
    TaskSpec("pick_and_place_with_movable_recep", "Apple", parent_target="SideTable", mrecep_target="Bowl"),
]


def world_for(specs):
    return HouseholdWorld.from_types([[t for t, _ in SCENE]] * len(specs), [[p for _, p in SCENE]] * len(specs))


def run_plans(specs):
    """Step every env through its own plan's interactions in lockstep; returns the world, goals and trace."""
    world, goals = world_for(specs), TaskGoals.from_specs(specs)
    steps = [[i for sub in high_level_plan(s, SCENE) for i in sub.interactions] for s in specs]
    start = goal_conditions(world, goals)
    for k in range(max(map(len, steps))):
        action = torch.tensor([INTERACTIONS.index(p[k][0]) if k < len(p) else 0 for p in steps])
        target = torch.tensor([p[k][1] if k < len(p) else -1 for p in steps])
        ok = world.interact(action, target)
        expected = torch.tensor([k < len(p) for p in steps])
        assert torch.equal(ok, expected), (k, [p[k] if k < len(p) else None for p in steps], ok)
    return world, goals, start


def test_every_task_type_is_solved_by_its_expert_plan():
    assert {s.task_type for s in SPECS} == set(TASK_TYPES)
    world, goals, (s0, total) = run_plans(SPECS)
    satisfied, total_after = goal_conditions(world, goals)
    assert torch.equal(total, total_after)
    assert total.tolist() == [1, 2, 2, 3, 2, 3, 3, 4, 3]
    assert torch.equal(satisfied, total)
    assert (s0 < total).all()
    assert (world.held == -1).tolist() == [True] * 4 + [False] + [True] * 4  # look_at ends holding the book


def test_heat_plan_matches_alfreds_low_level_sequence():
    plan = high_level_plan(SPECS[6], SCENE)
    assert [s.action for s in plan] == ["GotoLocation", "PickupObject", "GotoLocation", "HeatObject", "GotoLocation",
                                        "PutObject", "NoOp"]
    assert [s.args for s in plan][:4] == [("countertop",), ("potato",), ("microwave",), ("potato",)]
    assert list(plan[3].interactions) == [("OpenObject", 2), ("PutObject", 2), ("CloseObject", 2),
                                          ("ToggleObjectOn", 2), ("ToggleObjectOff", 2), ("OpenObject", 2),
                                          ("PickupObject", 15), ("CloseObject", 2)]
    assert list(plan[5].interactions) == [("OpenObject", 1), ("PutObject", 1), ("CloseObject", 1)]
    assert plan[0].to_high_pddl(0) == {"high_idx": 0, "discrete_action": {"action": "GotoLocation",
                                                                          "args": ["countertop"]},
                                       "planner_action": {"action": "GotoLocation", "objectIds": [0]}}


def test_goal_conditions_count_partial_progress():
    spec = TaskSpec("pick_heat_then_place_in_recep", "Potato", parent_target="DiningTable")
    world, goals = world_for([spec]), TaskGoals.from_specs([spec])
    assert [int(v) for v in goal_conditions(world, goals)] == [0, 3]
    world.parent[0, 15] = 5  # the potato on the table, cold: 1 of 3
    assert [int(v) for v in goal_conditions(world, goals)] == [1, 3]
    world.heated[0, 10] = True  # an apple heated does not count
    assert int(goal_conditions(world, goals)[0]) == 1
    world.heated[0, 15] = True
    assert [int(v) for v in goal_conditions(world, goals)] == [3, 3]


def test_a_task_whose_objects_are_absent_names_the_type_and_role():
    with pytest.raises(ValueError, match="0 object\\(s\\) of type Lettuce for object_target"):
        high_level_plan(TaskSpec("pick_and_place_simple", "Lettuce", parent_target="CounterTop"), SCENE)
    with pytest.raises(ValueError, match="of type FloorLamp for toggle_target"):
        high_level_plan(TaskSpec("look_at_obj_in_light", "Book", toggle_target="FloorLamp"), SCENE)


def test_task_specs_are_checked():
    with pytest.raises(ValueError, match="task_type must be one of"):
        TaskSpec("pick_and_throw", "Apple").check()
    with pytest.raises(ValueError, match="parent_target must be a fixed receptacle"):
        TaskSpec("pick_and_place_simple", "Apple", parent_target="Knife").check()
    with pytest.raises(ValueError, match="toggle_target must be empty"):
        TaskSpec("pick_and_place_simple", "Apple", parent_target="Desk", toggle_target="DeskLamp").check()
    with pytest.raises(ValueError, match="object_sliced needs a sliceable object_target"):
        TaskSpec("pick_and_place_simple", "Book", parent_target="Desk", object_sliced=True).check()
    with pytest.raises(ValueError, match="unknown object_target 'Banana'"):
        TaskSpec("pick_and_place_simple", "Banana", parent_target="Desk").check()
    with pytest.raises(ValueError, match=r"pddl_params lacks \['mrecep_target'\]"):
        TaskSpec.from_pddl("pick_and_place_simple", {"object_target": "Apple", "parent_target": "Desk",
                                                     "toggle_target": "", "object_sliced": False})
    spec = SPECS[8]
    assert TaskSpec.from_pddl(spec.task_type, spec.pddl_params()) == spec
