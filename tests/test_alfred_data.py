"""ALFRED-style language and traj_data.json: instructions per subgoal, validation naming the field, round trip."""

from __future__ import annotations

import copy
import json
import random

import pytest

from tests.test_household_plans import SCENE, SPECS
from vlarena.datasets.alfred.instructions import describe
from vlarena.datasets.alfred.planner import high_level_plan
from vlarena.datasets.alfred.traj_data import build_traj, read_traj, validate_traj, write_traj


def traj_for(spec, seed=0):
    plan = high_level_plan(spec, SCENE)
    anns = [describe(spec, plan, SCENE, random.Random(seed + k)) for k in range(3)]
    low = [{"high_idx": h, "api_action": {"action": a, "objectId": o}, "discrete_action": {"action": a, "args": {}}}
           for h, sub in enumerate(plan) for a, o in sub.interactions]
    return build_traj(f"trial_{seed:05d}", spec, "train", "scene_0007", 7, seed, list(SCENE), plan, low, anns)


def test_instructions_follow_the_plan():
    spec = SPECS[6]  # heat a potato, put it in the fridge
    plan = high_level_plan(spec, SCENE)
    goal, steps = describe(spec, plan, SCENE, random.Random(3))
    assert len(steps) == len(plan) - 1
    assert "potato" in goal and "fridge" in goal
    assert "counter" in steps[0] and "potato" in steps[1] and "microwave" in steps[2]
    assert "microwave" in steps[3] and "fridge" in steps[4] and steps[5].endswith("in the fridge.")
    wordings = {describe(spec, plan, SCENE, random.Random(s))[0] for s in range(20)}
    assert len(wordings) >= 2  # varied wording
    assert describe(spec, plan, SCENE, random.Random(3)) == (goal, steps)  # seeded
    goal2, _ = describe(SPECS[2], high_level_plan(SPECS[2], SCENE), SCENE, random.Random(0))
    assert "two apples" in goal2 or "pair of apples" in goal2


def test_every_task_type_round_trips_through_traj_data(tmp_path):
    for i, spec in enumerate(SPECS):
        traj = traj_for(spec, i)
        path = write_traj(tmp_path / f"{i}" / "traj_data.json", traj)
        back = read_traj(path)
        assert back == json.loads(json.dumps(traj))
        assert validate_traj(back) == spec
        assert len(back["turk_annotations"]["anns"]) == 3


@pytest.mark.parametrize("breakage, message", [
    (lambda t: t.pop("pddl_params"), "missing field 'pddl_params'"),
    (lambda t: t["pddl_params"].pop("object_target"), r"pddl_params: pddl_params lacks \['object_target'\]"),
    (lambda t: t.update(split="val"), "split must be one of"),
    (lambda t: t["scene"]["objects"][3].update(objectType="Sink"), r"scene.objects\[3\]: unknown object type 'Sink'"),
    (lambda t: t["plan"]["high_pddl"][1].update(high_idx=5), r"high_pddl\[1\].high_idx must be 1"),
    (lambda t: t["plan"]["low_actions"][0].update(high_idx=99), r"low_actions\[0\].high_idx must index"),
    (lambda t: t["turk_annotations"]["anns"][0]["high_descs"].pop(), r"anns\[0\].high_descs must hold 4 strings"),
    (lambda t: t["scene"].update(scene_num="7"), "scene.scene_num must be int, got str"),
])
def test_bad_traj_data_names_the_field(tmp_path, breakage, message):
    traj = copy.deepcopy(traj_for(SPECS[0]))
    breakage(traj)
    with pytest.raises(ValueError, match=message):
        validate_traj(traj)
    path = tmp_path / "traj_data.json"
    with pytest.raises(ValueError, match=message):
        write_traj(path, traj)
    assert not path.exists()  # nothing half-written
