"""BabyAI GoToLocal through `vlarena train experiment=babyai_bc`: gymnasium-vectorized adapter envs, seed-range
splits (training from seed 0, held-out evaluation from 1_000_000) and the seed-based evaluation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vlarena.agents.evaluate_gym import evaluate_seeds

pytest.importorskip("minigrid")

EVAL_SEED = 1_000_000


def babyai_vec(num_envs: int):
    import gymnasium as gym

    import vlarena.envs  # noqa: F401  (registers vlarena/BabyAI-GoToLocal-v0)

    return gym.make_vec("vlarena/BabyAI-GoToLocal-v0", num_envs=num_envs, vectorization_mode="sync")


def first_instruction(seed: int) -> str:
    from vlarena.envs.adapters.babyai import make_babyai

    return make_babyai("BabyAI-GoToLocal-v0").reset(seed=seed)[0]["instruction"]


def test_evaluate_seeds_runs_each_seed_once_and_scores_success(tmp_path):
    env = babyai_vec(4)
    seeds = list(range(EVAL_SEED, EVAL_SEED + 6))  # a full batch of 4, then 2 seeds and 2 spare rows
    calls = []

    def expert(obs, info):  # MiniGrid's BabyAIBot, through the adapter's info
        calls.append(info["elapsed_steps"].clone())
        assert isinstance(obs["rgb"], torch.Tensor) and obs["rgb"].shape == (4, 56, 56, 3)
        return info["expert_action"]

    summary = evaluate_seeds(env, expert, seeds, tmp_path / "eval", {"agent": "expert"}, progress=False)
    rows = [json.loads(line) for line in (tmp_path / "eval" / "episodes.jsonl").read_text().splitlines()]
    assert [r["seed"] for r in rows] == seeds
    assert [r["instruction"] for r in rows] == [first_instruction(s) for s in seeds]  # the seed's own episode
    assert summary == json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert summary["success_rate"] == 1.0 and summary["num_episodes"] == 6 and summary["agent"] == "expert"
    assert summary["seeds"] == [EVAL_SEED, EVAL_SEED + 5]
    assert all(0 < r["return"] <= 1 and 1 <= r["steps"] < 64 for r in rows)
    assert summary["steps"] == pytest.approx(np.mean([r["steps"] for r in rows]))
    assert torch.equal(calls[0], torch.zeros(4, dtype=torch.long))  # every batch starts a fresh episode per row
    assert sum(1 for c in calls if not c.any()) == 2  # ... and only there: 2 batches
    assert len(calls) == sum(max(r["steps"] for r in rows[i:i + 4]) for i in (0, 4))  # stopped when all ended

    def idle(obs, info):  # MiniGrid's "done" action does nothing in GoToLocal: every episode times out
        return torch.full((4,), 6)

    again = evaluate_seeds(env, idle, seeds[:3], progress=False)
    assert again["success_rate"] == 0.0 and again["steps"] == 64.0 and again["return"] == 0.0
    with pytest.raises(ValueError, match="repeated seeds"):
        evaluate_seeds(env, idle, [1, 1])


def test_train_env_seeds_come_from_the_split_range():
    from hydra import compose, initialize_config_module

    from vlarena.run_train import TrainConfig, make_env

    with initialize_config_module("vlarena.configs", version_base="1.3"):
        cfg = TrainConfig.from_hydra(compose("train", overrides=["experiment=babyai_bc"]))
    train, val = make_env(cfg, "train", 2, "cpu"), make_env(cfg, "val", 2, "cpu")
    assert val.offset == EVAL_SEED and train.offset == 0 and getattr(train, "device", None) is None  # numpy env
    assert list(train.reset(seed=3)[0]["instruction"]) == [first_instruction(3), first_instruction(4)]
    assert list(val.reset(seed=3)[0]["instruction"]) == [first_instruction(EVAL_SEED + 3),
                                                         first_instruction(EVAL_SEED + 4)]
    # data-parallel rank r resets with agent.seed + r past r * num_envs: no sub-env of two ranks shares a seed
    seeds = [make_env(cfg, "train", 2, "cpu", rank).offset + cfg.agent.seed + rank + i for rank in range(3)
             for i in range(2)]
    assert seeds == [0, 1, 3, 4, 6, 7]


def test_babyai_bc_experiment_trains_and_evaluates_on_held_out_seeds(tmp_path, monkeypatch):
    from vlarena.cli import main

    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    assert main(["train", "experiment=babyai_bc", "policy=tiny", "num_envs=4", "agent.num_steps=16",
                 "agent.total_steps=256", "agent.num_minibatches=1", "agent.progress=false", "eval.num_envs=5",
                 "eval.num_episodes=5", f"run_dir={run}"]) == 0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [64, 128, 192, 256]
    # teacher forcing: the env executes BabyAIBot's actions, which always reach the object
    assert {r["train/expert_executed"] for r in rows} == {1.0}
    assert sum(r["episode/episodes"] for r in rows) >= 10 and all(r.get("episode/success", 1.0) == 1.0 for r in rows)
    assert rows[-1]["train/loss"] < rows[0]["train/loss"]
    summary = json.loads((run / "eval_val" / "summary.json").read_text())
    assert summary["num_episodes"] == 5 and summary["seeds"] == [EVAL_SEED, EVAL_SEED + 4]
    assert summary["env"] == "vlarena/BabyAI-GoToLocal-v0" and summary["split"] == "val"
    assert 0.0 <= summary["success_rate"] <= 1.0 and 1 <= summary["steps"] <= 64
    episodes = [json.loads(line) for line in (run / "eval_val" / "episodes.jsonl").read_text().splitlines()]
    assert [e["seed"] for e in episodes] == list(range(EVAL_SEED, EVAL_SEED + 5))
    config = (run / "config.yaml").read_text()
    assert "split_seeds:" in config and "val: 1000000" in config
    assert (run / "checkpoints" / "latest").read_text().strip() == "step_256"
