"""Rollout storage for recurrent policies, GAE(lambda) across NEXT_STEP autoreset, minibatches by env.

Time convention: row t of a rollout (T rows, B envs, all on the env's device) is one call of env.step:

    obs[t], masks[t], valid[t]  --policy.act-->  actions[t], log_probs[t], values[t]   (+ expert_actions[t])
                                --env.step-->    rewards[t], terminated[t], truncated[t]

- `masks[t] = 0` where obs[t] is the first observation of an episode: the policy zeroes its recurrent
  state there (vlarena/policies/memory.py), so nothing crosses an episode boundary.
- `valid[t] = 0` where step t is an autoreset step: its action is ignored by the env, its reward is 0,
  and it is masked out of every loss and statistic.

With NEXT_STEP autoreset (the native env's default, `vlarena.envs.nav_env`) an episode that ends at
step t (done[t] = terminated[t] | truncated[t]) returns its *final* frame as obs[t+1]; step t+1
ignores its action and returns the first frame of the next episode. Hence (EnvRunner keeps these):

    valid[t+1] = 1 - done[t]      the step after an end is the reset step
    masks[t+1] = valid[t]         the observation after a reset step starts an episode
    masks = 0 and valid = 1 right after env.reset()

One env whose episode terminates at t = 1 (sF: its final frame, n0: the next episode's first):

    t        0    1    2    3
    obs      s0   s1   sF   n0
    done     0    1    0    0
    valid    1    1    0    1
    masks    0    1    1    0

GAE (Schulman et al. 2016) over the valid steps:

    delta_t = r_t + gamma * V_{t+1} * (1 - terminated_t) - V_t
    A_t     = (delta_t + gamma * lambda * (1 - done_t) * A_{t+1}) * valid_t,   returns_t = A_t + V_t

V_{t+1} is values[t+1], or `last_value` (the value of the observation after the rollout) at t = T-1.
A *truncated* episode therefore bootstraps from the value of its final frame, which the policy
computed at the reset step with the episode's own recurrent state: time limits are not mistaken
for terminal states. A terminated episode does not bootstrap, and no advantage crosses an end.

Minibatches split the envs, never time: each holds whole (T, b) sequences and the recurrent state
at t = 0 of its envs, as `VLAPolicy.evaluate_actions` needs.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch


def compute_gae(rewards: torch.Tensor, values: torch.Tensor, last_value: torch.Tensor, terminated: torch.Tensor,
                truncated: torch.Tensor, valid: torch.Tensor, gamma: float,
                lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(advantages, returns), each (T, B), from (T, B) tensors and `last_value` (B,) (see the module doc)."""
    not_terminal = 1.0 - terminated.float()
    not_done = 1.0 - (terminated | truncated).float()
    valid = valid.float()
    advantages = torch.zeros_like(rewards)
    next_advantage = torch.zeros_like(last_value, dtype=rewards.dtype)
    next_value = last_value.to(rewards.dtype)
    for t in reversed(range(rewards.shape[0])):
        delta = rewards[t] + gamma * next_value * not_terminal[t] - values[t]
        next_advantage = (delta + gamma * lam * not_done[t] * next_advantage) * valid[t]
        advantages[t] = next_advantage
        next_value = values[t]
    return advantages, advantages + values


def masked_mean(x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean of `x` over the entries where `valid` is nonzero (0 when there are none); NaN-safe elsewhere."""
    keep = valid.reshape(x.shape).bool()
    return torch.where(keep, x, torch.zeros_like(x)).sum() / keep.sum().clamp(min=1)


def weighted_mean(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """sum(weight * x) / sum(weight) over the entries of nonzero weight (0 when there are none); NaN-safe elsewhere."""
    w = weight.reshape(x.shape).float()
    return torch.where(w > 0, x * w, torch.zeros_like(x)).sum() / w.sum().clamp(min=1e-12)


def explained_variance(values: torch.Tensor, returns: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """1 - Var[returns - values] / Var[returns] over the valid entries (NaN when Var[returns] is 0)."""
    v, r = values[valid.bool()], returns[valid.bool()]
    var = r.var(correction=0)
    return 1.0 - (r - v).var(correction=0) / var if r.numel() > 1 and var > 0 else torch.tensor(float("nan"))


@dataclass
class Minibatch:
    """Whole sequences of b envs: tensors (T, b, ...), `obs["instruction"]` T tuples of b strings,
    `state0` (b, ...) the recurrent state before t = 0, `labels` the per-step labels recorded (T, b, ...) by
    name. Entries not recorded are None."""

    obs: dict[str, Any]
    actions: torch.Tensor
    masks: torch.Tensor
    valid: torch.Tensor
    rewards: torch.Tensor
    log_probs: torch.Tensor
    values: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor
    expert_actions: torch.Tensor | None
    state0: torch.Tensor
    env_index: torch.Tensor
    labels: dict[str, torch.Tensor] = field(default_factory=dict)

    def flat(self, x: torch.Tensor) -> torch.Tensor:
        """(T, b, ...) -> (T * b, ...), time major (the layout evaluate_actions returns)."""
        return x.reshape(-1, *x.shape[2:])


class RolloutStorage:
    """T steps of B envs. Buffers are allocated on the first insert from the shapes seen.

    `obs_keys`: the observation entries to keep (e.g. ("rgb", "instruction"), or ("vision_tokens",
    "instruction") with a frozen vision encoder); None keeps every tensor entry and the instruction.
    """

    def __init__(self, num_steps: int, num_envs: int, device: torch.device | str = "cpu",
                 obs_keys: Sequence[str] | None = None):
        for name, value in (("num_steps", num_steps), ("num_envs", num_envs)):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.num_steps, self.num_envs, self.device = num_steps, num_envs, torch.device(device)
        self.obs_keys = tuple(obs_keys) if obs_keys is not None else None
        t, b = num_steps, num_envs
        zeros = dict(device=self.device)
        self.masks = torch.zeros(t, b, **zeros)
        self.valid = torch.zeros(t, b, **zeros)
        self.log_probs = torch.zeros(t, b, **zeros)
        self.values = torch.zeros(t, b, **zeros)
        self.rewards = torch.zeros(t, b, **zeros)
        self.terminated = torch.zeros(t, b, dtype=torch.bool, **zeros)
        self.truncated = torch.zeros(t, b, dtype=torch.bool, **zeros)
        self.advantages = torch.zeros(t, b, **zeros)
        self.returns = torch.zeros(t, b, **zeros)
        self.obs: dict[str, torch.Tensor] = {}
        self.instructions: list[tuple[str, ...]] | None = None
        self.actions: torch.Tensor | None = None
        self.expert_actions: torch.Tensor | None = None
        self.labels: dict[str, torch.Tensor] = {}  # per-step labels besides the expert's action (DAgger's goal type)
        self.state0: torch.Tensor | None = None
        self.step = 0

    # ---- filling -----------------------------------------------------------------------------
    def reset(self, state0: torch.Tensor) -> None:
        """Begin a rollout from the recurrent state (B, ...) the policy holds before its first step."""
        self.state0 = state0.detach().clone()
        self.step = 0

    def insert(self, obs: dict[str, Any], masks: torch.Tensor, valid: torch.Tensor, actions: torch.Tensor,
               log_probs: torch.Tensor | None = None, values: torch.Tensor | None = None,
               expert_actions: torch.Tensor | None = None, labels: dict[str, torch.Tensor] | None = None) -> None:
        """Record what the policy saw and did at step t (call before env.step: the env may reuse buffers);
        `labels` (name: (B, ...)) are kept per step as `Minibatch.labels`."""
        if self.state0 is None:
            raise RuntimeError("call RolloutStorage.reset(state0) before inserting steps")
        if self.step >= self.num_steps:
            raise RuntimeError(f"the rollout is full ({self.num_steps} steps): call reset() first")
        t = self.step
        for key in self.obs_keys if self.obs_keys is not None else obs:
            if key not in obs:
                raise ValueError(f"observation key {key!r} is missing: the storage keeps {list(self.obs_keys or ())}, "
                                 f"got keys {sorted(obs)}")
            value = obs[key]
            if key == "instruction":
                if self.instructions is None:
                    self.instructions = [()] * self.num_steps
                self.instructions[t] = tuple(value)
            elif isinstance(value, torch.Tensor):
                self._buffer(self.obs, key, value)[t].copy_(value)
        self.masks[t].copy_(masks)
        self.valid[t].copy_(valid)
        self.actions = self._array(self.actions, actions)
        self.actions[t].copy_(actions)
        if log_probs is not None:
            self.log_probs[t].copy_(log_probs)
        if values is not None:
            self.values[t].copy_(values)
        if expert_actions is not None:
            self.expert_actions = self._array(self.expert_actions, expert_actions)
            self.expert_actions[t].copy_(expert_actions)
        for key, value in (labels or {}).items():
            self._buffer(self.labels, key, value)[t].copy_(value)

    def insert_result(self, rewards: torch.Tensor, terminated: torch.Tensor, truncated: torch.Tensor) -> None:
        """Record what env.step returned for step t and advance to t + 1."""
        t = self.step
        self.rewards[t].copy_(rewards)
        self.terminated[t].copy_(terminated)
        self.truncated[t].copy_(truncated)
        self.step += 1

    def _buffer(self, store: dict[str, torch.Tensor], key: str, value: torch.Tensor) -> torch.Tensor:
        if key not in store:
            if value.shape[:1] != (self.num_envs,):
                raise ValueError(f"{key!r} has shape {tuple(value.shape)}: expected {self.num_envs} rows "
                                 "(one per env) first")
            store[key] = torch.empty((self.num_steps, *value.shape), dtype=value.dtype, device=self.device)
        return store[key]

    def _array(self, buf: torch.Tensor | None, value: torch.Tensor) -> torch.Tensor:
        if buf is None:
            buf = torch.zeros((self.num_steps, *value.shape), dtype=value.dtype, device=self.device)
        return buf

    @property
    def full(self) -> bool:
        return self.step == self.num_steps

    @property
    def dones(self) -> torch.Tensor:
        return self.terminated | self.truncated

    # ---- learning ----------------------------------------------------------------------------
    def compute_returns(self, last_value: torch.Tensor, gamma: float, lam: float) -> None:
        """Fill `advantages` and `returns` (GAE(lambda), see the module doc) once the rollout is full."""
        if not self.full:
            raise RuntimeError(f"the rollout holds {self.step} of {self.num_steps} steps")
        self.advantages, self.returns = compute_gae(self.rewards, self.values, last_value.detach().float(),
                                                    self.terminated, self.truncated, self.valid, gamma, lam)

    def minibatches(self, num_minibatches: int, generator: torch.Generator | None = None) -> Iterator[Minibatch]:
        """The envs in a random order split into `num_minibatches` groups of whole sequences."""
        if not isinstance(num_minibatches, int) or not 1 <= num_minibatches <= self.num_envs:
            raise ValueError(f"num_minibatches must be an int in [1, num_envs={self.num_envs}] (minibatches split "
                             f"the envs), got {num_minibatches!r}")
        order = torch.randperm(self.num_envs, generator=generator)
        for index in order.tensor_split(num_minibatches):
            yield self.batch(index)

    def batch(self, env_index: torch.Tensor | None = None) -> Minibatch:
        """The sequences of the envs in `env_index` (all envs by default)."""
        if self.state0 is None or self.actions is None:
            raise RuntimeError("the rollout is empty")
        idx = torch.arange(self.num_envs) if env_index is None else env_index.cpu()
        i = idx.to(self.device)
        obs: dict[str, Any] = {k: v[:, i] for k, v in self.obs.items()}
        if self.instructions is not None:
            rows = idx.tolist()
            obs["instruction"] = [tuple(step[r] for r in rows) for step in self.instructions]
        return Minibatch(
            obs=obs, actions=self.actions[:, i], masks=self.masks[:, i], valid=self.valid[:, i],
            rewards=self.rewards[:, i], log_probs=self.log_probs[:, i], values=self.values[:, i],
            advantages=self.advantages[:, i], returns=self.returns[:, i],
            expert_actions=None if self.expert_actions is None else self.expert_actions[:, i],
            state0=self.state0[i], env_index=idx, labels={k: v[:, i] for k, v in self.labels.items()})
