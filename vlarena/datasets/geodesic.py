"""Geodesic distances on a navigable cell grid (numpy + scipy, no torch).

The grid graph is 8-connected: straight moves cost one cell, diagonal moves sqrt(2) cells, and a
diagonal move is allowed only when both cells it cuts past are navigable (no corner cutting).
Distances are in metres. Unreachable cells get +inf.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

# (di, dj) of the 8 neighbours; index order is part of the expert's tie-breaking.
NEIGHBOURS = ((-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1))


class GridGraph:
    """The 8-connected graph over the True cells of `navigable`, built once per scene."""

    def __init__(self, navigable: np.ndarray, cell_size: float):
        if navigable.ndim != 2:
            raise ValueError(f"navigable must be a 2-D bool grid, got shape {navigable.shape}")
        self.navigable = navigable.astype(bool)
        self.cell_size = float(cell_size)
        rows, cols = navigable.shape
        self.shape = (rows, cols)
        nav = self.navigable
        ii, jj = np.nonzero(nav)
        self.index = np.full((rows, cols), -1, dtype=np.int64)
        self.index[ii, jj] = np.arange(len(ii))
        src, dst, w = [], [], []
        padded = np.pad(nav, 1)
        for di, dj in NEIGHBOURS:
            ok = padded[1 + ii + di, 1 + jj + dj]
            if di and dj:  # diagonal: both orthogonal neighbours must be free
                ok &= padded[1 + ii + di, 1 + jj] & padded[1 + ii, 1 + jj + dj]
            src.append(self.index[ii[ok], jj[ok]])
            dst.append(self.index[ii[ok] + di, jj[ok] + dj])
            w.append(np.full(ok.sum(), np.hypot(di, dj) * self.cell_size))
        n = len(ii)
        self.matrix = csr_matrix((np.concatenate(w), (np.concatenate(src), np.concatenate(dst))), shape=(n, n))

    def distance_field(self, goal: np.ndarray) -> np.ndarray:
        """Metres from every cell to the nearest goal cell (float32 [rows, cols]; inf where unreachable).

        `goal` is a bool grid; goal cells off the navigable grid are ignored.
        """
        if goal.shape != self.shape:
            raise ValueError(f"goal grid must have shape {self.shape}, got {goal.shape}")
        sources = self.index[goal & self.navigable]
        out = np.full(self.shape, np.inf, dtype=np.float32)
        if len(sources) == 0:
            return out
        dist = dijkstra(self.matrix, directed=True, indices=sources, min_only=True)
        out[self.navigable] = dist.astype(np.float32)
        return out

    def path_length(self, a: tuple[int, int], b: tuple[int, int]) -> float:
        """Geodesic metres between two cells (inf if either is off the grid or unreachable)."""
        goal = np.zeros(self.shape, dtype=bool)
        goal[b] = True
        return float(self.distance_field(goal)[a])


def cell_centers(shape: tuple[int, int], cell_size: float) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) in metres of every cell centre, each of shape `shape`."""
    ii, jj = np.indices(shape)
    return (jj + 0.5) * cell_size, (ii + 0.5) * cell_size



def extend_field(field: np.ndarray, navigable: np.ndarray, free: GridGraph) -> np.ndarray:
    """`field` (metres on the navigable cells) extended to the cells of `free` outside `navigable`.

    An agent (radius 0.18 m) can stand where the navigable grid (0.25 m clearance) has no cell, e.g.
    squeezed beside furniture. There the distance is the shortest walk over `free` cells to a
    navigable cell plus that cell's value (a Dijkstra from a virtual source joined to every
    navigable cell by an edge of its value). Navigable cells keep their values.
    """
    if field.shape != free.shape or navigable.shape != free.shape:
        raise ValueError(f"field, navigable and free grids must share one shape, got {field.shape}, "
                         f"{navigable.shape}, {free.shape}")
    seeds = navigable & free.navigable & np.isfinite(field)
    n = free.matrix.shape[0]
    src = free.index[seeds]
    virtual = csr_matrix((field[seeds].astype(np.float64) + 1e-9, (np.full(len(src), n), src)), shape=(n + 1, n + 1))
    m = free.matrix.copy()
    m.resize((n + 1, n + 1))
    dist = dijkstra(m + virtual, directed=True, indices=n)[:n]
    out = field.copy()
    rest = free.navigable & ~navigable
    out[rest] = dist[free.index[rest]].astype(np.float32)
    return out
