"""The shipped experiments compose into the documented env / agent / policy, and bad config input fails before any
work with hydra's message (unknown group option, unknown key) or ours (unknown option, seed ranges)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_module

import vlarena
from vlarena.cli import main
from vlarena.run_train import TrainConfig

EXPERIMENTS = Path(vlarena.__file__).parent / "configs" / "experiment"

# name -> (env, agent, agent config class, env frame (H, W) from env.kwargs, eval split): as each experiment file's
# header comment and the README document them. A new experiment needs its line here.
EXPECTED = {
    "objectnav_ppo": ("ObjectNav", "ppo", "PPOConfig", (64, 64), "val"),
    "r2r_bc": ("R2R", "bc", "BCConfig", (32, 4 * 32), "val_unseen"),  # 4 views of 32x32 side by side
    "r2r_ce_dagger": ("R2R-CE", "dagger", "DAggerConfig", (64, 64), "val_unseen"),
    "quickstart": ("R2R", "bc", "BCConfig", (32, 4 * 32), "val_unseen"),
    "r2r_bc_ppo": ("R2R", "ppo", "PPOConfig", (32, 4 * 32), "val_unseen"),  # after a BC pretrain stage
    "r2r_ce_bc_ppo": ("R2R-CE", "ppo", "PPOConfig", (64, 64), "val_unseen"),  # after a BC pretrain stage
    "r2r_bc_dagger": ("R2R", "dagger", "DAggerConfig", (32, 4 * 32), "val_unseen"),  # after a BC pretrain stage
    "babyai_bc": ("BabyAI-GoToLocal", "bc", "BCConfig", (56, 56), "val"),
    "babyai_dagger": ("BabyAI-GoToLocal", "dagger", "DAggerConfig", (56, 56), "val"),
    "alfred_bc": ("ALFRED", "bc", "BCConfig", (64, 64), "valid_unseen"),
    "alfred_dagger": ("ALFRED", "dagger", "DAggerConfig", (64, 64), "valid_unseen"),
    "alfred_bc_dagger": ("ALFRED", "dagger", "DAggerConfig", (64, 64), "valid_unseen"),  # after a BC pretrain stage
}


def env_frame(env_kwargs: dict) -> tuple[int, int]:
    if "size" in env_kwargs:  # adapter envs
        return tuple(env_kwargs["size"])
    return env_kwargs["height"], env_kwargs["width"] * env_kwargs.get("views", 1)


def compose_train(overrides: list[str]) -> TrainConfig:
    with initialize_config_module("vlarena.configs", version_base="1.3"):
        return TrainConfig.from_hydra(compose("train", overrides=overrides))


def test_every_shipped_experiment_is_documented_here():
    shipped = sorted(p.stem for p in EXPERIMENTS.glob("*.yaml"))
    assert "babyai_bc" in shipped
    assert sorted(EXPECTED) == shipped, "add the new experiment's documented env/agent/policy to EXPECTED"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_experiment_composes_to_the_documented_env_agent_and_policy(name):
    env, agent, agent_class, frame, eval_split = EXPECTED[name]
    cfg = compose_train([f"experiment={name}"])
    assert cfg.name == name and cfg.env_name == env and cfg.agent_name == agent
    assert type(cfg.agent).__name__ == agent_class
    assert cfg.policy.vision.image_hw == env_frame(cfg.env_kwargs) == frame  # the ViT sees the env's frames as is
    h, w = cfg.policy.vision.grid
    assert h * cfg.policy.vision.patch_size == frame[0] and w * cfg.policy.vision.patch_size == frame[1]
    assert cfg.eval.split == eval_split and cfg.eval.enabled
    total = cfg.agent.total_steps + (cfg.pretrain.total_steps if cfg.pretrain else 0)  # both stages
    assert total >= (40_000 if name == "quickstart" else 100_000)  # real runs, not smoke tests
    assert cfg.num_envs >= 16
    # the R2R graph experiments read the instruction through a trainable context (docs/r2r_experiments.md)
    assert cfg.policy.language.context == ("gru" if env == "R2R" else "none")
    if name in ("r2r_bc_ppo", "r2r_bc_dagger"):  # train plus 1,080 more training scenes (README, R2R data)
        assert cfg.train_split == "train_aug" and cfg.env_kwargs["dataset"]["aug_scenes"] == 1080
    else:
        assert cfg.train_split == "train"
    if name.endswith(("_bc_ppo", "_bc_dagger")):  # a BC stage first
        assert type(cfg.pretrain).__name__ == "BCConfig" and cfg.pretrain.total_steps >= 100_000
    if name.endswith("_bc_ppo"):  # then PPO with the KL penalty towards the BC policy
        assert cfg.agent.kl_coef > 0 and cfg.agent.reference == "pretrain"
        assert cfg.agent.value_detach == (name == "r2r_bc_ppo")  # r2r_ce_bc_ppo has not been re-run with it
    elif name.endswith("_bc_dagger"):  # then DAgger, the expert acting with a constant probability
        assert cfg.agent.beta_schedule == "constant" and 0 < cfg.agent.beta0 < 1
        assert cfg.agent.student_action == "argmax"
        assert cfg.policy.memory.hidden == 256  # r2r_bc's GRU: with the context 1,024 units scored the same (README)
    else:
        assert cfg.pretrain is None
    if env.startswith("BabyAI"):
        assert cfg.env_split_seeds == {"train": 0, "val": 1_000_000, "test": 2_000_000}
        assert cfg.eval.num_episodes == 500 and cfg.policy.vision.patch_size == 8  # one ViT token per grid cell
    else:
        assert cfg.env_split_seeds is None and cfg.eval.num_episodes is None  # the whole split


@pytest.mark.parametrize("override, expected", [
    ("agent=nope", ["Could not find 'agent/nope'", "Available options in 'agent'", "bc", "dagger", "ppo"]),
    ("env=nope", ["Could not find 'env/nope'", "Available options in 'env'", "babyai", "objectnav", "r2r_ce"]),
    ("experiment=nope", ["Could not find 'experiment/nope'", "babyai_bc", "r2r_bc"]),
    ("num_envz=3", ["Could not override 'num_envz'", "Key 'num_envz' is not in struct"]),
    ("agent.lrr=1e-3", ["Could not override 'agent.lrr'", "Key 'lrr' is not in struct"]),
])
def test_unknown_group_option_or_key_fails_with_hydras_message(tmp_path, monkeypatch, capsys, override, expected):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["train", override, f"run_dir={tmp_path / 'run'}"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    for text in expected:
        assert text in err, err
    assert not (tmp_path / "run").exists() and not (tmp_path / "runs").exists()  # no work done


@pytest.mark.parametrize("override, expected", [
    ("+foo=1", "unknown train option(s) ['foo']; accepted: ['name', 'num_envs'"),
    ("+env.nope=1", "unknown env option(s) ['nope']; accepted: ['name', 'kwargs', 'split_seeds']"),
    ("+agent.foo=1", "unknown agent option(s) ['foo'] for agent=ppo; accepted: ['adam_eps', 'amp'"),
    ("+eval.max_episodes=9", "unknown eval option(s) ['max_episodes']; accepted: ['split', 'num_envs'"),
    ("agent=oracle", "agent=oracle cannot be trained; accepted: ['bc', 'dagger', 'ppo']"),
    ("num_envs=0", "num_envs must be a positive int, got 0"),
    ("eval.num_episodes=-2", "eval.num_episodes must be a positive int or null (the whole split), got -2"),
])
def test_bad_values_fail_before_any_work_with_one_line(tmp_path, monkeypatch, capsys, override, expected):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["train", override, f"run_dir={tmp_path / 'run'}"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("vlarena train: error: ") and expected in err and "Traceback" not in err, err
    assert not (tmp_path / "run").exists()


def test_seed_range_splits_are_checked():
    base = ["env=babyai", "agent=bc", "eval.split=val"]
    with pytest.raises(ValueError, match="set eval.num_episodes"):
        compose_train(base)
    cfg = compose_train([*base, "eval.num_episodes=100"])
    assert cfg.env_split_seeds["val"] == 1_000_000 and cfg.env_kwargs["size"] == [56, 56]
    with pytest.raises(ValueError, match=r"eval.split='val' \[50, 150\) overlap: held-out evaluation needs disjoint"):
        compose_train([*base, "eval.num_episodes=100", "env.split_seeds.val=50"])
    with pytest.raises(ValueError, match=r"split 'val_unseen' is not in env.split_seeds; accepted: \['test', 'train'"):
        compose_train([*base, "eval.num_episodes=100", "eval.split=val_unseen"])
    with pytest.raises(ValueError, match="env.split_seeds is for adapter envs"):
        compose_train(["env=objectnav", "+env.split_seeds={train: 0}"])
    assert compose_train([*base, "eval.split=train", "eval.num_episodes=10"]).eval.split == "train"  # asked for


def test_eval_num_episodes_limits_a_native_split(tmp_path, monkeypatch):
    import json

    from tests.test_train_cli import TINY

    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    assert main(["train", "agent=bc", "agent.total_steps=64", "eval.num_episodes=3", f"run_dir={run}", *TINY]) == 0
    summary = json.loads((run / "eval_val" / "summary.json").read_text())
    episodes = (run / "eval_val" / "episodes.jsonl").read_text().splitlines()
    assert summary["num_episodes"] == len(episodes) == 3  # of the 4 val episodes of TINY
