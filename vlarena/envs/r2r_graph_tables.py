"""Navigation graphs of an R2R split as padded tensors (S scenes, N viewpoints, C candidates)."""

from __future__ import annotations

import numpy as np
import torch

from vlarena.datasets.catalog import CATEGORY_NAMES, ROOM_TYPES
from vlarena.datasets.navgraph import NavGraph
from vlarena.datasets.navigation import object_arrays, object_distance
from vlarena.datasets.path_facts import LANDMARK_RADIUS
from vlarena.datasets.r2r import shortest_paths
from vlarena.datasets.scene import Scene
from vlarena.envs.r2r_data import R2RSplit

DOOR = len(ROOM_TYPES)  # the room-type index of a viewpoint in a doorway (ROOM_TYPES indices before it)
ROOM_CLASSES = DOOR + 1
OBJECT_CLASSES = len(CATEGORY_NAMES)


def _shortest(graph: NavGraph) -> tuple[np.ndarray, np.ndarray]:
    """Graph distances [N, N] and next hops [N, N] (next_hop[a, g]: first viewpoint after a towards g)."""
    n = len(graph)
    dist, pred = shortest_paths(graph)
    nxt = pred.T.copy()  # pred[g, a] is a's predecessor on the path from g: the next hop from a towards g
    np.fill_diagonal(nxt, np.arange(n))
    return dist, np.where(nxt < 0, np.arange(n)[:, None], nxt)


def objects_near(scene: Scene, graph: NavGraph) -> np.ndarray:
    """[N, OBJECT_CLASSES] 0/1: the object categories within LANDMARK_RADIUS of each viewpoint, in its room (any room
    for a viewpoint in a doorway): the landmarks an instruction may name there."""
    out = np.zeros((len(graph), OBJECT_CLASSES), dtype=np.float32)
    if not scene.objects:
        return out
    d = object_distance(object_arrays(scene.objects), graph.positions[:, 0], graph.positions[:, 1])  # [K, N]
    rooms = np.asarray(graph.room_ids)
    for k, o in enumerate(scene.objects):
        near = (d[k] <= LANDMARK_RADIUS) & ((rooms == o.room) | (rooms < 0))
        out[near, CATEGORY_NAMES.index(o.category)] = 1.0
    return out


class GraphTables:
    def __init__(self, data: R2RSplit, max_candidates: int, device: torch.device, object_features: bool = False):
        graphs = data.graphs
        s, n = len(graphs), max(len(g) for g in graphs)
        positions = np.zeros((s, n, 3), dtype=np.float32)
        neighbours = np.full((s, n, max_candidates), -1, dtype=np.int64)
        distances = np.full((s, n, n), np.inf, dtype=np.float32)
        next_hop = np.zeros((s, n, n), dtype=np.int64)
        room_type = np.full((s, n), DOOR, dtype=np.int64)
        objects = np.zeros((s, n, OBJECT_CLASSES if object_features else 0), dtype=np.float32)
        for k, g in enumerate(graphs):
            m = len(g)
            positions[k, :m] = g.positions
            if object_features:
                objects[k, :m] = objects_near(data.scenes[k], g)
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
        self.objects = t(objects, torch.float32)  # [S, N, OBJECT_CLASSES] (object_features) or [S, N, 0]
        self.ep_scene = t(scene, torch.long)
        self.ep_start = t(start, torch.long)
        self.ep_goal = t(goal, torch.long)
        self.ep_heading = t([data.paths[data.path_of[e]].scene_heading for e in range(len(refs))], torch.float32)
        self.ep_shortest = self.distances[self.ep_scene, self.ep_start, self.ep_goal]
