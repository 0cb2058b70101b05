"""Where each object type is in the view, and what each interaction would act on: ALFRED-v0's `type_view`.

    view = type_view(types, targets, num_types, window)   # (B, T, 9 + A) float32

`types` (B, H, W) int64 is each pixel's object type (-1: floor, wall, nothing), from ground-truth segmentation;
`targets` (B, A) int64 the type of the object each of the A interactions would act on now (-1: none, household
.appearance's target rule). Per type t, the features are:

- 0..8: 1 where a pixel of type t lies in each cell of a 3 x 3 grid of the view, row-major from the top left,
  the middle row and column being the interaction window (`window` pixels either side of the view centre):
  above / in / below the window tells which way a LookUp or LookDown brings t into reach, left / in / right
  which way to turn;
- 9..9+A: 1 where interaction a would act on an object of type t.

A policy reads it through its choice of object type (policies.map_encoder: the planner's goal softmax), so it
can tell that the object it heads for is under the crosshair, or above it. Ground-truth perception, as the
`semantic_map` and `segmentation` observations are (FILM's ablation with ground-truth segmentation).
"""

from __future__ import annotations

import torch

GRID = 3  # cells per side of the view's grid


def type_view(types: torch.Tensor, targets: torch.Tensor, num_types: int, window: int) -> torch.Tensor:
    b, h, w = types.shape
    if targets.dim() != 2 or targets.shape[0] != b:
        raise ValueError(f"targets must be (B, A) = ({b}, A), got {tuple(targets.shape)}")
    dev = types.device
    rows = _band(torch.arange(h, device=dev), h // 2, window)   # (H,) 0 above, 1 in the window, 2 below
    cols = _band(torch.arange(w, device=dev), w // 2, window)
    cell = (rows[:, None] * GRID + cols[None, :]).expand(b, h, w)  # (B, H, W) in 0..8
    real = (types >= 0) & (types < num_types)
    flat = torch.where(real, types * GRID * GRID + cell, num_types * GRID * GRID)  # one slot past the end: nothing
    seen = torch.zeros(b, num_types * GRID * GRID + 1, device=dev)
    seen.scatter_(1, flat.flatten(1), 1.0)
    grid = seen[:, :-1].view(b, num_types, GRID * GRID)
    hit = targets[:, None, :] == torch.arange(num_types, device=dev)[None, :, None]  # (B, T, A)
    return torch.cat([grid, hit.float()], dim=-1)


def _band(x: torch.Tensor, centre: int, window: int) -> torch.Tensor:
    return (x >= centre - window).long() + (x > centre + window).long()
