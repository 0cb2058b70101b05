"""`vlarena train` end to end: hydra config -> typed config -> training -> checkpoints -> evaluation."""

from __future__ import annotations

import json

import pytest
import yaml

from vlarena.cli import main

TINY = ["policy=tiny", "num_envs=4", "env.kwargs.num_scenes=1", "env.kwargs.episodes_per_scene=4",
        "env.kwargs.width=32", "env.kwargs.height=32", "eval.split=val", "eval.num_envs=4", "agent.progress=false",
        "agent.num_steps=16"]


@pytest.mark.parametrize("agent", ["bc", "ppo"])
def test_train_writes_config_checkpoint_logs_and_eval(tmp_path, monkeypatch, agent):
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    assert main(["train", f"agent={agent}", "agent.total_steps=128", f"run_dir={run}", *TINY]) == 0
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["agent"]["name"] == agent and config["num_envs"] == 4
    latest = (run / "checkpoints" / "latest").read_text().strip()
    assert (run / "checkpoints" / latest / "model.safetensors").exists()
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows and rows[-1]["step"] == 128
    summary = json.loads((run / "eval_val" / "summary.json").read_text())
    assert summary["num_episodes"] == 4 and 0.0 <= summary["success_rate"] <= 1.0 and summary["agent"] == agent


def test_pretrain_stage_then_ppo_with_kl_to_the_pretrained_policy(tmp_path, monkeypatch):
    """BC in run_dir/pretrain, then PPO from its weights with the KL penalty towards its last checkpoint."""
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    args = ["train", "agent=ppo", "+agent@pretrain=bc", "pretrain.total_steps=64", "pretrain.num_steps=16",
            "pretrain.progress=false", "agent.total_steps=128", "agent.kl_coef=0.1", "agent.reference=pretrain",
            f"run_dir={run}", "eval.enabled=false", *TINY]
    assert main(args) == 0
    pre = [json.loads(line) for line in (run / "pretrain" / "metrics.jsonl").read_text().splitlines()]
    assert pre[-1]["step"] == 64 and "train/accuracy" in pre[-1]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 128
    # PPO's first rollout is the BC policy itself: its KL to the reference is 0 before the first update
    assert rows[0]["train/kl_ref"] == pytest.approx(0.0, abs=1e-5)
    assert all(r["train/kl_penalty"] == pytest.approx(0.1 * r["train/kl_ref"]) for r in rows)
    # resuming a finished run trains neither stage again
    assert main([*args, "agent.resume=true"]) == 0
    assert len((run / "metrics.jsonl").read_text().splitlines()) == len(rows)


def test_reference_pretrain_needs_a_pretrain_stage(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "agent=ppo", "agent.kl_coef=0.1", "agent.reference=pretrain", *TINY])
    assert exit_info.value.code == 2
    assert "agent.reference='pretrain' names the pretrain stage's policy, but pretrain is null" in capsys.readouterr().err


def test_train_rejects_a_fixed_agent_and_unknown_keys(tmp_path, monkeypatch):
    from vlarena.hydra_main import EvalConfig  # noqa: F401  (the module the train entry point lives next to)
    from vlarena.run_train import TrainConfig

    monkeypatch.chdir(tmp_path)
    from hydra import compose, initialize_config_module

    with initialize_config_module("vlarena.configs", version_base="1.3"):
        with pytest.raises(ValueError, match="agent=oracle cannot be trained; accepted: \\['bc', 'dagger', 'ppo'\\]"):
            TrainConfig.from_hydra(compose("train", overrides=["agent=oracle"]))
        with pytest.raises(ValueError, match="agent.lr must be positive"):
            TrainConfig.from_hydra(compose("train", overrides=["agent.lr=-1"]))


def test_torchrun_two_cpu_ranks_keep_identical_weights(tmp_path):
    """DD-PPO style data parallelism: 2 gloo ranks under torchrun, each with its own envs."""
    import os
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "vlarena.cli",
           "train", "agent=ppo", "agent.total_steps=128", "eval.enabled=false", *TINY]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = list((tmp_path / "runs").glob("*/*/config.yaml"))
    assert len(runs) == 1  # one run directory for both ranks (rank 0's hydra directory)
    run = runs[0].parent
    info = json.loads((run / "distributed.json").read_text())
    assert info == {"world_size": 2, "max_weight_diff": 0.0}
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 128  # rank 0 alone logged, once per update


def test_cli_flushes_denormals_in_every_torch_thread():
    """Subnormal floats are zero in the CLI's process, in torch's worker threads too (they inherit the setting):
    denormal arithmetic had made long CPU training runs 4x slower per update."""
    import subprocess
    import sys

    code = ("import torch; torch.set_num_threads(2); from vlarena.cli import main; main(['no-such-command']); "
            "x = torch.full((4_000_000,), 1e-39); print((x * 1.0).count_nonzero().item(), (x.view(2, -1) @ "
            "torch.ones(2_000_000, 1)).abs().sum().item())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["0", "0.0"]
    plain = subprocess.run([sys.executable, "-c", "import torch; print((torch.full((8,), 1e-39) * 1.0)"
                            ".count_nonzero().item())"], capture_output=True, text=True, timeout=120)
    assert plain.stdout.strip() == "8"  # without it subnormals survive: the check above can fail


def test_eval_run_directories_name_the_checkpoint_and_never_collide():
    """Two evaluations started in the same second got one directory (and one summary.json) before."""
    from hydra import compose, initialize_config_module

    import vlarena.hydra_main  # noqa: F401  (registers the `evaluated` resolver)

    with initialize_config_module("vlarena.configs", version_base="1.3"):
        policy = compose("eval", overrides=["checkpoint=runs/x"], return_hydra_config=True).hydra.run.dir
        oracle = compose("eval", overrides=["agent=random"], return_hydra_config=True).hydra.run.dir
    assert policy.startswith("outputs/eval/R2R_val_unseen_checkpoint_") and "_random_" in oracle
    assert policy.rsplit("_", 1)[1] != oracle.rsplit("_", 1)[1]  # the time, down to the microsecond


def test_modular_teacher_labels_alfred_training(tmp_path, monkeypatch, capsys):
    """agent.teacher=modular: the modular agent labels every state of an ALFRED-v0 run; other envs are refused."""
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    args = ["train", "env=alfred", "agent=dagger", "agent.teacher=modular", "agent.beta0=0.5",
            "agent.beta_schedule=constant", "agent.expert_decides=[6,7,8,9,10,11,12]", "agent.total_steps=64",
            "agent.num_steps=16", "agent.progress=false", "num_envs=2", "policy=tiny", "env.kwargs.num_episodes=2",
            "env.kwargs.semantic_map=31", "eval.enabled=false", f"run_dir={run}"]
    assert main(args) == 0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 64 and all(r["train/labelled"] == 1.0 for r in rows)
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "agent=bc", "agent.teacher=modular", *TINY])
    assert exit_info.value.code == 2
    assert "it labels vlarena/ALFRED-v0 (env=alfred), not vlarena/ObjectNav-v0" in capsys.readouterr().err
