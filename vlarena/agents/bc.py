"""Behaviour cloning with teacher forcing from the env's shortest-path expert, demonstrations made on the fly.

    metrics = train_bc(policy, env, BCConfig(total_steps=500_000, lr=1e-3), run_dir="runs/bc")

The env executes the expert's action (`info["expert_action"]`) at every step, so the batched env
generates expert demonstrations as training goes, never the same episode prefix twice; the loss is
the cross-entropy of the policy on the expert's actions over whole sequences, with masks resetting
the GRU between episodes. This is DAgger with beta = 1 and runs DAgger's code (dagger.py): the
student's argmax is still computed at every step (the GRU state needs the forward pass anyway), which
gives train/accuracy, the teacher-forced expert-action accuracy, before each update.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vlarena.agents.dagger import DAggerConfig, DAggerTrainer, ImitationConfig


@dataclass
class BCConfig(ImitationConfig):
    """Behaviour cloning needs only the shared settings (epochs, num_minibatches, ent_coef and AgentConfig's)."""

    def as_dagger(self) -> DAggerConfig:
        """The DAgger config that is this BC: the expert always acts, the student's argmax is scored."""
        return DAggerConfig(**dataclasses.asdict(self), beta0=1.0, beta_schedule="constant", student_action="argmax")


class BCTrainer(DAggerTrainer):
    name = "bc"

    def __init__(self, policy: torch.nn.Module, env: Any, config: BCConfig, run_dir: str | Path):
        if not isinstance(config, BCConfig):
            raise ValueError(f"BCTrainer takes a BCConfig, got {type(config).__name__}")
        super().__init__(policy, env, config.as_dagger(), run_dir)


def train_bc(policy: torch.nn.Module, env: Any, config: BCConfig, run_dir: str | Path) -> dict[str, float]:
    """Behaviour-clone the env's expert into `policy`; logs and checkpoints go to `run_dir`.
    Returns the metrics of the last update."""
    return BCTrainer(policy, env, config, run_dir).train()
