"""Recurrent memory over time, with episode-boundary masks.

State: a tensor (B, layers, hidden), batch first so that rows can be indexed, zero at the start.

Masks (SB3 / habitat-lab convention): `masks[b] = 0` where the observation of env b is the first
step of a new episode, 1 otherwise. The state of that row is zeroed *before* the step is
processed, so no information crosses an episode boundary; other rows are untouched.

`sequence(x (T, B, F), state, masks (T, B))` gives exactly what `step` gives when called T times
(tests/test_policies_memory.py): it splits time where any mask is 0 and runs the GRU over each chunk.
"""

from __future__ import annotations

import torch
from torch import nn

from vlarena.policies.config import MemoryConfig


def _check_masks(masks: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    if tuple(masks.shape) != shape:
        raise ValueError(f"masks must have shape {shape} (0 at the first step of an episode, else 1), "
                         f"got {tuple(masks.shape)}")
    return masks


class GRUMemory(nn.Module):
    def __init__(self, config: MemoryConfig, in_dim: int):
        super().__init__()
        self.config = config
        self.gru = nn.GRU(in_dim, config.hidden, num_layers=config.layers)
        for name, p in self.gru.named_parameters():
            if "weight" in name:
                nn.init.orthogonal_(p)
            else:
                nn.init.zeros_(p)

    @property
    def out_dim(self) -> int:
        return self.config.hidden

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> torch.Tensor:
        return torch.zeros(batch_size, self.config.layers, self.config.hidden, device=device)

    def _check_state(self, state: torch.Tensor, batch: int) -> None:
        shape = (batch, self.config.layers, self.config.hidden)
        if not isinstance(state, torch.Tensor) or tuple(state.shape) != shape:
            got = tuple(state.shape) if isinstance(state, torch.Tensor) else type(state).__name__
            raise ValueError(f"recurrent state must be a tensor of shape {shape} (initial_state(batch_size)), "
                             f"got {got}")

    def step(self, x: torch.Tensor, state: torch.Tensor,
             masks: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """One step: x (B, F), state (B, layers, hidden), masks (B,) or None -> (out (B, hidden), state)."""
        self._check_state(state, x.shape[0])
        if masks is not None:
            state = state * _check_masks(masks, (x.shape[0],)).to(state.dtype).view(-1, 1, 1)
        out, h = self.gru(x.unsqueeze(0), state.transpose(0, 1).contiguous())
        return out[0], h.transpose(0, 1)

    def sequence(self, x: torch.Tensor, state: torch.Tensor,
                 masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """T steps: x (T, B, F), state at t=0 (B, layers, hidden), masks (T, B) -> (out (T, B, hidden), state)."""
        t_len, b = x.shape[:2]
        self._check_state(state, b)
        masks = _check_masks(masks, (t_len, b)).to(state.dtype)
        starts = [0] + [t for t in (masks[1:] == 0).any(dim=1).nonzero().squeeze(1).add(1).tolist()] + [t_len]
        h = state.transpose(0, 1).contiguous()
        outs = []
        for s, e in zip(starts[:-1], starts[1:], strict=True):
            h = h * masks[s].view(1, -1, 1)
            out, h = self.gru(x[s:e], h)
            outs.append(out)
        return torch.cat(outs, dim=0), h.transpose(0, 1)


class NoMemory(nn.Module):
    """Feedforward: features pass through; the state is an empty (B, 0, 0) tensor."""

    def __init__(self, config: MemoryConfig, in_dim: int):
        super().__init__()
        self.in_dim = in_dim

    @property
    def out_dim(self) -> int:
        return self.in_dim

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> torch.Tensor:
        return torch.zeros(batch_size, 0, 0, device=device)

    def step(self, x: torch.Tensor, state: torch.Tensor,
             masks: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return x, state

    def sequence(self, x: torch.Tensor, state: torch.Tensor,
                 masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _check_masks(masks, tuple(x.shape[:2]))
        return x, state


def build_memory(config: MemoryConfig, in_dim: int) -> nn.Module:
    return GRUMemory(config, in_dim) if config.kind == "gru" else NoMemory(config, in_dim)
