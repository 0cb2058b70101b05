"""The expert's low-level actions, run in the rendered world, complete the task; an unreachable object is an error."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vlarena.datasets.alfred.planner import high_level_plan
from vlarena.datasets.alfred.sample import sample_task
from vlarena.datasets.alfred.scenes import generate_household
from vlarena.envs.household.expert import expert_trajectory
from vlarena.envs.household.navigate import START_HORIZON, blocked_table
from vlarena.envs.motion import MotionConfig
from vlarena.envs.scene_tensors import SceneTensors


def start_for(hs, rng):
    free, _ = blocked_table(SceneTensors.from_scenes([hs.scene]), 0, MotionConfig(turn_deg=90.0))
    cells = free.nonzero()
    c = cells[int(rng.integers(len(cells)))]
    return int(c[0]), int(c[1]), int(rng.integers(4)), START_HORIZON


@pytest.mark.parametrize("kind", ["pick_clean_then_place_in_recep", "pick_and_place_with_movable_recep"])
def test_the_expert_completes_kitchen_tasks(kind):
    hs = generate_household(0, room_type="kitchen")
    rng = np.random.default_rng(0)
    spec = sample_task(hs, rng, kind)
    traj = expert_trajectory(hs, spec, start_for(hs, rng))
    satisfied, total = traj.goal_conditions
    assert satisfied == total == spec.num_goal_conditions
    plan = high_level_plan(spec, hs.slots())
    interactions = [(a, o) for a, o in zip(traj.actions, traj.objects, strict=True) if o >= 0]
    assert interactions == [i for sub in plan for i in sub.interactions]  # the plan's, in order
    assert len(traj.actions) > len(interactions)  # and walking in between
    assert traj.high_idx == sorted(traj.high_idx) and traj.high_idx[-1] < len(plan)
    low = traj.low_actions()
    assert low[0]["api_action"]["action"] == traj.actions[0]
    assert all(("objectId" in x["api_action"]) == (o >= 0) for x, o in zip(low, traj.objects, strict=True))


def test_an_unreachable_object_is_an_error_naming_the_subgoal(monkeypatch):
    import vlarena.envs.household.expert as expert

    hs = generate_household(0, room_type="kitchen")
    rng = np.random.default_rng(0)
    spec = sample_task(hs, rng, "pick_and_place_simple")
    start = start_for(hs, rng)
    monkeypatch.setattr(expert, "goal_poses", lambda *a, **k: torch.zeros(32, 32, 4, 7, dtype=torch.bool))
    with pytest.raises(RuntimeError, match=r"no pose from which \w+Object reaches object \d+ \(\w+\) for subgoal 1 "
                                           r"\(PickupObject\)"):
        expert_trajectory(hs, spec, start)
    with pytest.raises(ValueError, match="is not on a free cell"):
        expert_trajectory(hs, spec, (0, 0, 0, START_HORIZON))
