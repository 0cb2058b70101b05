"""benchmarks/r2r_diagnose.py: the turn classes it names moves by, its teacher-forcing bookkeeping, and its
free rollouts against `vlarena eval`'s."""

import math
from collections import Counter

import pytest
import torch

from benchmarks.r2r_diagnose import ambiguity_anatomy, mentioned_categories, run, turn_class
from tests.policy_helpers import tiny_config
from vlarena.agents.evaluate import evaluate
from vlarena.agents.policy_agent import PolicyAgent
from vlarena.datasets.catalog import CATEGORY_NAMES
from vlarena.datasets.instructions import OBJECT_WORDS
from vlarena.datasets.navigation import object_distance
from vlarena.datasets.path_facts import LANDMARK_RADIUS
from vlarena.envs.r2r_graph import R2RGraphVectorEnv
from vlarena.policies import VLAPolicy

SIZES = {"scenes": {"seen": 2, "val_unseen": 1, "test": 1},
         "paths_per_scene": {"train": 6, "val_seen": 3, "val_unseen": 6, "test": 4}}


def test_turn_classes_follow_the_instruction_generator():
    degrees = [30.0, -39.0, 41.0, -100.0, 149.0, 151.0, -170.0]
    rad = torch.deg2rad(torch.tensor(degrees))
    obs = {"candidates": torch.stack([torch.sin(rad), torch.cos(rad), torch.ones(7)], dim=-1)[None]}
    names = [turn_class(obs, 0, a) for a in range(1, 8)]
    assert names == ["straight", "straight", "left", "right", "left", "around", "around"]
    assert turn_class(obs, 0, 0) == "stop"


def test_teacher_forcing_scores_every_step_of_every_episode(tmp_path):
    env = R2RGraphVectorEnv(num_envs=3, split="val_unseen", dataset={**SIZES, "data_dir": str(tmp_path)},
                            views=4, width=16, height=16)
    torch.manual_seed(0)
    policy = VLAPolicy(tiny_config(vision={"image_size": [16, 64]}), env.single_observation_space,
                       env.single_action_space)
    out = run(policy, env, episodes=5, mode="teacher")
    moves = sum(v["steps"] for k, v in out["by_expert_move"].items() if k != "stop")
    assert out["by_expert_move"]["stop"]["steps"] == 5  # one STOP per expert episode, no final frames counted
    assert 5 * 3 <= moves <= 5 * 6  # paths of 3 to 6 edges
    for row in out["by_expert_move"].values():
        assert sum(v for k, v in row.items() if k != "steps") == pytest.approx(1.0)
    assert 0.0 <= out["ambiguous_share"] <= 1.0 and 0.0 <= out["accuracy"] <= 1.0
    assert not math.isnan(out["ambiguous_accuracy"])
    assert set(out["ambiguous_steps"]) == {"within_30_degrees", "room_singles_out_expert", "landmark_singles_out_expert",
                                           "longest_edge_is_expert", "smallest_turn_is_expert"}
    assert all(0.0 <= v <= 1.0 for v in out["ambiguous_steps"].values())


def test_ambiguity_anatomy_of_a_hand_made_step(tmp_path):
    env = R2RGraphVectorEnv(num_envs=1, split="val_unseen", dataset={**SIZES, "data_dir": str(tmp_path)},
                            views=4, width=16, height=16)
    env.reset(options={"episode_id": [0]})
    vps = env.candidate_viewpoints()[0]
    assert (vps >= 0).sum() >= 2
    # two straight candidates, 10 and -25 degrees, edges of 1.0 and 2.0 m; the first is the expert's
    rad = torch.deg2rad(torch.tensor([10.0, -25.0]))
    feats = torch.zeros(1, vps.shape[0], 3)
    feats[0, :2] = torch.stack([torch.sin(rad), torch.cos(rad), torch.tensor([1.0, 2.0])], dim=-1)
    silent = {"candidates": feats, "instruction": ["Walk ahead and stop."]}  # names no object
    out = ambiguity_anatomy(env, silent, 0, 1, [1, 2])
    rooms = env.tables.room_type[env.scene_idx[0], vps[:2]].tolist()
    assert out == Counter({"steps": 1, "within_30_degrees": False, "room_singles_out_expert": rooms[0] != rooms[1],
                           "landmark_singles_out_expert": False, "longest_edge_is_expert": False,
                           "smallest_turn_is_expert": True})
    rad = torch.deg2rad(torch.tensor([10.0, -15.0]))
    feats[0, :2, :2] = torch.stack([torch.sin(rad), torch.cos(rad)], dim=-1)
    assert ambiguity_anatomy(env, silent, 0, 2, [1, 2])["within_30_degrees"]
    # landmarks: the categories near each candidate's viewpoint, from the scene's objects
    s = int(env.scene_idx[0])
    graph, scene = env.data.graphs[s], env.data.scenes[s]

    def near(vp):
        x, y = graph.positions[vp, :2]
        return {o.category for o in scene.objects
                if object_distance(o, x, y) <= LANDMARK_RADIUS and graph.room_ids[vp] in (o.room, -1)}

    first, second = near(int(vps[0])), near(int(vps[1]))
    for named in (first - second, second - first, first & second):
        words = " ".join(OBJECT_WORDS[c][0] for c in sorted(named))
        text = {"candidates": feats, "instruction": [f"Go past the {words} and stop."]}
        assert mentioned_categories(text["instruction"][0]) == {CATEGORY_NAMES.index(c) for c in named}
        assert ambiguity_anatomy(env, text, 0, 1, [1, 2])["landmark_singles_out_expert"] == bool(named - second)
        assert ambiguity_anatomy(env, text, 0, 2, [1, 2])["landmark_singles_out_expert"] == bool(named - first)
    assert mentioned_categories("pass the bins and the TV, then the couch") == {
        CATEGORY_NAMES.index(c) for c in ("trash_can", "tv", "sofa")}


def test_free_rollouts_score_what_vlarena_eval_scores(tmp_path):
    env = R2RGraphVectorEnv(num_envs=4, split="val_unseen", dataset={**SIZES, "data_dir": str(tmp_path)},
                            views=4, width=16, height=16)
    ids = env.episode_ids
    rates = {}
    for seed in range(4):
        torch.manual_seed(seed)
        policy = VLAPolicy(tiny_config(vision={"image_size": [16, 64]}), env.single_observation_space,
                           env.single_action_space)
        ours = run(policy, env, episodes=len(ids), mode="policy")["success_rate"]
        theirs = evaluate(env, PolicyAgent(policy).act, progress=False)["success_rate"]
        assert ours == pytest.approx(theirs)
        rates[seed] = ours
    assert len(set(rates.values())) > 1  # the untrained policies differ, so the equality is not 0 == 0
