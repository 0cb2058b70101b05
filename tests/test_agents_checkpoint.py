"""Checkpoints (round trip, atomicity, weights_only, retention), the run logger, and trainer resume."""

from __future__ import annotations

import copy
import json
import os
import random

import numpy as np
import pytest
import torch

from tests.agent_helpers import ScriptedEnv, one_thread, tiny_policy  # noqa: F401
from vlarena.agents.checkpoint import (
    TRAINER_STATE,
    CheckpointError,
    latest_checkpoint,
    load_checkpoint,
    load_latest,
    save_checkpoint,
)
from vlarena.agents.dagger import DAggerConfig, DAggerTrainer
from vlarena.agents.logging_utils import RunLogger, read_metrics
from vlarena.agents.ppo import PPOConfig, PPOTrainer
from vlarena.agents.trainer import LinearSchedule

QUIET = dict(progress=False, tensorboard=False)


def make_state(seed=0):
    env = ScriptedEnv(lengths=[2, 3])
    policy = tiny_policy(env, seed=seed)
    opt = torch.optim.Adam(policy.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, LinearSchedule(10))
    return env, policy, opt, sched


def train_step(policy, opt, sched):
    obs, _ = ScriptedEnv(lengths=[2, 3]).reset()
    _, log_prob, value, _ = policy.act(obs, policy.initial_state(2))
    (log_prob.sum() + value.sum()).backward()
    opt.step()
    sched.step()
    opt.zero_grad()


def draws(gen):
    return (torch.rand(3).tolist(), np.random.rand(3).tolist(), [random.random() for _ in range(3)],
            torch.rand(3, generator=gen).tolist())


def test_round_trip_restores_weights_optimizer_counters_and_rng(tmp_path):
    _, policy, opt, sched = make_state()
    train_step(policy, opt, sched)
    gen = torch.Generator().manual_seed(5)
    gen.manual_seed(7)
    path = save_checkpoint(tmp_path, policy, opt, sched, {"step": 640, "update": 5, "episodes": 3}, rng={"mix": gen})
    assert path.name == "step_640" and (path / "config.json").is_file() and (path / "model.safetensors").is_file()
    weights = {k: v.clone() for k, v in policy.state_dict().items()}
    opt_state = copy.deepcopy(opt.state_dict())  # state_dict() shares the live tensors
    expected = draws(gen)  # what the run would have drawn next

    train_step(policy, opt, sched)  # move everything on
    draws(gen)
    _, fresh, fresh_opt, fresh_sched = make_state(seed=1)
    ckpt = load_latest(tmp_path, fresh, fresh_opt, fresh_sched, rng={"mix": gen})
    assert ckpt.path == path and ckpt.step == 640 and ckpt.counters == {"step": 640, "update": 5, "episodes": 3}
    for k, v in fresh.state_dict().items():
        assert torch.equal(v, weights[k]), k
    restored = fresh_opt.state_dict()
    assert restored["param_groups"] == opt_state["param_groups"]
    for k, s in opt_state["state"].items():
        assert all(torch.equal(s[n], restored["state"][k][n]) for n in s)
    assert fresh_sched.last_epoch == 1 and fresh_sched.get_last_lr() == pytest.approx([0.9e-3])
    assert draws(gen) == expected


def test_trainer_state_loads_with_weights_only(tmp_path):
    _, policy, opt, sched = make_state()
    train_step(policy, opt, sched)
    path = save_checkpoint(tmp_path, policy, opt, sched, {"step": 1, "update": np.int64(1), "loss": 0.5})
    state = torch.load(path / TRAINER_STATE, weights_only=True)
    assert state["format"] == "vlarena.trainer_state" and state["counters"] == {"step": 1, "update": 1, "loss": 0.5}
    assert set(state["rng"]) >= {"torch", "numpy", "python", "generators"}
    assert isinstance(state["rng"]["numpy"]["keys"], torch.Tensor)


@pytest.mark.parametrize("failing_call", range(5))
def test_a_crash_mid_write_keeps_the_previous_checkpoint_and_latest(tmp_path, monkeypatch, failing_call):
    _, policy, opt, sched = make_state()
    first = save_checkpoint(tmp_path, policy, opt, sched, {"step": 10})
    weights = {k: v.clone() for k, v in policy.state_dict().items()}
    train_step(policy, opt, sched)
    real_replace, calls = os.replace, []

    def replace(src, dst):  # os.replace calls of one save: weights, config, trainer state, the directory, latest
        calls.append(dst)
        if len(calls) - 1 == failing_call:
            raise OSError("disk full (simulated)")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="simulated"):
        save_checkpoint(tmp_path, policy, opt, sched, {"step": 20})
    monkeypatch.setattr(os, "replace", real_replace)
    root = tmp_path / "checkpoints"
    assert (root / "latest").read_text().strip() == "step_10"
    assert latest_checkpoint(tmp_path) == first
    _, fresh, _, _ = make_state(seed=1)
    load_latest(tmp_path, fresh)
    assert all(torch.equal(v, weights[k]) for k, v in fresh.state_dict().items())
    assert not [p for p in root.iterdir() if p.name.startswith(".")]  # no temporary file or directory left
    assert (root / "step_20").exists() == (failing_call == 4)  # only a failed `latest` leaves the new, complete dir
    save_checkpoint(tmp_path, policy, opt, sched, {"step": 30})  # the next save cleans up after the crash
    assert sorted(p.name for p in root.iterdir()) == sorted({"latest", "step_10", "step_30"} | (
        {"step_20"} if failing_call == 4 else set()))


def test_keep_last_k_and_corrupt_files_give_clear_errors(tmp_path):
    _, policy, opt, sched = make_state()
    for step in (1, 2, 3, 4, 5):
        save_checkpoint(tmp_path, policy, opt, sched, {"step": step}, keep=2)
    root = tmp_path / "checkpoints"
    assert sorted(p.name for p in root.iterdir()) == ["latest", "step_4", "step_5"]
    (root / "step_5" / TRAINER_STATE).write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match=r"step_5/trainer_state.pt cannot be read.*corrupt"):
        load_latest(tmp_path, policy)
    (root / "step_4" / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"step_4 is incomplete: \['model.safetensors'\] missing"):
        load_checkpoint(root / "step_4")
    with pytest.raises(ValueError, match="counters must hold 'step'"):
        save_checkpoint(tmp_path, policy, counters={"update": 1})
    assert load_latest(tmp_path / "nothing_here") is None


def test_logger_resume_drops_lines_past_the_checkpoint(tmp_path):
    log = RunLogger(tmp_path)
    for step in (10, 20, 30, 40):
        log.log(step, {"a": step / 10, "nan": float("nan")})
    log.close()
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"step": 50, "a":')  # a line cut off by a kill
    assert json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])["nan"] is None
    with pytest.raises(FileExistsError, match="resume"):
        RunLogger(tmp_path, tensorboard=False)
    log = RunLogger(tmp_path, resume_step=20)
    log.log(30, {"a": 33.0})
    log.close()
    assert [(r["step"], r["a"]) for r in read_metrics(tmp_path)] == [(10, 1.0), (20, 2.0), (30, 33.0)]
    assert any((tmp_path / "tb").iterdir())


def test_killed_run_resumes_where_its_checkpoint_left_off(tmp_path, monkeypatch):
    cfg = DAggerConfig(total_steps=2 * 4 * 6, num_steps=4, checkpoint_every=2, beta0=0.5, **QUIET)
    env = ScriptedEnv(lengths=[2, 3])
    trainer = DAggerTrainer(tiny_policy(env), env, cfg, tmp_path)
    real, calls = trainer.iteration, []

    def dies_in_update_5():
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt("killed")
        return real()

    monkeypatch.setattr(trainer, "iteration", dies_in_update_5)
    with pytest.raises(KeyboardInterrupt):
        trainer.train()
    assert latest_checkpoint(tmp_path).name == "step_32"  # update 4 of 6
    env = ScriptedEnv(lengths=[2, 3])
    resumed = DAggerTrainer(tiny_policy(env, seed=3), env, DAggerConfig(**{**cfg.__dict__, "resume": True}), tmp_path)
    last = resumed.train()
    assert resumed.counters["update"] == 6 and resumed.counters["step"] == 48 and len(env.received) == 2 * 4
    rows = read_metrics(tmp_path)
    assert [r["step"] for r in rows] == [8, 16, 24, 32, 40, 48]
    assert [r["train/lr"] for r in rows] == pytest.approx([2.5e-4 * (1 - u / 6) for u in range(6)])
    assert last["train/beta"] == pytest.approx(0.5) and latest_checkpoint(tmp_path).name == "step_48"


def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    env = ScriptedEnv(lengths=[2, 3])
    policy = tiny_policy(env)
    cfg = PPOConfig(total_steps=2 * 4 * 5, num_steps=4, num_minibatches=1, update_epochs=1, checkpoint_every=1, **QUIET)
    trainer = PPOTrainer(policy, env, cfg, tmp_path)
    real, calls = policy.evaluate_actions, []

    def poisoned(*args, **kwargs):
        calls.append(1)
        log_prob, entropy, value = real(*args, **kwargs)
        return (log_prob * float("nan"), entropy, value) if len(calls) == 3 else (log_prob, entropy, value)

    monkeypatch.setattr(policy, "evaluate_actions", poisoned)
    with pytest.raises(FloatingPointError, match=r"loss is nan at update 3 \(env step 16\)"):
        trainer.train()
    assert latest_checkpoint(tmp_path).name == "step_16"
    assert all(torch.isfinite(p).all() for p in policy.parameters())
