"""Candidate actions (e.g. R2R's panoramic action space): the key contract, the encoder and the scoring head.

Contract (generic: no env is special-cased by name). An observation space that has
- `candidates`: a float Box (C, F), the features of C candidate actions, zero padded (R2R graph:
  (sin, cos) of the direction to a neighbouring viewpoint relative to the heading, and its distance);
- `candidate_mask`: a Box (C,) of an int or bool dtype (or MultiBinary(C)), 1 on real candidates;
must come with the action space Discrete(1 + C) (start 0): action 0 is STOP and always valid, action
c >= 1 picks candidate c - 1 and is valid iff `candidate_mask[c - 1]` is nonzero. A policy built on
such a space reads both keys from every observation ((B, C, F) and (B, C); (T, B, ...) or flat in
`evaluate_actions`); a missing key is an error that names it. A space with one key but not the other,
or another action space, is an error at construction.

What the policy does with them (after the memory, so `evaluate_actions` stays one pass over time):
1. encode: e_c = MLP(candidates[c]) (B, C, D), D the memory output size (`candidates.hidden` units);
   with `candidates.attend_vision`, each e_c then queries the visual tokens (e_c += attention), and with
   `candidates.attend_instruction` the state h first queries the instruction tokens (h += attention);
2. attend: the state h (B, D) queries the valid encodings (scaled dot product, padding masked out, no
   valid candidate -> zero context); z = h + W_o context is what the value head (and the STOP logit) see;
3. logits: `candidates.head = "score"` (default): STOP = w . z + b and candidate c = <W_q z, e_c> / sqrt(D)
   (`CandidateScoringHead`; the number of candidates may change with no new weights); "linear": one
   linear layer z -> 1 + C logits (`CategoricalHead`);
4. mask: logits of invalid actions are set to `MASKED_LOGIT` (-1e9, float32; heads.py), so their
   probability is exactly 0: sampling and argmax never pick them, their log-prob is about -1e9, and the
   entropy is that of the valid actions alone (<= log(number of valid actions)).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from vlarena.policies.action_mask import is_mask_space
from vlarena.policies.config import CandidateConfig
from vlarena.policies.heads import MASKED_LOGIT, CategoricalHead, _linear

CANDIDATE_KEYS = ("candidates", "candidate_mask")


@dataclass(frozen=True)
class CandidateSpec:
    num: int  # C, candidate slots
    features: int  # F, features per candidate


def candidate_spec(observation_space: gym.Space, action_space: gym.Space) -> CandidateSpec | None:
    """The candidate contract of a pair of spaces: None when the observation space has neither key."""
    spaces = getattr(observation_space, "spaces", {})
    present = [k for k in CANDIDATE_KEYS if k in spaces]
    if not present:
        return None
    if len(present) == 1:
        missing = next(k for k in CANDIDATE_KEYS if k not in spaces)
        raise ValueError(f"observation_space has {present[0]!r} but not {missing!r}: the candidate-action contract "
                         f"needs both ('candidates' float (C, F), 'candidate_mask' int/bool (C,))")
    cand, mask = spaces["candidates"], spaces["candidate_mask"]
    if not isinstance(cand, gym.spaces.Box) or len(cand.shape) != 2 or not np.issubdtype(cand.dtype, np.floating):
        raise ValueError(f"observation_space['candidates'] must be a float Box of shape (C, F), got {cand}")
    c = cand.shape[0]
    if not is_mask_space(mask, c):
        raise ValueError(f"observation_space['candidate_mask'] must be a Box of shape ({c},) (as 'candidates' "
                         f"{cand.shape}) with an int or bool dtype, or MultiBinary({c}); got {mask}")
    if not (isinstance(action_space, gym.spaces.Discrete) and int(action_space.n) == 1 + c
            and int(action_space.start) == 0):
        raise ValueError(f"observation_space has {c} candidates ('candidates' {cand.shape}), so the action space must "
                         f"be Discrete({1 + c}) with start 0 (0 STOP, c >= 1 candidate c - 1); got {action_space}")
    return CandidateSpec(num=c, features=cand.shape[1])


def candidate_inputs(obs: Mapping[str, Any], spec: CandidateSpec,
                     device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(candidates float (N, C, F), valid bool (N, C)) of a (flattened) observation; errors name the key."""
    for key in CANDIDATE_KEYS:
        if key not in obs:
            raise ValueError(f"observation key {key!r} is missing: the policy was built on an observation space with "
                             f"candidate actions ('candidates' float (B, {spec.num}, {spec.features}) + "
                             f"'candidate_mask' (B, {spec.num}), 1 on real candidates); got keys {sorted(obs)}")
    cand, mask = obs["candidates"], obs["candidate_mask"]
    if not isinstance(cand, torch.Tensor) or cand.dim() != 3 or tuple(cand.shape[1:]) != (spec.num, spec.features) \
            or not cand.is_floating_point():
        raise ValueError(f"observation 'candidates' must be a float tensor (B, {spec.num}, {spec.features}), got "
                         f"{getattr(cand, 'dtype', type(cand).__name__)} {tuple(getattr(cand, 'shape', ()))}")
    if not isinstance(mask, torch.Tensor) or tuple(mask.shape) != tuple(cand.shape[:2]):
        raise ValueError(f"observation 'candidate_mask' must be a tensor {tuple(cand.shape[:2])} (as 'candidates'), "
                         f"got {tuple(getattr(mask, 'shape', ())) or type(mask).__name__}")
    return cand.to(device, non_blocking=True), mask.to(device, non_blocking=True) != 0


class Attention(nn.Module):
    """Single-head scaled dot-product attention of queries (N, Q, dq) over keys/values (N, K, dk); rows whose
    mask is all False get a zero context. With `index` (N,), keys (M, K, dk) and mask (M, K) hold M distinct
    rows (language.Instructions): they are projected once each, then gathered for the N queries."""

    def __init__(self, query_dim: int, key_dim: int, dim: int, out_dim: int):
        super().__init__()
        self.dim = dim
        self.q = nn.Linear(query_dim, dim)
        self.kv = nn.Linear(key_dim, 2 * dim)
        self.out = nn.Linear(dim, out_dim)

    def forward(self, query: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor | None = None,
                index: torch.Tensor | None = None) -> torch.Tensor:
        k, v = self.kv(keys.to(query.dtype)).chunk(2, dim=-1)
        if index is not None:
            k, v, mask = k[index], v[index], None if mask is None else mask[index]
        scores = (self.q(query) @ k.transpose(1, 2)).float() / math.sqrt(self.dim)  # (N, Q, K)
        if mask is None:
            weights = torch.softmax(scores, dim=-1)
        else:
            mask = mask[:, None, :]
            weights = torch.softmax(scores.masked_fill(~mask, MASKED_LOGIT), dim=-1) * mask
        return self.out(weights.to(v.dtype) @ v)


class CandidateEncoder(nn.Module):
    """Per-candidate MLP (+ attention of each candidate over the visual tokens), attention of the state over the
    instruction tokens, then attention of the state over the valid candidates."""

    def __init__(self, spec: CandidateSpec, dim: int, config: CandidateConfig, vision_dim: int = 0,
                 language_dim: int = 0):
        super().__init__()
        self.spec, self.dim = spec, dim
        self.mlp = nn.Sequential(nn.Linear(spec.features, config.hidden), nn.ReLU(), nn.Linear(config.hidden, dim))
        self.instruction = Attention(dim, language_dim, dim, dim) if config.attend_instruction else None
        self.vision = Attention(dim, vision_dim, dim, dim) if config.attend_vision else None
        self.query = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, state: torch.Tensor, candidates: torch.Tensor, valid: torch.Tensor,
                vision: torch.Tensor | None = None, instruction: torch.Tensor | None = None,
                instruction_mask: torch.Tensor | None = None,
                instruction_index: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """state (N, D), candidates (N, C, F), valid bool (N, C), visual tokens (N, V, W), instruction tokens
        (N, L, H) with their mask (N, L), or (M, L, H) of M distinct instructions and their `instruction_index`
        (N,) -> (z (N, D), encodings (N, C, D))."""
        if candidates.shape[0] != state.shape[0]:
            raise ValueError(f"observation 'candidates' holds {candidates.shape[0]} rows but the observation "
                             f"{state.shape[0]} frames")
        if self.instruction is not None:
            state = state + self.instruction(state[:, None], instruction, instruction_mask, instruction_index)[:, 0]
        enc = self.mlp(candidates.to(state.dtype))
        if self.vision is not None:
            enc = enc + self.vision(enc, vision)
        scores = (enc @ self.query(state).unsqueeze(-1)).squeeze(-1) / math.sqrt(self.dim)
        weights = torch.softmax(scores.float().masked_fill(~valid, MASKED_LOGIT), dim=-1) * valid  # none valid: 0
        context = (weights.to(enc.dtype).unsqueeze(-1) * enc).sum(dim=1)
        return state + self.out(context), enc


class CandidateScoringHead(CategoricalHead):
    """Discrete(1 + C) over features (N, 1 + C, D): row 0 the state z, rows 1.. the candidate encodings.
    STOP logit = w . z + b; candidate c logit = <W_q z, e_c> / sqrt(D)."""

    def __init__(self, dim: int, num_candidates: int):
        nn.Module.__init__(self)
        self.n, self.start, self.dim = 1 + num_candidates, 0, dim
        self.stop = _linear(dim, 1, 0.01)
        self.query = _linear(dim, dim, 0.01)

    def logits_of(self, features: torch.Tensor) -> torch.Tensor:
        z, enc = features[:, 0], features[:, 1:]
        scores = (enc @ self.query(z).unsqueeze(-1)).squeeze(-1) / math.sqrt(self.dim)
        return torch.cat([self.stop(z), scores], dim=1)
