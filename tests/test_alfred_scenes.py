"""Household scenes and sampled tasks: every task type a scene allows is solved by the expert's plan in the world."""

from __future__ import annotations

import collections

import numpy as np
import pytest
import torch

from vlarena.datasets.alfred.planner import high_level_plan
from vlarena.datasets.alfred.sample import feasible_task_types, sample_task
from vlarena.datasets.alfred.scenes import ROOM_TYPES, generate_household
from vlarena.datasets.alfred.tasks import TASK_TYPES
from vlarena.envs.household.goals import TaskGoals, goal_conditions
from vlarena.envs.household.world import INTERACTIONS, HouseholdWorld


def solve(hs, spec):
    """(goal conditions before, after) of running the expert's interactions; every interaction must succeed."""
    slots = hs.slots()
    world = HouseholdWorld.from_types([[t for t, _ in slots]], [[p for _, p in slots]])
    goals = TaskGoals.from_specs([spec])
    before = goal_conditions(world, goals)
    for sub in high_level_plan(spec, slots):
        for action, obj in sub.interactions:
            ok = world.interact(torch.tensor([INTERACTIONS.index(action)]), torch.tensor([obj]))
            assert bool(ok[0]), (hs.scene.scene_id, spec, action, slots[obj])
    return [int(v) for v in before], [int(v) for v in goal_conditions(world, goals)]


def test_households_are_seeded_and_typed():
    a, b = generate_household(3), generate_household(3)
    assert a.slots() == b.slots() and a.scene.objects == b.scene.objects
    kitchen = generate_household(5, room_type="kitchen")
    types = {t for t, _ in kitchen.slots()}
    assert {"Fridge", "CounterTop", "SinkBasin", "Faucet", "Microwave"} <= types
    assert kitchen.room_type == "kitchen" and kitchen.scene.rooms[0].type == "kitchen"
    for o in kitchen.objects:
        if o.furniture < 0:  # small objects start on or in furniture
            assert kitchen.objects[o.parent].furniture >= 0
    with pytest.raises(ValueError, match="room_type must be one of"):
        generate_household(0, room_type="garage")


def test_every_sampled_task_is_solved_by_the_expert():
    coverage = collections.Counter()
    for seed in range(24):
        hs = generate_household(seed, room_type=ROOM_TYPES[seed % 4])
        rng = np.random.default_rng(seed)
        for kind in feasible_task_types(hs):
            spec = sample_task(hs, rng, kind)
            (s0, total), (s1, total1) = solve(hs, spec)
            assert total == total1 == spec.num_goal_conditions
            assert s1 == total and s0 < total, (spec, s0, s1)
            coverage[kind] += 1
    assert set(coverage) == set(TASK_TYPES), coverage


def test_an_infeasible_task_type_is_named():
    hs = generate_household(1, room_type="bathroom")
    assert "pick_heat_then_place_in_recep" not in feasible_task_types(hs)
    with pytest.raises(ValueError, match="cannot hold a pick_heat_then_place_in_recep task; it allows"):
        sample_task(hs, np.random.default_rng(0), "pick_heat_then_place_in_recep")
