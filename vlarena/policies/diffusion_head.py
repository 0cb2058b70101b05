"""A diffusion action head for Box actions (`policy.action_head: diffusion`), as Diffusion Policy (Chi et al. 2023).

The action is drawn by DDIM (`ddim_steps` steps, eta 0) from the conditional denoiser of
`vlarena.perception.diffusion` given the policy's features; `deterministic=True` starts from zero noise,
so the same features give the same action. Actions are mapped from the Box's bounds to [-1, 1] for the
model and back (the Box must be bounded).

A diffusion model has no tractable likelihood: `evaluate` returns minus the per-step denoising loss in
place of the log-prob (DDPM's loss is a reweighted variational bound on -log p), so behaviour cloning and
DAgger, which minimise -log pi(a* | s), minimise the denoising loss; the entropy is reported as 0 and the
log-prob of `act` is 0. PPO needs true log-probs and refuses this head (`has_likelihood = False`).
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import torch

from vlarena.perception.diffusion import DiffusionActionHead
from vlarena.policies.heads import ActionHead


class DiffusionPolicyHead(ActionHead):
    has_likelihood = False

    def __init__(self, in_dim: int, space: gym.spaces.Box, ddim_steps: int = 10, num_steps: int = 100,
                 hidden: int = 256):
        super().__init__()
        if not isinstance(space, gym.spaces.Box) or not np.issubdtype(space.dtype, np.floating):
            raise ValueError(f"policy.action_head=diffusion needs a float Box action space, got {space}")
        if not (np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))):
            raise ValueError(f"policy.action_head=diffusion needs a bounded Box (it maps the bounds to [-1, 1]), got "
                             f"low={space.low}, high={space.high}")
        if not 1 <= ddim_steps <= num_steps:
            raise ValueError(f"policy.ddim_steps must be in [1, {num_steps}] (the diffusion steps), got {ddim_steps}")
        self.shape = tuple(space.shape)
        self.size = math.prod(self.shape)
        self.ddim_steps = ddim_steps
        self.register_buffer("low", torch.as_tensor(space.low, dtype=torch.float32).reshape(-1))
        self.register_buffer("high", torch.as_tensor(space.high, dtype=torch.float32).reshape(-1))
        self.net = DiffusionActionHead(in_dim, self.size, hidden=hidden, num_steps=num_steps)

    def _normalise(self, actions: torch.Tensor) -> torch.Tensor:
        x = actions.float().reshape(-1, self.size)
        tol = 1e-5 * (self.high - self.low)
        if bool(((x < self.low - tol) | (x > self.high + tol)).any()):
            raise ValueError(f"actions outside the action space's bounds [{self.low.tolist()}, {self.high.tolist()}] "
                             f"cannot be cloned by the diffusion head (it maps the bounds to [-1, 1])")
        return ((x - self.low) / (self.high - self.low) * 2 - 1).clamp(-1.0, 1.0)

    def act(self, features: torch.Tensor, deterministic: bool = False,
            action_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        self._no_mask(action_mask)
        features = features.float()
        noise = features.new_zeros(features.shape[0], self.size) if deterministic else None
        x = self.net.sample_ddim(features, steps=self.ddim_steps, eta=0.0, noise=noise)
        action = self.low + (x + 1) / 2 * (self.high - self.low)
        return action.view(-1, *self.shape), features.new_zeros(features.shape[0])

    def evaluate(self, features: torch.Tensor, actions: torch.Tensor,
                 action_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        self._no_mask(action_mask)
        per_row = self.net.loss(features.float(), self._normalise(actions), reduction="none")
        return -per_row, torch.zeros_like(per_row)

    def entropy(self, features: torch.Tensor, action_mask: torch.Tensor | None = None) -> torch.Tensor:
        return features.new_zeros(features.shape[0])
