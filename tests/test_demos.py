"""`vlarena data demos` and the demo replay env: the recorded episodes are the live expert's, replayed by the
NEXT_STEP contract, and behaviour cloning trains from them through `vlarena train demos=...`."""

from __future__ import annotations

import json

import pytest
import torch

from tests.test_r2r_envs import SIZES, hydra_dict
from vlarena.agents.demos import DemoReplayEnv, read_demos
from vlarena.cli import main
from vlarena.envs.r2r_graph import R2RGraphVectorEnv

KEYS = "rgb,instruction,candidates,candidate_mask"


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("demos")
    dataset = {**SIZES, "data_dir": str(root / "data")}
    out = root / "r2r_val_unseen"
    argv = ["data", "demos", "--out", str(out), "--split", "val_unseen", "--keys", KEYS, "--num-envs", "5",
            "--set", "width=16", "--set", "height=16", "--set", f"dataset={json.dumps(dataset)}"]
    assert main(argv) == 0
    return out, dataset


def test_demos_record_every_episode_of_the_expert(demo_dir):
    out, dataset = demo_dir
    meta, tensors = read_demos(out)
    live = R2RGraphVectorEnv(num_envs=1, split="val_unseen", width=16, height=16, dataset=dataset)
    assert meta["episode_ids"] == list(live.episode_ids) and len(meta["episode_ids"]) == 18
    assert all(s == 1.0 for s in meta["success"]) and all(s == 1.0 for s in meta["spl"])
    assert meta["num_steps"] == sum(meta["lengths"]) == tensors["rgb"].shape[0] == tensors["action"].shape[0]
    assert sorted(meta["observation_space"]["spaces"]) == sorted(KEYS.split(","))  # only the asked keys
    # episode 7, step by step, as the live env shows it under the expert
    e = 7
    obs, info = live.reset(options={"episode_id": [meta["episode_ids"][e]]})
    start = meta["starts"][e]
    assert meta["texts"]["instruction"][e] == obs["instruction"][0]
    for t in range(meta["lengths"][e]):
        assert torch.equal(tensors["rgb"][start + t], obs["rgb"][0].cpu())
        assert torch.equal(tensors["candidates"][start + t], obs["candidates"][0].cpu())
        assert int(tensors["action"][start + t]) == int(info["expert_action"][0])
        obs, _, terminated, _, info = live.step(info["expert_action"])
    assert bool(terminated[0]) and int(tensors["action"][start + meta["lengths"][e] - 1]) == 0  # ends on STOP


def test_replay_follows_the_next_step_contract(demo_dir):
    out, _ = demo_dir
    meta, tensors = read_demos(out)
    env = DemoReplayEnv(out, num_envs=3, seed=1)
    obs, info = env.reset()
    assert (info["elapsed_steps"] == 0).all()
    seen_ends, pending = 0, torch.zeros(3, dtype=torch.bool)
    for _ in range(40):
        ep, t = env.ep.clone(), env.t.clone()
        index = torch.tensor(meta["starts"])[ep] + t
        assert torch.equal(obs["rgb"], tensors["rgb"][index])
        assert obs["instruction"] == tuple(meta["texts"]["instruction"][i] for i in ep.tolist())
        assert torch.equal(info["expert_action"], tensors["action"][index])
        last = (t + 1 == torch.tensor(meta["lengths"])[ep]) & ~pending
        obs, reward, terminated, truncated, info = env.step(torch.zeros(3, dtype=torch.long))  # actions are ignored
        assert torch.equal(terminated, last) and not truncated.any()
        assert torch.equal(obs["rgb"][last], tensors["rgb"][index][last])  # the ending step returns the final frame
        assert (info["success"][last] == 1.0).all() and (info["success"][~last] == 0.0).all()
        assert (info["elapsed_steps"][pending] == 0).all()  # the step after an end starts a new episode
        seen_ends += int(last.sum())
        pending = last
    assert seen_ends >= 5


def test_bc_trains_from_demos_and_checks_they_fit_the_env(demo_dir, tmp_path, monkeypatch, capsys):
    out, dataset = demo_dir
    monkeypatch.chdir(tmp_path)
    env_args = ["env=r2r", "env.kwargs.width=16", "env.kwargs.height=16", "policy=tiny",
                "policy.vision.image_size=[16,64]", "policy.vision.patch_size=8",
                f"env.kwargs.dataset.data_dir={dataset['data_dir']}",
                f"env.kwargs.dataset.scenes={hydra_dict(SIZES['scenes'])}",
                f"env.kwargs.dataset.paths_per_scene={hydra_dict(SIZES['paths_per_scene'])}"]
    run = tmp_path / "run"
    common = ["train", "agent=bc", f"demos={out}", "num_envs=4", "agent.total_steps=160", "agent.num_steps=10",
              "agent.progress=false", "eval.num_envs=6", "train_split=val_unseen"]
    assert main([*common, f"run_dir={run}", *env_args]) == 0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 160 and rows[-1]["train/expert_executed"] == 1.0
    assert rows[-1]["episode/success"] == 1.0  # the replayed episodes are the expert's
    assert json.loads((run / "eval_val_unseen" / "summary.json").read_text())["num_episodes"] == 18
    with pytest.raises(SystemExit):  # frames of another size than the demos'
        main([*common, f"run_dir={tmp_path / 'bad'}", *[a.replace("=16", "=32") for a in env_args],
              "policy.vision.image_size=[32,128]"])
    assert "recorded observation 'rgb' as Box(0, 255, (16, 64, 3), uint8), but the configured env gives " \
        "Box(0, 255, (32, 128, 3), uint8)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "agent=ppo", f"demos={out}", *env_args])
    assert "demos= is read by behaviour cloning" in capsys.readouterr().err


def test_a_folder_without_demos_is_named(tmp_path):
    with pytest.raises(ValueError, match=f"{tmp_path} is not a demo folder: it has no demos.json"):
        DemoReplayEnv(tmp_path, num_envs=2)
