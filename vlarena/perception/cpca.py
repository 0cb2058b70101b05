"""CPC|A: contrastive predictive coding conditioned on actions, an auxiliary loss for recurrent RL agents.

Guo et al. 2018 ("Neural predictive belief representations"); the CPC|A-k auxiliary task of Ye et al.
2020 ("Auxiliary tasks speed up learning PointGoal navigation"). From the agent's belief (its recurrent
state) at step t, a small GRU rolls forward over the actions a_t, ..., a_{t+k-1} and predicts the
embedding of the observation at t + j for j = 1..k. The prediction is scored against every valid
observation embedding of the rollout (InfoNCE, the true future frame the positive), so the belief must
carry what the agent will see after acting, and the encoder must make frames tell apart.

Shapes are time-major like a rollout: belief (T, B, H), targets (T, B, D), actions (T, B) (discrete
indices), masks (T, B) with masks[s] = 0 where step s starts a new episode (SB3 / habitat-lab), valid
(T, B) 1 on real steps. A pair (t, t + j) counts only when both steps are valid and no episode starts
in (t, t + j]: predictions never cross an episode boundary.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vlarena.perception._checks import positive_int


class CPCA(nn.Module):
    def __init__(self, belief_dim: int, target_dim: int, num_actions: int, steps: int = 4, hidden: int = 128,
                 action_dim: int = 32, temperature: float = 0.1):
        super().__init__()
        for name, value in (("belief_dim", belief_dim), ("target_dim", target_dim), ("num_actions", num_actions),
                            ("steps", steps), ("hidden", hidden), ("action_dim", action_dim)):
            positive_int(f"CPC|A {name}", value)
        if not temperature > 0:
            raise ValueError(f"CPC|A temperature must be positive, got {temperature}")
        self.steps, self.temperature, self.target_dim = steps, temperature, target_dim
        self.action_embed = nn.Embedding(num_actions, action_dim)
        self.init = nn.Linear(belief_dim, hidden)
        self.gru = nn.GRU(action_dim, hidden)
        self.predict = nn.Linear(hidden, target_dim)

    def forward(self, belief: torch.Tensor, targets: torch.Tensor, actions: torch.Tensor, masks: torch.Tensor,
                valid: torch.Tensor) -> torch.Tensor:
        """The mean over j = 1..k of the InfoNCE of the predictions of frame t + j (a scalar; 0 with no pair)."""
        t, b = actions.shape[:2]
        if belief.shape[:2] != (t, b) or targets.shape[:2] != (t, b) or masks.shape != (t, b) or \
                valid.shape != (t, b):
            raise ValueError(f"CPC|A inputs must share (T, B) = {(t, b)}: belief {tuple(belief.shape)}, targets "
                             f"{tuple(targets.shape)}, masks {tuple(masks.shape)}, valid {tuple(valid.shape)}")
        if targets.shape[-1] != self.target_dim:
            raise ValueError(f"CPC|A targets have dim {targets.shape[-1]}, the module was built for {self.target_dim}")
        if t < 2:
            return belief.sum() * 0.0
        k = min(self.steps, t - 1)
        dev = belief.device
        starts = torch.arange(t - 1, device=dev)
        j = torch.arange(1, k + 1, device=dev)[:, None]  # (k, 1)
        act_idx = (starts[None] + j - 1).clamp(max=t - 1)  # a_{t+j-1}
        tgt_idx = (starts[None] + j).clamp(max=t - 1)  # frame t + j
        n = (t - 1) * b
        h0 = torch.tanh(self.init(belief[:-1].reshape(n, -1)))[None]
        inputs = self.action_embed(actions.long()[act_idx].reshape(k, n))
        pred = self.predict(self.gru(inputs, h0)[0])  # (k, N, D)
        # the pair (s, s + j) is usable when s + j < T, both valid, and masks[s+1..s+j] are all 1
        go_on = torch.stack([_run_of_ones(masks.float(), jj) for jj in range(1, k + 1)])  # (k, T-1, B)
        ok = go_on.bool() & (starts[None, :, None] + j[..., None] < t)
        ok &= valid[:-1].bool()[None] & valid.bool()[tgt_idx]
        flat_targets = F.normalize(targets.reshape(t * b, -1), dim=1)
        bank_valid = valid.reshape(-1).bool()
        pos_index = (tgt_idx[..., None] * b + torch.arange(b, device=dev)).reshape(k, n)  # row in flat_targets
        losses = []
        for jj in range(k):
            rows = ok[jj].reshape(n)
            if not rows.any():
                continue
            p = F.normalize(pred[jj][rows], dim=1)
            logits = p @ flat_targets.t() / self.temperature
            logits = logits.masked_fill(~bank_valid[None], float("-inf"))
            losses.append(F.cross_entropy(logits, pos_index[jj][rows]))
        return torch.stack(losses).mean() if losses else belief.sum() * 0.0


def _run_of_ones(masks: torch.Tensor, j: int) -> torch.Tensor:
    """(T - 1, B): 1 where masks[s + 1 .. s + j] are all 1 (positions past T count as 0)."""
    t = masks.shape[0]
    out = torch.ones_like(masks[:-1])
    for i in range(1, j + 1):
        shifted = torch.cat([masks[i:], masks.new_zeros(i, masks.shape[1])])[: t - 1]
        out = out * shifted
    return out
