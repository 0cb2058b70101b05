"""The recovering expert repairs its plan after an interaction it did not ask for (`env.kwargs.replan`)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from vlarena.envs.alfred_env import AlfredVectorEnv
from vlarena.envs.household.goals import TaskGoals
from vlarena.envs.household.recover import PlanExpert
from vlarena.envs.household.world import PICKUP, PUT


@pytest.fixture(scope="module")
def env():
    return AlfredVectorEnv(num_envs=2, split="valid_unseen", num_episodes=2, replan=True)


def test_a_repaired_plan_takes_the_other_object_or_undoes_the_interaction_and_the_expert_finishes(env):
    obs, info = env.reset(options={"episode_id": [1, 1]})
    assert env.specs[1].task_type == "pick_two_obj_and_place"
    plan = env._plan[0].steps
    (_, first), (_, recep), (_, second), _ = plan
    world = env.world
    assert int(world.otype[0, first]) == int(world.otype[0, second])
    hidden = world.hidden()[1]
    other = next(j for j in range(world.otype.shape[1]) if bool(world.has("pickupable", world.otype[1, j]))
                 and int(world.otype[1, j]) != int(world.otype[1, first]) and not hidden[j]
                 and int(world.parent[1, j]) >= 0)
    parent = int(world.parent[1, other])
    # env 0 picks up the plan's second object first; env 1 an object of another type
    act, target = torch.tensor([PICKUP, PICKUP]), torch.tensor([second, other])
    assert world.interact(act, target).all()
    env._follow_plan(torch.tensor([True, True]), act, target)
    assert env.on_plan.tolist() == [True, True] and env.plan_step.tolist() == [1, 1]
    assert env._plan[0].steps == [(PICKUP, second), (PUT, recep), (PICKUP, first), (PUT, recep)]  # swapped
    assert env._plan[1].steps == [(PICKUP, other), (PUT, parent), *plan]  # put back, then the plan
    assert env._experts[1].steps == plan  # the episode's own expert is not changed
    info = env._reset_info()
    done, success = torch.zeros(2, dtype=torch.bool), torch.zeros(2, dtype=torch.bool)
    for _ in range(400):
        assert (done | info["expert_valid"]).all()
        obs, _, _, _, info = env.step(info["expert_action"])
        success |= info["success"] & ~done
        done |= info["done"]
        if done.all():
            break
    assert success.all()
    env.reset(options={"episode_id": [1, 1]})  # a new episode starts with the recorded plan again
    assert env._plan[0] is env._experts[1] and env._plan[1] is env._experts[1]


def test_replan_needs_the_goals_and_refuses_a_repair_that_misses_the_goal(env):
    env.reset(options={"episode_id": [1, 1]})
    expert = env._experts[1]
    second = expert.steps[2][1]
    assert expert.replan(0, PICKUP, second) is not None
    plain = PlanExpert(expert.hs, [], expert.camera, expert.free, expert.blocked, steps=expert.steps)
    with pytest.raises(ValueError, match="replan needs the episode's goals"):
        plain.replan(0, PICKUP, second)
    # the same plan checked against a goal it never meets (a receptacle type the scene lacks): no repair
    types = {t for t, _ in expert.hs.slots()}
    absent = next(t for t in ("Microwave", "Fridge", "SinkBasin", "Bathtub", "Safe") if t not in types)
    spec = dataclasses.replace(env.specs[1], parent_target=absent)
    impossible = PlanExpert(expert.hs, [], expert.camera, expert.free, expert.blocked,
                            goals=TaskGoals.from_specs([spec]), steps=expert.steps)
    assert impossible.replan(0, PICKUP, second) is None
    assert expert.replan(1, PUT, expert.steps[0][1]) is None  # into the held object itself: fails in the replay
