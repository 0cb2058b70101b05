"""Agents: learning algorithms (ppo, bc, dagger), fixed agents (fixed.py), evaluation, demos.

Every learning algorithm is a config dataclass and a train function of the same shape:

    from vlarena.agents import get_algorithm
    config_class, train = get_algorithm("ppo")               # "ppo", "bc" or "dagger"
    metrics = train(policy, env, config_class(**agent_section), run_dir)

(modules are imported on demand, so importing this package stays light). A trained policy is
evaluated through `vlarena.agents.policy_agent.PolicyAgent(policy).act` with `evaluate.evaluate`.

Files: rollout.py (storage, GAE, the mask convention), runner.py (env stepping across rollouts),
trainer.py (the shared loop: optimizer, LR schedule, logs, checkpoints, resume), ppo.py, dagger.py,
bc.py, checkpoint.py, logging_utils.py.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

ALGORITHMS = {
    "ppo": ("vlarena.agents.ppo", "PPOConfig", "train_ppo"),
    "bc": ("vlarena.agents.bc", "BCConfig", "train_bc"),
    "dagger": ("vlarena.agents.dagger", "DAggerConfig", "train_dagger"),
}


def get_algorithm(name: str) -> tuple[type, Callable[..., dict[str, Any]]]:
    """(config dataclass, train function) of a learning algorithm."""
    if name not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {name!r}: accepted are {sorted(ALGORITHMS)}")
    module, config, train = ALGORITHMS[name]
    mod = importlib.import_module(module)
    return getattr(mod, config), getattr(mod, train)
