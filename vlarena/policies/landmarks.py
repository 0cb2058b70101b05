"""Landmark matching for candidate actions: does a candidate lead towards an object the instruction names?

R2R-style instructions name landmarks ("walk past the red sofa", "stop by the fridge"), and where the turn word
fits several candidates, the objects around each candidate's viewpoint tell them apart. A policy that only
attends from candidates to visual tokens and from the state to words did not learn to bind the two in our runs
(docs/r2r_experiments.md). This module makes the binding explicit, over K object categories:

- near (N, C, K): logits that category k lies near candidate c, from the visual tokens the candidate's
  geometry attends to;
- named (N, K): logits that the instruction names category k, the maximum over its tokens of a per-token
  classifier (on the tokens detached: its loss leaves the language encoder and its trainable context alone);
- match (N, C, 1) = max_k sigmoid(near) * sigmoid(named): the probability-like score that a named object lies near
  c. The policy reads it as one more candidate feature, detached: only the auxiliary losses train the two heads.

The heads learn from labels the environment gives while training (R2R-v0's `landmark_labels`:
info["candidate_landmarks"] (B, C, K) and info["instruction_landmarks"] (B, K)), with the imitation
learners' `agent.landmark_coef` (agents/dagger.py); at evaluation the policy needs neither.
"""

from __future__ import annotations

import torch
from torch import nn

from vlarena.policies.candidates import Attention
from vlarena.policies.heads import MASKED_LOGIT


class LandmarkMatcher(nn.Module):
    def __init__(self, num_classes: int, candidate_features: int, vision_dim: int, language_dim: int, dim: int = 128):
        super().__init__()
        self.num_classes = num_classes
        self.query = nn.Sequential(nn.Linear(candidate_features, dim), nn.ReLU(), nn.Linear(dim, dim))
        self.attend = Attention(dim, vision_dim, dim, dim)
        self.near = nn.Sequential(nn.Linear(2 * dim, dim), nn.ReLU(), nn.Linear(dim, num_classes))
        self.named = nn.Linear(language_dim, num_classes)

    def forward(self, candidates: torch.Tensor, vision: torch.Tensor, instruction: torch.Tensor,
                instruction_mask: torch.Tensor, instruction_index: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """candidates (N, C, F), visual tokens (N, V, W), instruction tokens (M, L, H) with their mask (M, L) and
        `instruction_index` (N,) (or M = N and no index) -> (match (N, C, 1), near logits (N, C, K),
        named logits (N, K))."""
        q = self.query(candidates.to(vision.dtype))
        near = self.near(torch.cat([q, self.attend(q, vision)], dim=-1))
        named = self.named(instruction.detach()).float().masked_fill(~instruction_mask[..., None], MASKED_LOGIT).amax(dim=1)
        if instruction_index is not None:
            named = named[instruction_index]
        match = (torch.sigmoid(near.float()) * torch.sigmoid(named)[:, None, :]).amax(dim=-1, keepdim=True)
        return match.detach(), near, named
