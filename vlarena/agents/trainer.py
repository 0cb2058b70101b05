"""What every learning agent shares: config, optimizer, LR schedule, the update loop, logs, checkpoints, resume.

An algorithm subclasses `Trainer` and implements `iteration()` (collect a rollout, learn from it,
return metrics); ppo.py and dagger.py read top to bottom like their papers' pseudo-code. The loop:

    resume from run_dir/checkpoints/latest if config.resume (weights, optimizer, scheduler, RNGs, counters)
    for update in range(counters["update"], num_updates):
        metrics = iteration()                      # rollout of num_steps x num_envs env steps + updates
        scheduler.step(); counters += ...
        log metrics (TensorBoard + metrics.jsonl) every log_every updates
        checkpoint every checkpoint_every updates and at the end

Counters: `update` (updates done), `step` (env steps collected, the x-axis of every log and the name
of a checkpoint), `episodes` (episodes ended). A loss or gradient that is NaN or inf stops the run
with `FloatingPointError` naming the update and step, before the optimizer steps, so the last
checkpoint stays the last good one.

Data-parallel hooks (DD-PPO style, used when torch.distributed is initialised): gradients are
averaged over ranks before clipping (`_all_reduce_gradients`), episode statistics are summed over
ranks, NaN checks and PPO's target_kl stop are agreed by all ranks (so none waits alone in a
collective), and only rank 0 writes logs and checkpoints. Each rank should get its own `seed`.
Not covered here: a test with 2 processes (the distributed entry point's).
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.optim.lr_scheduler import LambdaLR
from tqdm import tqdm

from vlarena.agents.checkpoint import load_latest, save_checkpoint
from vlarena.agents.logging_utils import RunLogger
from vlarena.agents.rollout import RolloutStorage
from vlarena.agents.runner import EnvRunner, policy_obs_keys

LR_SCHEDULES = ("linear", "constant")


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@dataclass
class AgentConfig:
    """Settings shared by the learning agents (the hydra `agent` group); each algorithm extends it."""

    total_steps: int = 1_000_000  # env steps of this process (num_updates = total_steps // (num_steps * num_envs))
    num_steps: int = 128  # rollout length T per env and update
    lr: float = 2.5e-4
    lr_schedule: str = "linear"  # linear: from lr to lr * lr_final_fraction over the run | constant
    lr_final_fraction: float = 0.0
    adam_eps: float = 1e-5
    weight_decay: float = 0.0
    max_grad_norm: float = 0.5  # 0: no clipping
    seed: int = 0
    checkpoint_every: int = 50  # updates; 0: only at the end
    keep_checkpoints: int = 3
    log_every: int = 1  # updates
    resume: bool = False
    tensorboard: bool = True
    progress: bool = True
    amp: bool = False  # bf16 autocast on CUDA (no effect on CPU); the default policy is 1.9x faster in fp32

    def __post_init__(self) -> None:
        for name in ("total_steps", "num_steps", "log_every", "keep_checkpoints"):
            value = getattr(self, name)
            _check(isinstance(value, int) and not isinstance(value, bool) and value > 0,
                   f"agent.{name} must be a positive int, got {value!r}")
        _check(isinstance(self.checkpoint_every, int) and self.checkpoint_every >= 0,
               f"agent.checkpoint_every must be a non-negative int (0: only at the end), got {self.checkpoint_every!r}")
        _check(self.lr > 0 and math.isfinite(self.lr), f"agent.lr must be positive, got {self.lr}")
        _check(self.lr_schedule in LR_SCHEDULES, f"agent.lr_schedule must be one of {list(LR_SCHEDULES)}, "
                                                 f"got {self.lr_schedule!r}")
        _check(0.0 <= self.lr_final_fraction <= 1.0, f"agent.lr_final_fraction must be in [0, 1], "
                                                      f"got {self.lr_final_fraction}")
        _check(self.max_grad_norm >= 0, f"agent.max_grad_norm must be >= 0 (0: no clipping), got {self.max_grad_norm}")
        _check(self.adam_eps > 0 and self.weight_decay >= 0, f"agent.adam_eps must be positive and agent.weight_decay "
                                                             f">= 0, got {self.adam_eps}, {self.weight_decay}")

    def num_updates(self, num_envs: int) -> int:
        return max(1, self.total_steps // (self.num_steps * num_envs))


class LinearSchedule:
    """LR factor for LambdaLR: 1 at update 0, `final_fraction` after `num_updates` (a callable object, so that
    its plain-number state is saved with the scheduler)."""

    def __init__(self, num_updates: int, final_fraction: float = 0.0, constant: bool = False):
        self.num_updates, self.final_fraction, self.constant = num_updates, final_fraction, constant

    def __call__(self, update: int) -> float:
        if self.constant:
            return 1.0
        return 1.0 - min(update / self.num_updates, 1.0) * (1.0 - self.final_fraction)


def distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def is_main_process() -> bool:
    return not distributed() or dist.get_rank() == 0


def mean_over_ranks(value: torch.Tensor) -> torch.Tensor:
    """The mean of `value` over the data-parallel ranks (itself when not distributed)."""
    if not distributed():
        return value
    value = value.detach().clone()
    dist.all_reduce(value)
    return value / dist.get_world_size()


class Trainer:
    """Subclasses implement `iteration() -> dict[str, float]` (and may extend `setup()`)."""

    name = "agent"

    def __init__(self, policy: torch.nn.Module, env: Any, config: AgentConfig, run_dir: str | Path):
        self.config = config
        self.env = env
        device = getattr(env, "device", None)  # native envs: their device; numpy envs: where the policy is
        self.device = torch.device(device) if device is not None else next(policy.parameters()).device
        self.policy = policy.to(self.device)
        self.run_dir = Path(run_dir)
        self.num_envs: int = env.num_envs
        self.num_updates = config.num_updates(self.num_envs)
        minibatches = getattr(config, "num_minibatches", 1)
        if minibatches > self.num_envs:
            raise ValueError(f"agent.num_minibatches ({minibatches}) must be at most the number of envs "
                             f"({self.num_envs}): minibatches split the envs into groups of whole sequences")
        self.params = [p for p in self.policy.parameters() if p.requires_grad]
        if not self.params:
            raise ValueError("the policy has no trainable parameters")
        self.params += [p for p in self.auxiliary_parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(self.params, lr=config.lr, eps=config.adam_eps,
                                          weight_decay=config.weight_decay)
        self.scheduler = LambdaLR(self.optimizer, LinearSchedule(self.num_updates, config.lr_final_fraction,
                                                                 constant=config.lr_schedule == "constant"))
        self.generator = torch.Generator().manual_seed(config.seed)  # minibatch order
        self.counters: dict[str, int] = {"update": 0, "step": 0, "episodes": 0}
        self.main = is_main_process()
        self.runner: EnvRunner | None = None
        self.storage: RolloutStorage | None = None
        self.logger: RunLogger | None = None

    # ---- for subclasses ------------------------------------------------------------------------
    def iteration(self) -> dict[str, float]:
        raise NotImplementedError

    def auxiliary_parameters(self) -> list[torch.nn.Parameter]:
        """Parameters trained beside the policy's (an auxiliary loss's head); on the trainer's device."""
        return []

    def generators(self) -> dict[str, torch.Generator]:
        """Generators saved in checkpoints beside the global RNGs (subclasses add theirs)."""
        return {"minibatch": self.generator}

    def setup(self) -> None:
        """After resume: start the envs and allocate the rollout storage."""
        self.runner = EnvRunner(self.env, self.policy, seed=self.config.seed + self.counters["update"])
        self.storage = RolloutStorage(self.config.num_steps, self.num_envs, self.device,
                                      obs_keys=policy_obs_keys(self.policy, self.runner.obs))

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.config.amp and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def optimizer_step(self, loss: torch.Tensor, only: list[torch.nn.Parameter] | None = None) -> torch.Tensor:
        """Backward, average gradients over ranks, clip, step. Returns the gradient norm (before clipping).
        With `only`, the other parameters keep their values (their gradients are dropped; Adam skips them)."""
        self.check_finite(loss, "loss")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self._all_reduce_gradients()
        if only is not None:
            keep = {id(p) for p in only}
            for p in self.params:
                if id(p) not in keep:
                    p.grad = None
        max_norm = self.config.max_grad_norm if self.config.max_grad_norm > 0 else float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(self.params, max_norm)
        self.check_finite(grad_norm, "gradient norm")
        self.optimizer.step()
        return grad_norm.detach()

    def check_finite(self, value: torch.Tensor, what: str) -> None:
        """Raise FloatingPointError if `value` holds NaN or inf (on any rank: all stop together)."""
        bad = (~torch.isfinite(value.detach())).any().float()
        if distributed():
            dist.all_reduce(bad, op=dist.ReduceOp.MAX)
        if bool(bad):
            last = self.run_dir / "checkpoints"
            raise FloatingPointError(
                f"{what} is {value.detach().float().cpu().tolist()} at update {self.counters['update'] + 1} "
                f"(env step {self.counters['step']}): stopping before the optimizer step; the last good checkpoint "
                f"is the newest in {last} (resume=true continues from it)")

    # ---- the loop ------------------------------------------------------------------------------
    def train(self) -> dict[str, float]:
        """Run (or resume) to `num_updates`; returns the metrics of the last update."""
        cfg = self.config
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed % 2**32)
        resume_step = self._resume() if cfg.resume else None
        self.setup()
        self.logger = RunLogger(self.run_dir, resume_step=resume_step, tensorboard=cfg.tensorboard, enabled=self.main)
        self.policy.train()
        saved_at = self.counters["update"] if resume_step is not None and resume_step >= 0 else -1
        metrics: dict[str, float] = {}
        bar = tqdm(total=self.num_updates, initial=self.counters["update"], desc=self.name,
                   disable=not (cfg.progress and self.main))
        try:
            while self.counters["update"] < self.num_updates:
                start = time.perf_counter()
                lr = self.scheduler.get_last_lr()[0]  # the learning rate of this update
                metrics = self.iteration()
                self.scheduler.step()
                self.counters["update"] += 1
                self.counters["step"] += cfg.num_steps * self.num_envs
                update, last = self.counters["update"], self.counters["update"] == self.num_updates
                metrics["time/fps"] = cfg.num_steps * self.num_envs / (time.perf_counter() - start)
                metrics["train/lr"] = lr
                if update % cfg.log_every == 0 or last:
                    metrics.update(self._episode_metrics())
                    metrics["counters/update"] = update
                    self.logger.log(self.counters["step"], metrics)
                    bar.set_postfix({k.split("/")[-1]: f"{v:.3g}" for k, v in metrics.items()
                                     if k in ("train/loss", "episode/success", "episode/return")})
                if (cfg.checkpoint_every and update % cfg.checkpoint_every == 0) or last:
                    self.save()
                    saved_at = update
                bar.update(1)
            if saved_at != self.counters["update"]:
                self.save()
        finally:
            bar.close()
            self.logger.close()
        return metrics

    def _episode_metrics(self) -> dict[str, float]:
        assert self.runner is not None
        sums = self.runner.pop_episode_sums()
        if distributed():
            dist.all_reduce(sums)
        stats = self.runner.episode_metrics(sums)
        self.counters["episodes"] += stats["episodes"]
        return {f"episode/{k}": float(v) for k, v in stats.items()}

    def save(self) -> Path | None:
        if not self.main:
            return None
        return save_checkpoint(self.run_dir, self.policy, self.optimizer, self.scheduler, self.counters,
                               rng=self.generators(), keep=self.config.keep_checkpoints,
                               extra={"agent": self.name, **self.checkpoint_extra()})

    def checkpoint_extra(self) -> dict[str, Any]:
        """More weights_only-safe entries for the checkpoint (an auxiliary module's weights, say)."""
        return {}

    def restore_extra(self, extra: dict[str, Any], path: Path) -> None:
        """Read back what `checkpoint_extra` saved, on resume."""

    def _resume(self) -> int:
        """Restore the latest checkpoint; returns its step (-1 when the run has none: start over, drop old logs)."""
        ckpt = load_latest(self.run_dir, self.policy, self.optimizer, self.scheduler, rng=self.generators())
        if ckpt is None:
            if self.main:
                tqdm.write(f"{self.name}: resume=true but {self.run_dir} has no checkpoint yet: starting from update 0")
            return -1
        self.counters.update({k: int(v) for k, v in ckpt.counters.items() if k in self.counters})
        self.restore_extra(ckpt.state.get("extra", {}), ckpt.path)
        if self.main:
            tqdm.write(f"{self.name}: resumed from {ckpt.path} at update {self.counters['update']}, "
                       f"step {self.counters['step']}")
        return ckpt.step

    def _all_reduce_gradients(self) -> None:
        if not distributed():
            return
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= dist.get_world_size()
        offset = 0
        for p in self.params:
            n = p.numel()
            p.grad = flat[offset:offset + n].view_as(p).clone()
            offset += n
