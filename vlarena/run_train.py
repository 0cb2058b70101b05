"""`vlarena train`: the hydra config converted once into typed dataclasses, then train and evaluate.

Distributed (DD-PPO style): under `torchrun` (WORLD_SIZE > 1, env:// rendezvous) every rank builds
its own envs (seeded by rank), gradients are all-reduced by the trainer, and rank 0 alone writes
logs, checkpoints and the evaluation, in one run directory shared by all ranks:

    torchrun --standalone --nproc_per_node=2 -m vlarena.cli train experiment=r2r_bc

Stages: with `pretrain` set (an imitation agent's config, e.g. `- /agent@pretrain: bc` in an experiment's
defaults), that agent first trains the policy in `run_dir/pretrain` (its own checkpoints and logs); the main agent
then starts from its weights, and `agent.reference: pretrain` makes PPO's KL penalty pull towards that frozen
policy (BC then PPO, experiment r2r_bc_ppo). `resume=true` resumes whichever stage was running.

Demos: `demos=<folder>` (written by `vlarena data demos`) makes behaviour cloning (agent=bc, or a bc pretrain
stage) replay the recorded expert episodes (vlarena/agents/demos.py) instead of running the env; a later PPO
stage and the evaluation use the live env. The recorded observation spaces must be those of the env configured.

Envs: a native vlarena task is built batched, `gym.make_vec(env_id, num_envs, split=..., device=...)`, and its
splits are episode sets. An adapter env (BabyAI) has no native vector env and no episode files: gymnasium
vectorizes `num_envs` copies (SyncVectorEnv, numpy), and a split is a range of seeds, `env.split_seeds[split]`
onwards (vlarena/configs/env/babyai.yaml: train from 0, val from 1_000_000, test from 2_000_000). Training resets
sub-env i with seed `split_seeds[train_split] + rank * (num_envs + 1) + agent.seed + update + i` (`update`: where
the run starts or resumes; no two sub-envs of any ranks share a seed; later episodes come from each sub-env's
RNG), evaluation runs the `eval.num_episodes` seeds from `split_seeds[eval.split]` once each, and a run whose
training and evaluation seed ranges can overlap (up to 64 ranks) is refused before any work.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch
from omegaconf import DictConfig, OmegaConf

from vlarena.datasets.jsonio import write_json

TRAIN_KEYS = ("name", "num_envs", "device", "train_split", "init_from", "run_dir", "eval", "pretrain", "demos")
PRETRAIN_REFERENCE = "pretrain"  # agent.reference naming the policy the pretrain stage ended with
ENV_KEYS = ("name", "kwargs", "split_seeds")
MAX_RANKS = 64  # data-parallel ranks the seed-range check of adapter envs allows for


def _check_keys(section: str, raw: dict[str, Any], accepted: Sequence[str], also: str = "") -> None:
    unknown = set(raw) - set(accepted)
    if unknown:
        raise ValueError(f"unknown {section} option(s) {sorted(unknown)}; accepted: {list(accepted)}{also}")


@dataclass
class EvalSettings:
    split: str = "val_unseen"
    num_envs: int = 32
    deterministic: bool = True
    enabled: bool = True
    num_episodes: int | None = None  # None: every episode of the split (native envs); seeded envs need a number

    def __post_init__(self) -> None:
        n = self.num_episodes
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n <= 0):
            raise ValueError(f"eval.num_episodes must be a positive int or null (the whole split), got {n!r}")
        if isinstance(self.num_envs, bool) or not isinstance(self.num_envs, int) or self.num_envs <= 0:
            raise ValueError(f"eval.num_envs must be a positive int, got {self.num_envs!r}")

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> EvalSettings:
        _check_keys("eval", raw, [f.name for f in dataclasses.fields(cls)])
        return cls(**raw)


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
    pretrain_name: str | None = None
    pretrain: Any = None  # BCConfig | DAggerConfig: the stage before `agent`
    demos: str | None = None  # a demo folder behaviour cloning replays (module doc)
    env_split_seeds: dict[str, int] | None = None  # adapter envs: the first seed of each split

    @classmethod
    def from_hydra(cls, cfg: DictConfig) -> TrainConfig:
        from vlarena.policies import PolicyConfig

        raw = OmegaConf.to_container(cfg, resolve=True)
        env, policy, agent = dict(raw.pop("env")), dict(raw.pop("policy")), dict(raw.pop("agent"))
        raw.pop("experiment", None)
        _check_keys("train", raw, TRAIN_KEYS, " and the groups env, policy, agent")
        _check_keys("env", env, ENV_KEYS)
        name, agent_config = _agent_config("agent", agent)
        pretrain = raw.pop("pretrain", None)
        pretrain_name, pretrain_config = _agent_config("pretrain", dict(pretrain)) if pretrain else (None, None)
        if getattr(agent_config, "reference", None) == PRETRAIN_REFERENCE and pretrain is None:
            raise ValueError(f"agent.reference={PRETRAIN_REFERENCE!r} names the pretrain stage's policy, but pretrain "
                             f"is null: add a pretrain agent (e.g. '- /agent@pretrain: bc' in the experiment's defaults)")
        if raw.get("demos") and "bc" not in (name, pretrain_name):
            raise ValueError(f"demos= is read by behaviour cloning (agent=bc or a bc pretrain stage); agent={name} "
                             f"needs the live env: remove demos")
        policy_config = PolicyConfig.preset(policy.pop("preset", "cpu"), **policy)
        if not isinstance(raw["num_envs"], int) or raw["num_envs"] <= 0:
            raise ValueError(f"num_envs must be a positive int, got {raw['num_envs']!r}")
        config = cls(env_name=env["name"], env_kwargs=env.get("kwargs") or {}, policy=policy_config, agent_name=name,
                     agent=agent_config, eval=EvalSettings.from_dict(raw.pop("eval")), pretrain_name=pretrain_name,
                     pretrain=pretrain_config,
                     env_split_seeds=env.get("split_seeds"), **raw)
        config.check_env()
        return config

    def teachers(self) -> set[str]:
        """The `teacher` of each imitation stage (expert, modular)."""
        return {a.teacher for a in (self.pretrain, self.agent) if hasattr(a, "teacher")}

    def check_env(self) -> None:
        """The env exists; adapter envs have seed-range splits covering train_split and eval.split."""
        import vlarena.envs

        env_id = vlarena.envs.check_task(self.env_name, adapters=True)
        teachers = self.teachers()
        if "modular" in teachers:
            if teachers != {"modular"}:
                raise ValueError("agent.teacher=modular labels every imitation stage's states: set "
                                 "pretrain.teacher=modular too, or train the stages as runs of their own (init_from=)")
            if env_id != "vlarena/ALFRED-v0":
                raise ValueError(f"agent.teacher=modular is the modular ALFRED agent: it labels vlarena/ALFRED-v0 "
                                 f"(env=alfred), not {env_id}")
            if self.demos:
                raise ValueError("demos= replays the recorded expert's actions, and agent.teacher=modular labels the "
                                 "live env: remove one of them")
        if vlarena.envs.is_native(env_id):
            if self.env_split_seeds is not None:
                raise ValueError(f"env.split_seeds is for adapter envs (seed-range splits); {env_id} has episode "
                                 f"splits: remove env.split_seeds")
            return
        seeds = self.env_split_seeds
        if not isinstance(seeds, dict) or not seeds:
            raise ValueError(f"{env_id} has no native vector env: its splits are seed ranges, so env.split_seeds "
                             f"must map split names to first seeds, e.g. {{train: 0, val: 1000000}}; got {seeds!r}")
        for split in (self.train_split, *([self.eval.split] if self.eval.enabled else [])):
            if split not in seeds:
                raise ValueError(f"split {split!r} is not in env.split_seeds; accepted: {sorted(seeds)}")
        bad = {k: v for k, v in seeds.items() if isinstance(v, bool) or not isinstance(v, int) or v < 0}
        if bad:
            raise ValueError(f"env.split_seeds must be non-negative ints, got {bad}")
        if self.eval.enabled and self.eval.num_episodes is None:
            raise ValueError(f"{env_id} splits are seed ranges: set eval.num_episodes (how many held-out seeds)")
        if self.eval.enabled and self.eval.split != self.train_split:
            # training seeds (module doc), for up to MAX_RANKS ranks
            train0 = seeds[self.train_split] + self.agent.seed
            train1 = train0 + MAX_RANKS * (self.num_envs + 1) + self.agent.num_updates(self.num_envs) + self.num_envs
            eval0 = seeds[self.eval.split]
            eval1 = eval0 + self.eval.num_episodes
            if train0 < eval1 and eval0 < train1:
                raise ValueError(f"the seeds of train_split={self.train_split!r} [{train0}, {train1}) and of "
                                 f"eval.split={self.eval.split!r} [{eval0}, {eval1}) overlap: held-out evaluation "
                                 f"needs disjoint seeds (move env.split_seeds apart)")


def _agent_config(group: str, values: dict[str, Any]) -> tuple[str, Any]:
    """(algorithm name, its typed config) of a hydra agent section; errors name the section and accepted keys."""
    from vlarena.agents import ALGORITHMS, get_algorithm

    name = values.pop("name", None)
    if name not in ALGORITHMS:
        raise ValueError(f"{group}={name} cannot be trained; accepted: {sorted(ALGORITHMS)}")
    agent_class = get_algorithm(name)[0]
    accepted = {f.name for f in dataclasses.fields(agent_class)}
    unknown = set(values) - accepted
    if unknown:
        raise ValueError(f"unknown {group} option(s) {sorted(unknown)} for {group}={name}; accepted: {sorted(accepted)}")
    return name, agent_class(**values)


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


def make_env(cfg: TrainConfig, split: str, num_envs: int, device: str, rank: int = 0, **overrides: Any) -> Any:
    """The vector env of `split`: native (batched, on `device`) or gymnasium's SyncVectorEnv of the adapter env,
    whose reset seeds are shifted to the split's seed range (and past the seeds of lower ranks). `overrides`
    replace env kwargs (native envs)."""
    import vlarena.envs

    env_id = vlarena.envs.check_task(cfg.env_name, adapters=True)
    if vlarena.envs.is_native(env_id):
        return gym.make_vec(env_id, num_envs=num_envs, split=split, device=device, **{**cfg.env_kwargs, **overrides})
    assert cfg.env_split_seeds is not None  # check_env
    if rank >= MAX_RANKS:
        raise ValueError(f"adapter envs train on at most {MAX_RANKS} ranks (the seed-range check), got rank {rank}")
    env = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="sync", **cfg.env_kwargs)
    return SeedOffset(env, cfg.env_split_seeds[split] + rank * num_envs)  # the trainer adds agent.seed + rank


def make_training_env(cfg: TrainConfig, device: str, rank: int) -> Any:
    """The training split's env; with `agent.teacher=modular` (every imitation stage; check_env), ALFRED-v0 with
    its segmentation, labelled by the modular agent (agents.modular.teacher)."""
    if "modular" not in cfg.teachers():
        return make_env(cfg, cfg.train_split, cfg.num_envs, device, rank)
    from vlarena.agents.modular.teacher import ModularTeacher

    return ModularTeacher(make_env(cfg, cfg.train_split, cfg.num_envs, device, rank, segmentation=True))


class SeedOffset(gym.vector.VectorWrapper):
    """A gymnasium vector env whose `reset(seed=s)` seeds sub-env i with `offset + s + i` (a split's seed range)."""

    def __init__(self, env: gym.vector.VectorEnv, offset: int):
        super().__init__(env)
        self.offset = int(offset)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> Any:
        return self.env.reset(seed=None if seed is None else self.offset + int(seed), options=options)


def run_train(cfg: TrainConfig, run_dir: str | Path) -> dict[str, Any]:
    import vlarena.envs
    from vlarena.agents import get_algorithm
    from vlarena.agents.policy_agent import PolicyAgent
    from vlarena.policies import VLAPolicy

    rank, world = _distributed()
    env_id = vlarena.envs.check_task(cfg.env_name, adapters=True)
    device = cfg.device
    if device.startswith("cuda") and world > 1:
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    agent = dataclasses.replace(cfg.agent, seed=cfg.agent.seed + rank)
    env = make_training_env(cfg, device, rank)
    demo_env = demo_replay_env(cfg, env, device, agent.seed) if cfg.demos else None
    if cfg.init_from:
        # the saved network on this run's spaces (e.g. an observation the env adds, such as an action mask)
        policy = VLAPolicy.from_pretrained(cfg.init_from, observation_space=env.single_observation_space,
                                           action_space=env.single_action_space)
    else:
        torch.manual_seed(cfg.agent.seed)  # every rank starts from the same weights
        policy = VLAPolicy(cfg.policy, env.single_observation_space, env.single_action_space)
    policy = policy.to(device)
    result: dict[str, Any] = {}
    if cfg.pretrain is not None:
        pre_dir = Path(run_dir) / "pretrain"
        pre = dataclasses.replace(cfg.pretrain, seed=cfg.pretrain.seed + rank, resume=agent.resume)
        pre_env = demo_env if demo_env is not None and cfg.pretrain_name == "bc" else env
        result["pretrain"] = get_algorithm(cfg.pretrain_name)[1](policy, pre_env, pre, pre_dir)
        if world > 1:  # rank 0 wrote the last pretrain checkpoint that every rank may read below
            import torch.distributed as dist

            dist.barrier()
        if getattr(agent, "reference", None) == PRETRAIN_REFERENCE:
            from vlarena.agents.checkpoint import latest_checkpoint

            agent = dataclasses.replace(agent, reference=str(latest_checkpoint(pre_dir)))
    main_env = demo_env if demo_env is not None and cfg.agent_name == "bc" else env
    result["train"] = get_algorithm(cfg.agent_name)[1](policy, main_env, agent, run_dir)
    env.close()
    if world > 1:  # the ranks must end with the same weights; say so in the run directory
        result["max_weight_diff"] = weight_divergence(policy)
        if rank == 0:
            write_json(Path(run_dir) / "distributed.json",
                       {"world_size": world, "max_weight_diff": result["max_weight_diff"]}, indent=1)
        import torch.distributed as dist

        dist.destroy_process_group()  # before exit: a live gloo group could abort the process as it ends
    if cfg.eval.enabled and rank == 0:
        eval_env = make_env(cfg, cfg.eval.split, cfg.eval.num_envs, device)
        out = Path(run_dir) / f"eval_{cfg.eval.split}"
        meta = {"env": env_id, "split": cfg.eval.split, "agent": cfg.agent_name, "run_dir": str(run_dir)}
        act = PolicyAgent(policy, cfg.eval.deterministic).act
        if vlarena.envs.is_native(env_id):
            from vlarena.agents.evaluate import evaluate
            from vlarena.agents.evaluate_alfred import evaluate_alfred

            ids = None if cfg.eval.num_episodes is None else list(eval_env.episode_ids)[:cfg.eval.num_episodes]
            if env_id == "vlarena/ALFRED-v0":
                result["eval"] = evaluate_alfred(eval_env, act, out, meta, episode_ids=ids)
            else:
                result["eval"] = evaluate(eval_env, act, out, meta, progress=agent.progress, episode_ids=ids)
        else:
            from vlarena.agents.evaluate_gym import evaluate_seeds

            first = eval_env.offset
            result["eval"] = evaluate_seeds(eval_env.unwrapped, act, range(first, first + cfg.eval.num_episodes),
                                            out, meta, device=device, progress=agent.progress)
        eval_env.close()
    return result


def demo_replay_env(cfg: TrainConfig, env: Any, device: str, seed: int) -> Any:
    """The demo folder `cfg.demos` as a vector env, after checking it records what `env` observes."""
    from vlarena.agents.demos import DemoReplayEnv

    demos = DemoReplayEnv(cfg.demos, cfg.num_envs, device, seed=seed)
    live = env.single_observation_space
    for key, space in demos.single_observation_space.spaces.items():
        if key not in live.spaces or live[key] != space:
            raise ValueError(f"demos {cfg.demos} recorded observation {key!r} as {space}, but the configured env "
                             f"gives {live.spaces.get(key)}: record the demos with the same env settings")
    if demos.single_action_space != env.single_action_space:
        raise ValueError(f"demos {cfg.demos} recorded actions in {demos.single_action_space}, the env acts in "
                         f"{env.single_action_space}")
    return demos


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
