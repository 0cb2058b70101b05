"""Fixed agents, the floors and ceiling of an evaluation table: oracle, random, forward-only.

Every agent maps a batch `(obs, info)` of a native vlarena vector env to actions [B] (int64, on the
env's device). Both kinds of action space are understood: the VLN-CE style one (0 STOP, 1 FORWARD,
2 TURN_LEFT, 3 TURN_RIGHT) and the R2R graph one (0 STOP, c >= 1 candidate c - 1, where
`obs["candidate_mask"]` marks the real candidates).

- `oracle`: the env's shortest-path expert, `info["expert_action"]`.
- `random`: STOP with probability `stop_prob`, else a uniformly random move (a valid candidate on
  the graph; FORWARD, TURN_LEFT or TURN_RIGHT in continuous envs). Defaults: 0.2 on the graph
  (R2R paths have 3-6 edges), 1/40 in continuous envs (about the steps of a 10 m path).
- `forward`: never turns: in continuous envs FORWARD `steps` times (default 40, 10 m) then STOP,
  like VLN-CE's hand-crafted baseline; on the graph it moves `steps` times (default 4, a typical
  R2R path) to the candidate most straight ahead, then STOP.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

STOP, FORWARD = 0, 1


@dataclass
class FixedAgentConfig:
    name: str = "oracle"  # oracle | random | forward
    seed: int = 0
    stop_prob: float | None = None  # random: None = 0.2 on the graph, 1/40 in continuous envs
    steps: int | None = None  # forward: None = 4 graph moves, 40 continuous FORWARDs

    def __post_init__(self) -> None:
        if self.name not in FIXED_AGENTS:
            raise ValueError(f"agent.name must be one of {sorted(FIXED_AGENTS)} for a fixed agent, got {self.name!r}")
        if self.stop_prob is not None and not 0 <= self.stop_prob <= 1:
            raise ValueError(f"agent.stop_prob must be in [0, 1], got {self.stop_prob}")
        if self.steps is not None and (isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 0):
            raise ValueError(f"agent.steps must be a non-negative int, got {self.steps!r}")


def _graph(obs: dict[str, Any]) -> bool:
    return "candidate_mask" in obs


class OracleAgent:
    def __init__(self, config: FixedAgentConfig):
        self.config = config

    def act(self, obs: dict[str, Any], info: dict[str, Any]) -> torch.Tensor:
        if "expert_action" not in info:
            raise ValueError("the oracle agent needs info['expert_action']: make the env with expert=True")
        return info["expert_action"]


class RandomAgent:
    def __init__(self, config: FixedAgentConfig):
        self.config = config
        self.gen: torch.Generator | None = None

    def act(self, obs: dict[str, Any], info: dict[str, Any]) -> torch.Tensor:
        device = obs["rgb"].device
        if self.gen is None:
            self.gen = torch.Generator(device=device).manual_seed(self.config.seed)
        b = obs["rgb"].shape[0]
        if _graph(obs):
            p_stop = 0.2 if self.config.stop_prob is None else self.config.stop_prob
            weights = obs["candidate_mask"].float() + 1e-9
            move = torch.multinomial(weights, 1, generator=self.gen).squeeze(1) + 1
        else:
            p_stop = 1 / 40 if self.config.stop_prob is None else self.config.stop_prob
            move = torch.randint(1, 4, (b,), generator=self.gen, device=device)
        stop = torch.rand(b, generator=self.gen, device=device) < p_stop
        return torch.where(stop, torch.full_like(move, STOP), move)


class ForwardAgent:
    def __init__(self, config: FixedAgentConfig):
        self.config = config

    def act(self, obs: dict[str, Any], info: dict[str, Any]) -> torch.Tensor:
        steps = info["elapsed_steps"]
        if _graph(obs):
            budget = 4 if self.config.steps is None else self.config.steps
            cos = torch.where(obs["candidate_mask"].bool(), obs["candidates"][..., 1], torch.full_like(
                obs["candidates"][..., 1], -2.0))
            move = cos.argmax(dim=1) + 1
        else:
            budget = 40 if self.config.steps is None else self.config.steps
            move = torch.full_like(steps, FORWARD)
        return torch.where(steps >= budget, torch.full_like(move, STOP), move)


FIXED_AGENTS = {"oracle": OracleAgent, "random": RandomAgent, "forward": ForwardAgent}


def make_fixed_agent(config: FixedAgentConfig) -> OracleAgent | RandomAgent | ForwardAgent:
    return FIXED_AGENTS[config.name](config)
