"""ALFRED-style splits on disk: valid traj_data files whose recorded expert actions replay to the same actions."""

from __future__ import annotations

import pytest

from vlarena.datasets.alfred.scenes import generate_household
from vlarena.datasets.alfred.traj_data import read_traj, validate_traj
from vlarena.envs.household.expert import expert_trajectory
from vlarena.envs.household.generate import SCENE_SEEDS, generate_split
from vlarena.envs.household.navigate import HORIZONS


def test_a_generated_split_is_valid_and_replays(tmp_path):
    paths = generate_split("valid_unseen", 2, tmp_path)
    assert [p.parent.name for p in paths] == ["trial_valid_unseen_00000", "trial_valid_unseen_00001"]
    for path in paths:
        traj = read_traj(path)
        spec = validate_traj(traj)
        scene = traj["scene"]
        assert scene["scene_num"] >= SCENE_SEEDS["valid_unseen"][0]  # a held-out scene
        assert len(traj["turk_annotations"]["anns"]) == 3
        hs = generate_household(scene["scene_num"], room_type=scene["room_type"])
        assert [[t, p] for t, p in hs.slots()] == [[o["objectType"], o["parent"]] for o in scene["objects"]]
        init = scene["init_action"]
        start = (init["cell"][0], init["cell"][1], init["rotation"] // 90, HORIZONS.index(init["horizon"]))
        replay = expert_trajectory(hs, spec, start)
        assert replay.low_actions() == traj["plan"]["low_actions"]
        assert replay.goal_conditions[0] == replay.goal_conditions[1] == spec.num_goal_conditions
    # a range written by another process (--start) holds the same episode as the whole run
    [second] = generate_split("valid_unseen", 1, tmp_path / "chunk", start=1)
    assert second.parent.name == "trial_valid_unseen_00001" and read_traj(second) == read_traj(paths[1])


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(ValueError, match="split must be one of"):
        generate_split("val", 1, tmp_path)
    with pytest.raises(ValueError, match="num_episodes must be a positive int"):
        generate_split("train", 0, tmp_path)
    with pytest.raises(ValueError, match="start must be an int >= 0"):
        generate_split("train", 1, tmp_path, start=-1)


def test_the_data_command_writes_a_split(tmp_path, capsys):
    from vlarena.cli import main

    assert main(["data", "alfred", "--out", str(tmp_path), "--split", "test", "--episodes", "1"]) == 0
    assert "1 test episodes in" in capsys.readouterr().out
    assert read_traj(tmp_path / "test" / "trial_test_00000" / "traj_data.json")["split"] == "test"
    assert main(["data", "alfred", "--out", str(tmp_path), "--split", "val"]) == 2
    assert "split must be one of" in capsys.readouterr().err


def test_a_scene_that_allows_no_task_gives_no_episode():
    from vlarena.datasets.alfred.sample import feasible_task_types
    from vlarena.envs.household.generate import make_episode

    hs = generate_household(35, room_type="bathroom")  # soap on every receptacle: nowhere new to put it
    assert feasible_task_types(hs) == []
    assert make_episode("train", 35) is None
