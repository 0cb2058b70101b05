"""`vlarena train`: the hydra config converted once into typed dataclasses, then train and evaluate.

Distributed (DD-PPO style): under `torchrun` (WORLD_SIZE > 1, env:// rendezvous) every rank builds
its own envs (seeded by rank), gradients are all-reduced by the trainer, and rank 0 alone writes
logs, checkpoints and the evaluation, in one run directory shared by all ranks:

    torchrun --standalone --nproc_per_node=2 -m vlarena.cli train experiment=r2r_bc
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from vlarena.datasets.jsonio import write_json

TRAIN_KEYS = ("name", "num_envs", "device", "train_split", "init_from", "run_dir", "eval")


@dataclass
class EvalSettings:
    split: str = "val_unseen"
    num_envs: int = 32
    deterministic: bool = True
    enabled: bool = True


@dataclass
class TrainConfig:
    name: str
    env_name: str
    env_kwargs: dict[str, Any]
    policy: Any  # PolicyConfig
    agent_name: str
    agent: Any  # BCConfig | DAggerConfig | PPOConfig
    num_envs: int = 16
    device: str = "cpu"
    train_split: str = "train"
    init_from: str | None = None
    run_dir: str | None = None
    eval: EvalSettings = field(default_factory=EvalSettings)

    @classmethod
    def from_hydra(cls, cfg: DictConfig) -> TrainConfig:
        from vlarena.agents import ALGORITHMS, get_algorithm
        from vlarena.policies import PolicyConfig

        raw = OmegaConf.to_container(cfg, resolve=True)
        env, policy, agent = raw.pop("env"), dict(raw.pop("policy")), dict(raw.pop("agent"))
        raw.pop("experiment", None)
        unknown = set(raw) - set(TRAIN_KEYS)
        if unknown:
            raise ValueError(f"unknown train option(s) {sorted(unknown)}; accepted: {list(TRAIN_KEYS)} and the groups "
                             f"env, policy, agent")
        name = agent.pop("name")
        if name not in ALGORITHMS:
            raise ValueError(f"agent={name} cannot be trained; accepted: {sorted(ALGORITHMS)}")
        policy_config = PolicyConfig.preset(policy.pop("preset", "cpu"), **policy)
        if not isinstance(raw["num_envs"], int) or raw["num_envs"] <= 0:
            raise ValueError(f"num_envs must be a positive int, got {raw['num_envs']!r}")
        return cls(env_name=env["name"], env_kwargs=env.get("kwargs") or {}, policy=policy_config, agent_name=name,
                   agent=get_algorithm(name)[0](**agent), eval=EvalSettings(**raw.pop("eval")), **raw)


def _distributed() -> tuple[int, int]:
    """(rank, world size); initialises torch.distributed under torchrun."""
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def weight_divergence(policy: torch.nn.Module) -> float:
    """The largest absolute difference between this rank's parameters and rank 0's, over all ranks."""
    import torch.distributed as dist

    flat = torch.cat([p.detach().float().flatten() for p in policy.parameters()])
    ref = flat.clone()
    dist.broadcast(ref, 0)
    diff = (flat - ref).abs().max()
    dist.all_reduce(diff, op=dist.ReduceOp.MAX)
    return float(diff)


def run_train(cfg: TrainConfig, run_dir: str | Path) -> dict[str, Any]:
    import dataclasses

    import gymnasium as gym

    import vlarena.envs
    from vlarena.agents import get_algorithm
    from vlarena.agents.evaluate import evaluate
    from vlarena.agents.policy_agent import PolicyAgent
    from vlarena.policies import VLAPolicy

    rank, world = _distributed()
    env_id = vlarena.envs.check_task(cfg.env_name)
    device = cfg.device
    if device.startswith("cuda") and world > 1:
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    agent = dataclasses.replace(cfg.agent, seed=cfg.agent.seed + rank)
    env = gym.make_vec(env_id, num_envs=cfg.num_envs, split=cfg.train_split, device=device, **cfg.env_kwargs)
    if cfg.init_from:
        policy = VLAPolicy.from_pretrained(cfg.init_from)
    else:
        torch.manual_seed(cfg.agent.seed)  # every rank starts from the same weights
        policy = VLAPolicy(cfg.policy, env.single_observation_space, env.single_action_space)
    policy = policy.to(device)
    result: dict[str, Any] = {"train": get_algorithm(cfg.agent_name)[1](policy, env, agent, run_dir)}
    if world > 1:  # the ranks must end with the same weights; say so in the run directory
        result["max_weight_diff"] = weight_divergence(policy)
        if rank == 0:
            write_json(Path(run_dir) / "distributed.json",
                       {"world_size": world, "max_weight_diff": result["max_weight_diff"]}, indent=1)
    if cfg.eval.enabled and rank == 0:
        eval_env = gym.make_vec(env_id, num_envs=cfg.eval.num_envs, split=cfg.eval.split, device=device,
                                **cfg.env_kwargs)
        out = Path(run_dir) / f"eval_{cfg.eval.split}"
        meta = {"env": env_id, "split": cfg.eval.split, "agent": cfg.agent_name, "run_dir": str(run_dir)}
        result["eval"] = evaluate(eval_env, PolicyAgent(policy, cfg.eval.deterministic).act, out, meta,
                                  progress=agent.progress)
    return result


def train_main_body(cfg: DictConfig, output_dir: str) -> dict[str, Any]:
    config = TrainConfig.from_hydra(cfg)
    rank, world = _distributed()
    if world > 1 and not config.run_dir:  # one run directory for all ranks: rank 0's
        import torch.distributed as dist

        shared = [output_dir]
        dist.broadcast_object_list(shared, src=0)
        output_dir = shared[0]
    out = Path(config.run_dir or output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if rank == 0:
        OmegaConf.save(cfg, out / "config.yaml", resolve=True)
    result = run_train(config, out)
    if "eval" in result:
        from vlarena.hydra_main import print_summary

        print_summary(result["eval"])
        print(f"wrote {out / f'eval_{config.eval.split}' / 'summary.json'}")
    return result
