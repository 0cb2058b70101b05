"""Hydra entry points behind `vlarena eval` and `vlarena train` (configs in vlarena/configs, converted once to
dataclasses; training itself is in `vlarena.run_train`)."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from vlarena.agents.fixed import FixedAgentConfig

SUMMARY_KEYS = ("success_rate", "spl", "nav_error", "oracle_success_rate", "trajectory_length", "ndtw", "sdtw",
                "goal_condition_success", "plw_success_rate", "plw_goal_condition_success", "num_episodes")


@dataclass
class EvalConfig:
    env_name: str = "R2R"
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    agent: FixedAgentConfig = field(default_factory=FixedAgentConfig)
    split: str = "val_unseen"
    num_envs: int = 32
    device: str = "cpu"
    out_dir: str | None = None
    progress: bool = True
    predictions: str | None = None
    r2r_file: str | None = None
    connectivity_dir: str | None = None
    checkpoint: str | None = None  # a saved policy (checkpoints/step_<N>) or a run directory (its latest)
    deterministic: bool = True

    @classmethod
    def from_hydra(cls, cfg: DictConfig) -> EvalConfig:
        raw = OmegaConf.to_container(cfg, resolve=True)
        env, agent = raw.pop("env"), raw.pop("agent")
        unknown = set(raw) - {f for f in cls.__dataclass_fields__ if f not in ("env_name", "env_kwargs", "agent")}
        if unknown:
            raise ValueError(f"unknown eval option(s) {sorted(unknown)}")
        return cls(env_name=env["name"], env_kwargs=env.get("kwargs") or {}, agent=FixedAgentConfig(**agent), **raw)


def run_eval(cfg: EvalConfig, out_dir: str | Path) -> dict[str, Any]:
    from vlarena.agents.evaluate import write_outputs

    meta = {"env": f"vlarena/{cfg.env_name}-v0", "split": cfg.split}
    if cfg.predictions:
        summary, rows = _score_file(cfg)
        summary = {**summary, **meta, "predictions": str(cfg.predictions)}
        write_outputs(out_dir, summary, rows)
        return summary
    import gymnasium as gym

    import vlarena.envs
    from vlarena.agents.evaluate import evaluate
    from vlarena.agents.fixed import make_fixed_agent

    env_id = vlarena.envs.check_task(cfg.env_name)
    modular = cfg.env_name == "ALFRED" and cfg.checkpoint and (Path(cfg.checkpoint) / "parser.json").exists()
    kwargs = cfg.env_kwargs
    if modular:  # the modular agent's inputs: the whole map and the segmentation
        from vlarena.agents.modular.agent import MIN_MAP

        kwargs = {**kwargs, "semantic_map": max(MIN_MAP, kwargs.get("semantic_map") or 0), "segmentation": True}
    env = gym.make_vec(env_id, num_envs=cfg.num_envs, split=cfg.split, device=cfg.device, **kwargs)
    if cfg.env_name == "ALFRED":
        from vlarena.agents.evaluate_alfred import evaluate_alfred, fixed_alfred_agent

        if modular:
            from vlarena.agents.modular.agent import ModularAgent
            from vlarena.agents.modular.parser import TaskParser

            act, meta["agent"] = ModularAgent(TaskParser.load(cfg.checkpoint)).act, "modular"
            meta["checkpoint"] = str(cfg.checkpoint)
        elif cfg.checkpoint:
            act, meta["agent"] = _policy_act(cfg, env), "policy"
        else:
            act, meta["agent"] = fixed_alfred_agent(cfg.agent.name, cfg.agent.seed), cfg.agent.name
        return evaluate_alfred(env, act, out_dir, meta)
    if cfg.checkpoint:
        act, meta["agent"], meta["checkpoint"] = _policy_act(cfg, env), "policy", str(cfg.checkpoint)
    else:
        act, meta["agent"] = make_fixed_agent(cfg.agent).act, cfg.agent.name
    return evaluate(env, act, out_dir, meta, progress=cfg.progress)


def _policy_act(cfg: EvalConfig, env: Any) -> Any:
    import torch

    from vlarena.agents.checkpoint import latest_checkpoint
    from vlarena.agents.policy_agent import PolicyAgent
    from vlarena.policies import VLAPolicy

    path = Path(cfg.checkpoint)
    if not (path / "config.json").exists():
        latest = latest_checkpoint(path)
        if latest is None:
            raise ValueError(f"checkpoint={path} is neither a saved policy (config.json + model.safetensors) nor a run "
                             f"directory with checkpoints/")
        path = latest
    policy = VLAPolicy.from_pretrained(path, device=cfg.device)
    for key, space in policy.observation_space.spaces.items():
        live = env.single_observation_space.spaces.get(key)
        if getattr(space, "shape", None) != getattr(live, "shape", None):
            raise ValueError(f"the policy in {path} was trained on observation {key!r} of shape {space.shape}, the env "
                             f"gives {getattr(live, 'shape', None)}: set the env kwargs it was trained with (e.g. "
                             f"env.kwargs.width=, env.kwargs.height=; see the run's config.yaml)")
    if not cfg.deterministic:
        torch.manual_seed(cfg.agent.seed)  # sampled actions: the same draws on every run (agent.seed, default 0)
    return PolicyAgent(policy, cfg.deterministic).act


def _score_file(cfg: EvalConfig) -> tuple[dict[str, float], list[dict]]:
    from vlarena.datasets.connectivity import read_connectivity
    from vlarena.datasets.predictions import score_prediction_file
    from vlarena.datasets.r2r import read_r2r
    from vlarena.envs.r2r_data import R2RDataConfig, load_split

    if cfg.r2r_file:
        if not cfg.connectivity_dir:
            raise ValueError("r2r_file needs connectivity_dir (the folder of <scan>_connectivity.json files)")
        files = sorted(Path(cfg.connectivity_dir).glob("*_connectivity.json"))
        if not files:
            raise ValueError(f"connectivity_dir {cfg.connectivity_dir} holds no <scan>_connectivity.json files")
        graphs = {}
        for f in files:
            scan = f.name.removesuffix("_connectivity.json")
            graphs[scan] = read_connectivity(f, scan)
        episodes = read_r2r(cfg.r2r_file, graphs)  # unknown scans and broken paths name file, record, field
    else:
        data = load_split(cfg.split, R2RDataConfig(**(cfg.env_kwargs.get("dataset") or {})))
        episodes = data.paths
        graphs = {g.scan: g for g in data.graphs}
    return score_prediction_file(cfg.predictions, episodes, graphs)


def print_summary(summary: dict[str, Any]) -> None:
    print(" ".join(f"{k}={summary[k]:.3f}" if isinstance(summary[k], float) else f"{k}={summary[k]}"
                   for k in SUMMARY_KEYS if k in summary))


# eval.yaml's run directory names what was evaluated: the agent (oracle, random, ...) or "checkpoint"
OmegaConf.register_new_resolver("evaluated", lambda agent, checkpoint: agent if checkpoint is None else "checkpoint",
                                replace=True)


@hydra.main(config_path="configs", config_name="eval", version_base="1.3")
def eval_main(cfg: DictConfig) -> None:
    config = EvalConfig.from_hydra(cfg)
    out = Path(config.out_dir or HydraConfig.get().runtime.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(OmegaConf.to_container(cfg, resolve=True), indent=1))
    try:
        summary = run_eval(config, out)
    except ValueError as e:
        _fail("eval", e)
    print_summary(summary)
    print(f"wrote {out / 'summary.json'}")


def _run_training(command: str, body: Any, cfg: DictConfig, also: tuple[type[BaseException], ...] = ()) -> None:
    """A bad config value (ValueError from the conversion, before any work), an unreadable checkpoint
    (CheckpointError) and a NaN/inf stop (FloatingPointError) end the command with their message and exit
    status 2, not a traceback; anything else is a bug and keeps hydra's report."""
    from vlarena.agents.checkpoint import CheckpointError
    from vlarena.run_train import TrainConfig

    try:
        TrainConfig.from_hydra(cfg)
    except ValueError as e:
        _fail(command, e)
    try:
        body(cfg, HydraConfig.get().runtime.output_dir)
    except (CheckpointError, FloatingPointError, *also) as e:
        _fail(command, e)


@hydra.main(config_path="configs", config_name="train", version_base="1.3")
def train_main(cfg: DictConfig) -> None:
    from vlarena.run_train import train_main_body

    _run_training("train", train_main_body, cfg)


@hydra.main(config_path="configs", config_name="train", version_base="1.3")
def quickstart_main(cfg: DictConfig) -> None:
    """`vlarena train experiment=quickstart` plus the floors, a table and a GIF (vlarena/quickstart.py)."""
    from vlarena.quickstart import run_quickstart

    _run_training("quickstart", run_quickstart, cfg, also=(ValueError,))


@hydra.main(config_path="configs", config_name="pretrain", version_base="1.3")
def pretrain_main(cfg: DictConfig) -> None:
    """`vlarena pretrain method=clip|mae|moco|vqvae` (vlarena/agents/pretrain.py)."""
    from vlarena.agents.pretrain import PretrainConfig, run_pretrain
    from vlarena.datasets.jsonio import write_bytes_atomic

    raw = OmegaConf.to_container(cfg, resolve=True)
    out = Path(raw.pop("run_dir", None) or HydraConfig.get().runtime.output_dir)
    try:
        config = PretrainConfig(**raw)
    except (TypeError, ValueError) as e:
        _fail("pretrain", e)
    write_bytes_atomic(out / "config.yaml", OmegaConf.to_yaml(cfg).encode())
    try:
        summary = run_pretrain(config, out)
    except (FloatingPointError, ValueError) as e:
        _fail("pretrain", e)
    print(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in summary.items()
                   if k not in ("vision", "encoder")))
    print(f"wrote {summary['encoder']}: load it with policy.vision.weights={summary['encoder']}")


def _fail(command: str, error: BaseException) -> None:
    print(f"vlarena {command}: error: {error}", file=sys.stderr)
    raise SystemExit(2) from None
