"""Navigation graphs of an R2R split as padded tensors (S scenes, N viewpoints, C candidates)."""

from __future__ import annotations

import numpy as np
import torch

from vlarena.datasets.catalog import ROOM_TYPES
from vlarena.datasets.navgraph import NavGraph
from vlarena.datasets.r2r import shortest_paths
from vlarena.envs.r2r_data import R2RSplit

DOOR = len(ROOM_TYPES)  # the room-type index of a viewpoint in a doorway (ROOM_TYPES indices before it)
ROOM_CLASSES = DOOR + 1


def _shortest(graph: NavGraph) -> tuple[np.ndarray, np.ndarray]:
    """Graph distances [N, N] and next hops [N, N] (next_hop[a, g]: first viewpoint after a towards g)."""
    n = len(graph)
    dist, pred = shortest_paths(graph)
    nxt = pred.T.copy()  # pred[g, a] is a's predecessor on the path from g: the next hop from a towards g
    np.fill_diagonal(nxt, np.arange(n))
    return dist, np.where(nxt < 0, np.arange(n)[:, None], nxt)


class GraphTables:
    def __init__(self, data: R2RSplit, max_candidates: int, device: torch.device):
        graphs = data.graphs
        s, n = len(graphs), max(len(g) for g in graphs)
        positions = np.zeros((s, n, 3), dtype=np.float32)
        neighbours = np.full((s, n, max_candidates), -1, dtype=np.int64)
        distances = np.full((s, n, n), np.inf, dtype=np.float32)
        next_hop = np.zeros((s, n, n), dtype=np.int64)
        room_type = np.full((s, n), DOOR, dtype=np.int64)
        for k, g in enumerate(graphs):
            m = len(g)
            positions[k, :m] = g.positions
            room_type[k, :m] = [ROOM_TYPES.index(data.scenes[k].rooms[r].type) if r >= 0 else DOOR for r in g.room_ids]
            for v, nb in enumerate(g.neighbours):
                if len(nb) > max_candidates:
                    raise ValueError(f"viewpoint {g.ids[v]!r} of scan {g.scan!r} has {len(nb)} neighbours, more than "
                                     f"env.max_candidates={max_candidates}; raise env.max_candidates")
                neighbours[k, v, :len(nb)] = nb
            distances[k, :m, :m], next_hop[k, :m, :m] = _shortest(g)
        refs = [data.reference(e) for e in range(len(data.episode_ids))]
        start = [p[0] for _, p in refs]
        goal = [p[-1] for _, p in refs]
        scene = [sc for sc, _ in refs]

        def t(x, dtype):
            return torch.as_tensor(np.asarray(x), dtype=dtype, device=device)

        self.positions = t(positions, torch.float32)
        self.neighbours = t(neighbours, torch.long)
        self.distances = t(distances, torch.float32)
        self.next_hop = t(next_hop, torch.long)
        self.room_type = t(room_type, torch.long)
        self.ep_scene = t(scene, torch.long)
        self.ep_start = t(start, torch.long)
        self.ep_goal = t(goal, torch.long)
        self.ep_heading = t([data.paths[data.path_of[e]].scene_heading for e in range(len(refs))], torch.float32)
        self.ep_shortest = self.distances[self.ep_scene, self.ep_start, self.ep_goal]
