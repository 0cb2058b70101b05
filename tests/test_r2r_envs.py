"""The two R2R envs, the fixed agents and the evaluation (small generated dataset)."""

from __future__ import annotations

import json
import math

import gymnasium as gym
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from gymnasium.utils.env_checker import check_env

import vlarena.envs  # noqa: F401  (registers the envs)
from vlarena.agents.evaluate import evaluate, predictions
from vlarena.agents.fixed import FixedAgentConfig, make_fixed_agent
from vlarena.datasets.catalog import CATEGORY_NAMES, ROOM_TYPES
from vlarena.datasets.connectivity import write_connectivity
from vlarena.datasets.jsonio import write_json
from vlarena.datasets.navigation import object_distance
from vlarena.datasets.path_facts import LANDMARK_RADIUS
from vlarena.datasets.predictions import score_prediction_file
from vlarena.datasets.r2r import write_r2r
from vlarena.envs.r2r_ce import R2RCEVectorEnv
from vlarena.envs.r2r_graph import R2RGraphVectorEnv

SIZES = {"scenes": {"seen": 2, "val_unseen": 1, "test": 1},
         "paths_per_scene": {"train": 6, "val_seen": 3, "val_unseen": 6, "test": 4}}
SPLITS = ("train", "val_seen", "val_unseen", "test")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return {**SIZES, "data_dir": str(tmp_path_factory.mktemp("data"))}


@pytest.fixture(scope="module")
def graph_env(dataset):
    return R2RGraphVectorEnv(num_envs=8, split="val_unseen", dataset=dataset)


@pytest.fixture(scope="module")
def ce_env(dataset):
    return R2RCEVectorEnv(num_envs=8, split="val_unseen", dataset=dataset)


def run(env, name, **kw):
    return evaluate(env, make_fixed_agent(FixedAgentConfig(name=name, **kw)).act, progress=False)


@pytest.mark.parametrize("split", SPLITS)
def test_oracle_is_perfect_on_every_split(dataset, split):
    g = run(R2RGraphVectorEnv(num_envs=16, split=split, dataset=dataset), "oracle")
    assert g["success_rate"] == 1.0 and g["spl"] == pytest.approx(1.0, abs=1e-6)
    assert g["nav_error"] == 0.0 and g["ndtw"] == pytest.approx(1.0)
    c = run(R2RCEVectorEnv(num_envs=16, split=split, dataset=dataset), "oracle")
    assert c["success_rate"] == 1.0 and c["spl"] >= 0.95
    assert c["nav_error"] <= 0.5 + 1e-6  # the expert stops within expert_stop_distance
    assert g["num_episodes"] == c["num_episodes"] == 3 * SIZES["paths_per_scene"][split] * (
        SIZES["scenes"]["val_unseen" if split == "val_unseen" else "test" if split == "test" else "seen"])


def test_random_and_forward_are_far_below(graph_env, ce_env):
    for env in (graph_env, ce_env):
        for name in ("random", "forward"):
            s = run(env, name)
            assert s["success_rate"] <= 0.5 and s["spl"] <= 0.5, (type(env).__name__, name, s)


def test_single_envs_pass_check_env(dataset):
    for env_id in ("vlarena/R2R-v0", "vlarena/R2R-CE-v0"):
        env = gym.make(env_id, split="val_seen", dataset=dataset)
        check_env(env.unwrapped, skip_render_check=True)
        obs, info = env.reset(seed=3)
        assert env.observation_space.contains(obs) and "expert_action" in info


def test_graph_observation_and_moves(graph_env):
    env = graph_env
    obs, info = env.reset(seed=0)
    k, w = env.config.views, env.config.width
    assert obs["rgb"].shape == (8, 64, k * w, 3) and obs["rgb"].dtype == torch.uint8
    assert obs["depth"].shape == (8, 64, k * w, 1)
    mask = obs["candidate_mask"].bool()
    assert mask.any(dim=1).all()
    feats = obs["candidates"]
    angle = torch.atan2(feats[..., 0], feats[..., 1])
    for b in range(8):  # sorted right to left, unit (sin, cos), padding zero
        n = int(mask[b].sum())
        assert torch.all(angle[b, :n].diff() >= 0) and torch.all(feats[b, n:] == 0)
        assert torch.allclose(feats[b, :n, :2].norm(dim=-1), torch.ones(n), atol=1e-5)
    # moving to candidate 0 lands on that viewpoint, faces the way it went and adds the edge length
    before, target = env.vp.clone(), env.candidate_viewpoints()[:, 0]
    obs, _, term, trunc, info = env.step(torch.ones(8, dtype=torch.long))
    assert torch.equal(env.vp, target) and not term.any()
    assert torch.allclose(info["path_length"], feats[:, 0, 2], atol=1e-5)
    pos = env.tables.positions[env.scene_idx]
    delta = pos[torch.arange(8), target, :2] - pos[torch.arange(8), before, :2]
    assert torch.allclose(env.heading, torch.atan2(delta[:, 1], delta[:, 0]))
    # a padded candidate is an invalid action: nobody moves
    pad = (obs["candidate_mask"] == 0).int().argmax(dim=1) + 1
    vp = env.vp.clone()
    _, _, _, _, info = env.step(pad)
    assert info["invalid_action"].all() and torch.equal(env.vp, vp)


def test_privileged_room_features_name_each_viewpoints_room(dataset):
    env = R2RGraphVectorEnv(num_envs=8, split="val_unseen", dataset=dataset, width=8, height=8, room_features=True)
    rooms = len(ROOM_TYPES) + 1
    assert env.single_observation_space["room"].shape == (rooms,)
    assert env.single_observation_space["candidates"].shape == (env.config.max_candidates, 3 + rooms)

    def one_hot(s, vp):  # from the scene's own room of graph viewpoint vp
        room = env.data.graphs[s].room_ids[vp]
        kind = ROOM_TYPES.index(env.data.scenes[s].rooms[room].type) if room >= 0 else rooms - 1
        return F.one_hot(torch.tensor(kind), rooms).float()

    obs, info = env.reset(seed=0)
    for _ in range(3):
        cand = env.candidate_viewpoints()
        for b in range(8):
            s = int(env.scene_idx[b])
            assert torch.equal(obs["room"][b], one_hot(s, int(env.vp[b])))
            for c in range(env.config.max_candidates):
                want = one_hot(s, int(cand[b, c])) if cand[b, c] >= 0 else torch.zeros(rooms)
                assert torch.equal(obs["candidates"][b, c, 3:], want)
        obs, _, _, _, info = env.step(info["expert_action"])
    assert "room" not in R2RGraphVectorEnv(num_envs=1, split="val_unseen", dataset=dataset).single_observation_space


def test_privileged_object_features_name_the_landmarks_near_each_viewpoint(dataset):
    env = R2RGraphVectorEnv(num_envs=8, split="val_unseen", dataset=dataset, width=8, height=8, object_features=True)
    k = len(CATEGORY_NAMES)
    assert env.single_observation_space["objects"].shape == (k,)
    assert env.single_observation_space["candidates"].shape == (env.config.max_candidates, 3 + k)

    def near(s, vp):  # from the scene's objects: within LANDMARK_RADIUS of the viewpoint, in its room
        graph, scene = env.data.graphs[s], env.data.scenes[s]
        x, y = graph.positions[vp, :2]
        out = torch.zeros(k)
        for o in scene.objects:
            if object_distance(o, x, y) <= LANDMARK_RADIUS and graph.room_ids[vp] in (o.room, -1):
                out[CATEGORY_NAMES.index(o.category)] = 1.0
        return out

    obs, info = env.reset(seed=0)
    assert obs["objects"].sum() > 0
    for _ in range(3):
        cand = env.candidate_viewpoints()
        for b in range(8):
            s = int(env.scene_idx[b])
            assert torch.equal(obs["objects"][b], near(s, int(env.vp[b])))
            for c in range(env.config.max_candidates):
                want = near(s, int(cand[b, c])) if cand[b, c] >= 0 else torch.zeros(k)
                assert torch.equal(obs["candidates"][b, c, 3:], want)
        obs, _, _, _, info = env.step(info["expert_action"])


def test_graph_expert_follows_next_hop_and_success_is_strict(graph_env):
    env = graph_env
    env.reset(options={"episode_id": [0] * 8})
    t = env.tables
    goal = t.ep_goal[env.ep]
    for _ in range(10):
        a = env.expert_action()
        if (a == 0).all():
            break
        nxt = env.candidate_viewpoints().gather(1, (a - 1).clamp(min=0)[:, None]).squeeze(1)
        d = t.distances[env.scene_idx, env.vp, goal]
        assert torch.all((d - t.distances[env.scene_idx, nxt, goal]) > 0)
        env.step(a)
    assert torch.equal(env.vp, goal)
    # success is NE < 3.0, strictly: with success_distance set to NE it fails
    env2 = R2RGraphVectorEnv(num_envs=1, split="val_unseen", dataset=env.config.dataset, success_distance=1e-9)
    env2.reset(options={"episode_id": [0]})
    _, _, _, _, info = env2.step(torch.zeros(1, dtype=torch.long))
    assert info["distance_to_goal"][0] > 0 and not info["success"][0]


def test_ce_success_needs_stop_within_3m(ce_env):
    env = ce_env
    obs, info = env.reset(options={"episode_id": list(range(8))})
    start = info["distance_to_goal"]
    assert (start > 3.0).any()
    _, _, term, _, info = env.step(torch.zeros(8, dtype=torch.long))
    assert term.all() and torch.equal(info["success"], start < 3.0)


def test_graph_same_step_autoreset(dataset):
    env = R2RGraphVectorEnv(num_envs=4, split="val_seen", dataset=dataset, autoreset_mode="same_step")
    env.reset(options={"episode_id": [0, 1, 2, 3]})
    _, _, term, _, info = env.step(torch.tensor([0, 1, 0, 1]))
    assert term.tolist() == [True, False, True, False]
    assert info["_final_obs"].tolist() == [True, False, True, False]
    assert info["final_obs"]["rgb"].shape == (4, 64, 256, 3)
    assert (env.steps == torch.tensor([0, 1, 0, 1])).all()


def test_eval_outputs_and_prediction_file_round_trip(graph_env, tmp_path):
    agent = make_fixed_agent(FixedAgentConfig(name="random", seed=1))
    summary = evaluate(graph_env, agent.act, out_dir=tmp_path, meta={"agent": "random"}, progress=False)
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    rows = [json.loads(line) for line in (tmp_path / "episodes.jsonl").read_text().splitlines()]
    assert len(rows) == summary["num_episodes"] == len(graph_env.episode_ids)
    assert summary["success_rate"] == pytest.approx(np.mean([r["success"] for r in rows]))
    # the written R2R prediction file scores to the same numbers, through the file-format path
    graphs = {g.scan: g for g in graph_env.data.graphs}
    again, _ = score_prediction_file(tmp_path / "predictions.json", graph_env.data.paths, graphs)
    for key in ("success_rate", "spl", "nav_error", "oracle_success_rate", "ndtw", "sdtw"):
        assert again[key] == pytest.approx(summary[key], abs=1e-9), key


def test_bad_prediction_files_name_file_record_field(graph_env, tmp_path):
    graphs = {g.scan: g for g in graph_env.data.graphs}
    paths = graph_env.data.paths
    good = [{"instr_id": f"{p.path_id}_{k}", "trajectory": [[vp, 0.0, 0.0] for vp in p.path]}
            for p in paths for k in range(3)]
    f = write_json(tmp_path / "p.json", good[1:])
    with pytest.raises(ValueError, match=r"p\.json: no trajectory for instr_id"):
        score_prediction_file(f, paths, graphs)
    bad = [dict(r) for r in good]
    bad[2] = {"instr_id": bad[2]["instr_id"], "trajectory": [bad[2]["trajectory"][0], bad[2]["trajectory"][-1]]}
    f = write_json(tmp_path / "p.json", bad)
    with pytest.raises(ValueError, match=r"p\.json: record 2 .*field 'trajectory\[1\]'.*not adjacent"):
        score_prediction_file(f, paths, graphs)
    f = write_json(tmp_path / "p.json", [{"instr_id": "0_0"}])
    with pytest.raises(ValueError, match=r"p\.json: record 0 .*'trajectory'"):
        score_prediction_file(f, paths, graphs)


def test_cli_eval_scores_real_format_files(graph_env, tmp_path, monkeypatch):
    """`vlarena eval` on an R2R episode file + Matterport connectivity folder + prediction file."""
    from vlarena.cli import main

    data = graph_env.data
    for g, scene in zip(data.graphs, data.scenes, strict=True):
        write_connectivity(g, tmp_path / "connectivity", scene)
    write_r2r(data.paths, tmp_path / "R2R_val_unseen.json")
    oracle = [{"instr_id": f"{p.path_id}_{k}", "trajectory": [[vp, 0.0, 0.0] for vp in p.path]}
              for p in data.paths for k in range(3)]
    write_json(tmp_path / "pred.json", oracle)
    monkeypatch.chdir(tmp_path)
    assert main(["eval", f"predictions={tmp_path / 'pred.json'}", f"r2r_file={tmp_path / 'R2R_val_unseen.json'}",
                 f"connectivity_dir={tmp_path / 'connectivity'}", f"out_dir={tmp_path / 'out'}"]) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["success_rate"] == 1.0 and summary["spl"] == pytest.approx(1.0)
    assert summary["num_episodes"] == 3 * len(data.paths)


def hydra_dict(d: dict) -> str:
    return "{" + ",".join(f"{k}:{v}" for k, v in d.items()) + "}"


def test_cli_eval_runs_an_agent(dataset, tmp_path, monkeypatch):
    from vlarena.cli import main

    monkeypatch.chdir(tmp_path)
    args = ["eval", "env=r2r_ce", "agent=forward", "split=val_seen", "num_envs=4", "progress=false",
            f"env.kwargs.dataset.data_dir={dataset['data_dir']}", f"out_dir={tmp_path / 'o'}",
            f"env.kwargs.dataset.scenes={hydra_dict(SIZES['scenes'])}",
            f"env.kwargs.dataset.paths_per_scene={hydra_dict(SIZES['paths_per_scene'])}"]
    assert main(args) == 0
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["agent"] == "forward" and summary["env"] == "vlarena/R2R-CE-v0"
    assert summary["num_episodes"] == 3 * 3 * 2
    preds = json.loads((tmp_path / "o" / "predictions.json").read_text())
    first = preds[next(iter(preds))]
    assert all(math.isfinite(p["heading"]) for p in first) and first[-1]["stop"] is True


def test_prediction_headings_use_r2r_convention(graph_env):
    env = graph_env
    env.reset(options={"episode_id": list(range(8))})
    ep = [{"episode_id": env.episode_ids[0], "index": 0, "stopped": True, "points": np.array([env.vp[0].item()]),
           "headings": np.array([math.pi / 2])}]  # scene heading +y (north) is R2R heading 0
    assert predictions(env, ep)[0]["trajectory"][0][1] == pytest.approx(0.0)


def test_train_aug_split_is_train_then_the_extra_scenes(dataset):
    from vlarena.envs.r2r_data import R2RDataConfig, load_split

    cfg = R2RDataConfig(**{**dataset, "aug_scenes": 1})
    joint, train = load_split("train_aug", cfg), load_split("train", R2RDataConfig(**dataset))
    n = len(train.episode_ids)
    assert joint.episode_ids[:n] == train.episode_ids and joint.instructions[:n] == train.instructions
    assert len(joint.episode_ids) == n + 3 * 30 and len(joint.scenes) == len(train.scenes) + 1
    # the standard splits of the aug dataset are the default dataset's
    assert load_split("val_unseen", cfg).instructions == load_split("val_unseen", R2RDataConfig(**dataset)).instructions
    env = R2RGraphVectorEnv(num_envs=4, split="train_aug", dataset=cfg.__dict__)
    assert run(env, "oracle")["success_rate"] == 1.0
    with pytest.raises(ValueError, match="set env.kwargs.dataset.aug_scenes"):
        load_split("train_aug", R2RDataConfig(**dataset))
