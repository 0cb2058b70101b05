"""Action and value heads, built from the gym action space.

`ActionHead` is the interface the policy uses: `act(features, deterministic) -> (action, log_prob)`
and `evaluate(features, actions) -> (log_prob, entropy)`, plus `sample`, `mode`, `log_prob`,
`entropy` for direct use. Parametric heads implement `distribution(features, action_mask)` (a
torch.distributions object) and inherit the rest; a generative head (e.g. diffusion for Box
actions) overrides `act` / `evaluate` instead.

Every method takes an optional `action_mask`: bool (B, n), True on the actions allowed in that row
(categorical heads only; others raise). The logits of the others are set to `MASKED_LOGIT` (in float32),
so their probability is exactly 0: never sampled nor the argmax, log-prob about -1e9, no share of the
entropy. Every row must allow at least one action. Candidate actions (candidates.py) use it.

| space | head | action dtype, shape |
|---|---|---|
| Discrete(n, start) | CategoricalHead | int64 (B,) in [start, start + n) |
| MultiDiscrete(nvec, start) (1-D) | MultiCategoricalHead (independent, log-probs summed) | int64 (B, k) |
| Discrete(1 + C) with candidates (candidates.py) | CandidateScoringHead (features (B, 1 + C, D): state + candidate encodings) | int64 (B,) |
| Box(shape) float | DiagGaussianHead (state-independent log std; unbounded: clip to the bounds in the env or wrapper, as SB3) | float32 (B, *shape) |
| bounded Box, with `policy.action_head: diffusion` | DiffusionPolicyHead (diffusion_head.py: DDIM samples, imitation only) | float32 (B, *shape) |
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical, Distribution, Independent, Normal

ACCEPTED_SPACES = "Discrete, MultiDiscrete (1-D nvec) or Box (float)"
MASKED_LOGIT = -1e9  # the logit of a disallowed action (float32: its probability underflows to exactly 0)


def masked_logits(logits: torch.Tensor, action_mask: torch.Tensor | None) -> torch.Tensor:
    """Logits with the disallowed actions (action_mask False) set to MASKED_LOGIT, in float32."""
    if action_mask is None:
        return logits
    if tuple(action_mask.shape) != tuple(logits.shape) or action_mask.dtype != torch.bool:
        raise ValueError(f"action_mask must be bool of shape {tuple(logits.shape)} (True on allowed actions), got "
                         f"{action_mask.dtype} {tuple(action_mask.shape)}")
    return logits.float().masked_fill(~action_mask, MASKED_LOGIT)


def _linear(in_dim: int, out_dim: int, gain: float) -> nn.Linear:
    layer = nn.Linear(in_dim, out_dim)
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


class ActionHead(nn.Module):
    """features (B, F) -> actions. Subclasses implement `distribution` or override `act`/`evaluate`."""

    def distribution(self, features: torch.Tensor, action_mask: torch.Tensor | None = None) -> Distribution:
        raise NotImplementedError

    def _no_mask(self, action_mask: torch.Tensor | None) -> None:
        if action_mask is not None:
            raise ValueError(f"{type(self).__name__} does not take an action_mask: action masks are accepted for "
                             "Discrete action spaces only")

    def to_env(self, raw: torch.Tensor) -> torch.Tensor:
        return raw

    def from_env(self, actions: torch.Tensor) -> torch.Tensor:
        return actions

    def mode_of(self, dist: Distribution) -> torch.Tensor:
        raise NotImplementedError

    def act(self, features: torch.Tensor, deterministic: bool = False,
            action_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        dist = self.distribution(features, action_mask)
        raw = self.mode_of(dist) if deterministic else dist.sample()
        return self.to_env(raw), dist.log_prob(raw)

    def evaluate(self, features: torch.Tensor, actions: torch.Tensor,
                 action_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        dist = self.distribution(features, action_mask)
        return dist.log_prob(self.from_env(actions)), dist.entropy()

    def sample(self, features: torch.Tensor, action_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.act(features, deterministic=False, action_mask=action_mask)[0]

    def mode(self, features: torch.Tensor, action_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.act(features, deterministic=True, action_mask=action_mask)[0]

    def log_prob(self, features: torch.Tensor, actions: torch.Tensor,
                 action_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.evaluate(features, actions, action_mask)[0]

    def entropy(self, features: torch.Tensor, action_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.distribution(features, action_mask).entropy()


class CategoricalHead(ActionHead):
    def __init__(self, in_dim: int, n: int, start: int = 0):
        super().__init__()
        self.n, self.start = n, start
        self.logits = _linear(in_dim, n, 0.01)

    def logits_of(self, features: torch.Tensor) -> torch.Tensor:
        return self.logits(features)

    def distribution(self, features: torch.Tensor, action_mask: torch.Tensor | None = None) -> Distribution:
        return Categorical(logits=masked_logits(self.logits_of(features), action_mask))

    def mode_of(self, dist: Distribution) -> torch.Tensor:
        return dist.logits.argmax(dim=-1)

    def to_env(self, raw: torch.Tensor) -> torch.Tensor:
        return raw + self.start if self.start else raw

    def from_env(self, actions: torch.Tensor) -> torch.Tensor:
        actions = actions.long().reshape(-1)
        return actions - self.start if self.start else actions


class MultiCategorical(Distribution):
    """Independent categoricals over the last axis of the actions; log_prob and entropy are sums."""

    arg_constraints: dict = {}

    def __init__(self, logits: torch.Tensor, nvec: list[int]):
        self.parts = [Categorical(logits=chunk) for chunk in torch.split(logits, nvec, dim=-1)]
        super().__init__(batch_shape=logits.shape[:-1], validate_args=False)

    def sample(self, sample_shape: torch.Size | tuple[int, ...] = ()) -> torch.Tensor:
        return torch.stack([p.sample(torch.Size(sample_shape)) for p in self.parts], dim=-1)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        return torch.stack([p.log_prob(v) for p, v in zip(self.parts, value.unbind(-1), strict=True)], -1).sum(-1)

    def entropy(self) -> torch.Tensor:
        return torch.stack([p.entropy() for p in self.parts], dim=-1).sum(dim=-1)

    @property
    def mode(self) -> torch.Tensor:
        return torch.stack([p.logits.argmax(dim=-1) for p in self.parts], dim=-1)


class MultiCategoricalHead(ActionHead):
    def __init__(self, in_dim: int, nvec: list[int], start: list[int] | None = None):
        super().__init__()
        self.nvec = [int(n) for n in nvec]
        self.register_buffer("start", torch.tensor(start or [0] * len(self.nvec), dtype=torch.long),
                             persistent=False)
        self.logits = _linear(in_dim, sum(self.nvec), 0.01)

    def distribution(self, features: torch.Tensor, action_mask: torch.Tensor | None = None) -> Distribution:
        self._no_mask(action_mask)
        return MultiCategorical(self.logits(features), self.nvec)

    def mode_of(self, dist: Distribution) -> torch.Tensor:
        return dist.mode

    def to_env(self, raw: torch.Tensor) -> torch.Tensor:
        return raw + self.start

    def from_env(self, actions: torch.Tensor) -> torch.Tensor:
        return actions.long().reshape(-1, len(self.nvec)) - self.start


class DiagGaussianHead(ActionHead):
    def __init__(self, in_dim: int, shape: tuple[int, ...], init_log_std: float = 0.0):
        super().__init__()
        self.shape = tuple(shape)
        self.size = size = math.prod(self.shape)
        self.mean = _linear(in_dim, size, 0.01)
        self.log_std = nn.Parameter(torch.full((size,), float(init_log_std)))

    def distribution(self, features: torch.Tensor, action_mask: torch.Tensor | None = None) -> Distribution:
        self._no_mask(action_mask)
        mean = self.mean(features)
        return Independent(Normal(mean, self.log_std.exp().expand_as(mean)), 1)

    def mode_of(self, dist: Distribution) -> torch.Tensor:
        return dist.mean

    def to_env(self, raw: torch.Tensor) -> torch.Tensor:
        return raw.view(-1, *self.shape)

    def from_env(self, actions: torch.Tensor) -> torch.Tensor:
        return actions.float().reshape(-1, self.size)


class ValueHead(nn.Module):
    def __init__(self, in_dim: int):
        super().__init__()
        self.v = _linear(in_dim, 1, 1.0)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.v(features).squeeze(-1)


def build_action_head(space: gym.Space, in_dim: int, init_log_std: float = 0.0) -> ActionHead:
    """The head for a gym action space; any other space is an error naming it."""
    if isinstance(space, gym.spaces.Discrete):
        return CategoricalHead(in_dim, int(space.n), int(space.start))
    if isinstance(space, gym.spaces.MultiDiscrete):
        if np.asarray(space.nvec).ndim != 1:
            raise ValueError(f"unsupported action space {space}: MultiDiscrete needs a 1-D nvec; accepted are "
                             f"{ACCEPTED_SPACES}")
        return MultiCategoricalHead(in_dim, np.asarray(space.nvec).tolist(), np.asarray(space.start).tolist())
    if isinstance(space, gym.spaces.Box) and np.issubdtype(space.dtype, np.floating):
        return DiagGaussianHead(in_dim, space.shape, init_log_std)
    raise ValueError(f"unsupported action space {space}: accepted are {ACCEPTED_SPACES}")
