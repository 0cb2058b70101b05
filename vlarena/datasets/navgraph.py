"""Navigation graphs of viewpoints (R2R style): the data model shared by graph generation, the
connectivity file format, path sampling, instructions, the graph env and the metrics.

Viewpoint positions are (x, y, z) metres in the scene frame with z the camera height above the
floor (Matterport's `pose` translation); edges are undirected, unobstructed straight lines with
a weight equal to the 3-D Euclidean distance, as in the official R2R evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class NavGraph:
    scan: str  # the scene id (R2R's `scan`)
    ids: list[str]  # viewpoint ids (Matterport `image_id`), unique within the scan
    positions: np.ndarray  # float64 [N, 3]
    edges: list[tuple[int, int]]  # undirected, i < j, sorted
    room_ids: list[int] = field(default_factory=list)  # the scene room of each viewpoint (-1 door / none)

    def __post_init__(self) -> None:
        self.positions = np.asarray(self.positions, dtype=np.float64).reshape(-1, 3)
        self.index = {vp: k for k, vp in enumerate(self.ids)}
        self.neighbours: list[list[int]] = [[] for _ in self.ids]
        for a, b in self.edges:
            self.neighbours[a].append(b)
            self.neighbours[b].append(a)
        for nb in self.neighbours:
            nb.sort()

    def __len__(self) -> int:
        return len(self.ids)

    def edge_length(self, a: int, b: int) -> float:
        return float(np.linalg.norm(self.positions[a] - self.positions[b]))

    def adjacency(self):
        """Sparse [N, N] matrix of edge lengths (3-D metres), both directions."""
        from scipy.sparse import csr_matrix

        n = len(self.ids)
        a, b = np.array(self.edges, dtype=np.int64).reshape(-1, 2).T
        w = np.linalg.norm(self.positions[a] - self.positions[b], axis=1)
        return csr_matrix((np.concatenate([w, w]), (np.concatenate([a, b]), np.concatenate([b, a]))), shape=(n, n))

    def distances(self) -> np.ndarray:
        """All-pairs shortest path metres [N, N] (Dijkstra over edges weighted by 3-D distance)."""
        from scipy.sparse.csgraph import dijkstra

        return dijkstra(self.adjacency(), directed=True)
