"""R2R episodes: path sampling on a NavGraph and the R2R JSON file format (numpy + scipy).

File format (version: the Room-to-Room release of Anderson et al. 2018, `R2R_<split>.json`; the
file holds no version field): a JSON list of records

    {"distance": float, "scan": str, "path_id": int, "path": [viewpoint ids],
     "heading": float, "instructions": [str, ...]}

- `distance`: metres along the path (R2R paths are shortest paths in the scan's graph);
- `path`: viewpoint ids (`image_id`s), start first, goal last;
- `heading`: the start heading in radians, R2R's convention (Matterport3DSimulator's
  `newEpisode`: "with z-axis up, heading is defined relative to the y-axis (turning right is
  positive)"): 0 faces +y (north), pi/2 faces +x (east). vlarena's scene frame measures headings
  counter-clockwise from +x, so  theta_scene = pi/2 - heading_r2r  (`heading_to_scene`) and
  heading_r2r = (pi/2 - theta_scene) mod 2 pi  (`heading_from_scene`, in [0, 2 pi) as R2R stores).
- `instructions`: R2R has three per path; readers accept one or more.

Readers ignore unknown keys (`instr_encoding` and the like), so they read the real R2R files.
Given the scans' graphs, `read_r2r` also checks that the scan is known, that every viewpoint is in
its graph and that consecutive viewpoints are joined by an edge. Errors name the file, the record
(index and path_id) and the field. Writers validate first and write atomically.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.sparse.csgraph import dijkstra

from vlarena.datasets.jsonio import Records, is_int, read_json, short, write_json
from vlarena.datasets.navgraph import NavGraph

R2R_FORMAT = "R2R (Anderson et al. 2018)"
R2R_FIELDS = ("distance", "scan", "path_id", "path", "heading", "instructions")


# ---- headings -------------------------------------------------------------------------------
def heading_to_scene(heading_r2r: float) -> float:
    """R2R heading (from +y, clockwise) -> scene heading (from +x, counter-clockwise), in (-pi, pi]."""
    a = math.remainder(math.pi / 2 - heading_r2r, 2 * math.pi)
    return math.pi if a == -math.pi else a


def heading_from_scene(theta: float) -> float:
    """Scene heading (from +x, counter-clockwise) -> R2R heading (from +y, clockwise), in [0, 2 pi)."""
    h = (math.pi / 2 - theta) % (2 * math.pi)
    return 0.0 if h >= 2 * math.pi else h


# ---- episodes -------------------------------------------------------------------------------
@dataclass
class R2REpisode:
    distance: float
    scan: str
    path_id: int
    path: list[str]
    heading: float  # radians, R2R convention (see the module docstring)
    instructions: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"distance": float(self.distance), "scan": self.scan, "path_id": int(self.path_id),
                "path": list(self.path), "heading": float(self.heading), "instructions": list(self.instructions)}

    @property
    def scene_heading(self) -> float:
        return heading_to_scene(self.heading)


@dataclass(frozen=True)
class SampledPath:
    path: list[int]  # viewpoint indices into the graph, start first
    distance: float  # metres along the path (the graph shortest-path distance)
    heading: float  # start heading, R2R convention


def shortest_paths(graph: NavGraph) -> tuple[np.ndarray, np.ndarray]:
    """(distances [N, N] metres, predecessors [N, N]) of Dijkstra over the edges (3-D lengths)."""
    return dijkstra(graph.adjacency(), directed=True, return_predecessors=True)


def _walk(pred: np.ndarray, a: int, b: int) -> list[int]:
    path = [b]
    while path[-1] != a:
        path.append(int(pred[a, path[-1]]))
    return path[::-1]


def sample_paths(graph: NavGraph, rng: np.random.Generator, n: int, min_edges: int = 3, max_edges: int = 6,
                 min_distance: float = 5.0, max_distance: float = 20.0,
                 exclude: set[tuple[int, int]] | frozenset = frozenset()) -> list[SampledPath]:
    """`n` distinct R2R-style paths: shortest paths (Dijkstra over the graph) of `min_edges` to
    `max_edges` edges (R2R: 4-7 viewpoints) and `min_distance` to `max_distance` metres, each with
    a uniform random start heading in [0, 2 pi) (R2R convention).

    Start/goal pairs are drawn uniformly without replacement among all unordered pairs that
    qualify, minus `exclude` (pairs (start, goal) in either order); the direction is random.
    Deterministic given the state of `rng`. Raises ValueError when fewer than `n` pairs qualify.
    """
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if not is_int(n) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")
    if not (1 <= min_edges <= max_edges):
        raise ValueError(f"need 1 <= min_edges <= max_edges, got min_edges={min_edges}, max_edges={max_edges}")
    if not (0 <= min_distance <= max_distance):
        raise ValueError(f"need 0 <= min_distance <= max_distance, got {min_distance}, {max_distance}")
    dist, pred = shortest_paths(graph)
    hops = _hop_counts(dist, pred)
    ok = (np.triu(np.ones_like(dist, dtype=bool), 1) & np.isfinite(dist) & (dist >= min_distance)
          & (dist <= max_distance) & (hops >= min_edges) & (hops <= max_edges))
    pairs = [(int(a), int(b)) for a, b in zip(*np.nonzero(ok), strict=True)
             if (a, b) not in exclude and (b, a) not in exclude]
    if len(pairs) < n:
        raise ValueError(f"graph {graph.scan} has {len(pairs)} start/goal pairs with {min_edges}-{max_edges} edges "
                         f"and {min_distance}-{max_distance} m (after exclusions), fewer than the {n} asked for")
    out = []
    for k in rng.choice(len(pairs), size=n, replace=False):
        a, b = pairs[int(k)]
        if rng.random() < 0.5:
            a, b = b, a
        out.append(SampledPath(_walk(pred, a, b), float(dist[a, b]), float(rng.uniform(0.0, 2 * math.pi))))
    return out


def _hop_counts(dist: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Edges on each Dijkstra shortest path [N, N] (-1 where unreachable). A predecessor is always
    strictly closer to the source (edge lengths are positive), so targets are resolved in order of
    distance."""
    n = pred.shape[0]
    hops = np.full((n, n), -1, dtype=np.int64)
    for a in range(n):
        hops[a, a] = 0
        for b in np.argsort(dist[a], kind="stable"):
            if b != a and pred[a, b] >= 0:
                hops[a, b] = hops[a, pred[a, b]] + 1
    return hops


def make_episode(graph: NavGraph, sampled: SampledPath, path_id: int, instructions: Sequence[str]) -> R2REpisode:
    return R2REpisode(sampled.distance, graph.scan, int(path_id), [graph.ids[k] for k in sampled.path],
                      sampled.heading, list(instructions))


# ---- the file format ------------------------------------------------------------------------
def parse_r2r(data: object, source: str, graphs: Mapping[str, NavGraph] | None = None) -> list[R2REpisode]:
    """Validate R2R records (see the module docstring) and build the episodes."""
    if not isinstance(data, list):
        raise ValueError(f"{source}: an R2R file must hold a JSON list of episode records, got {type(data).__name__}")
    r = Records(source, "path_id")
    episodes = []
    for k, rec in enumerate(data):
        rec = r.record(k, rec)
        path_id = r.integer(k, rec, "path_id")
        scan = r.string(k, rec, "scan")
        distance = r.number(k, rec, "distance")
        if distance < 0:
            r.fail(k, rec, "distance", f"must be >= 0 metres, got {distance}")
        heading = r.number(k, rec, "heading")
        path = r.get(k, rec, "path")
        if not isinstance(path, list) or not path:
            r.fail(k, rec, "path", f"must be a non-empty list of viewpoint ids, got {short(path)}")
        for m, vp in enumerate(path):
            if not isinstance(vp, str) or not vp:
                r.fail(k, rec, f"path[{m}]", f"must be a viewpoint id (non-empty string), got {short(vp)}")
        instructions = r.get(k, rec, "instructions")
        if not isinstance(instructions, list) or not instructions:
            r.fail(k, rec, "instructions", f"must be a non-empty list of strings, got {short(instructions)}")
        for m, text in enumerate(instructions):
            if not isinstance(text, str) or not text.strip():
                r.fail(k, rec, f"instructions[{m}]", f"must be a non-empty string, got {short(text)}")
        if graphs is not None:
            _check_against_graph(r, k, rec, scan, path, graphs)
        episodes.append(R2REpisode(distance, scan, path_id, list(path), heading, list(instructions)))
    return episodes


def _check_against_graph(r: Records, k: int, rec: dict, scan: str, path: list[str],
                         graphs: Mapping[str, NavGraph]) -> None:
    if scan not in graphs:
        known = sorted(graphs)
        r.fail(k, rec, "scan", f"names unknown scan {scan!r} (known: {known[:5]}{'...' if len(known) > 5 else ''})")
    graph = graphs[scan]
    for m, vp in enumerate(path):
        if vp not in graph.index:
            r.fail(k, rec, f"path[{m}]", f"names viewpoint {vp!r}, which is not in scan {scan!r}")
    for m in range(len(path) - 1):
        a, b = graph.index[path[m]], graph.index[path[m + 1]]
        if b not in graph.neighbours[a]:
            r.fail(k, rec, f"path[{m + 1}]", f"steps from {path[m]!r} to {path[m + 1]!r}, which are not adjacent "
                                            f"in the navigation graph of scan {scan!r}")


def read_r2r(path: str | Path, graphs: Mapping[str, NavGraph] | None = None) -> list[R2REpisode]:
    """Episodes of an R2R JSON file (plain or .gz); with `graphs` (scan -> NavGraph), paths are
    checked against the scans' graphs."""
    return parse_r2r(read_json(path, "an R2R episode file (a JSON list)"), str(path), graphs)


def write_r2r(episodes: Sequence[R2REpisode], path: str | Path,
              graphs: Mapping[str, NavGraph] | None = None) -> Path:
    """Validate `episodes` (against `graphs` when given) and write them atomically as R2R JSON."""
    records = [e.to_dict() if isinstance(e, R2REpisode) else e for e in episodes]
    parse_r2r(records, str(path), graphs)
    ids = [rec["path_id"] for rec in records]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        k = ids.index(dup, ids.index(dup) + 1)
        Records(path, "path_id").fail(k, records[k], "path_id", f"repeats path_id {dup} of record {ids.index(dup)}")
    return write_json(path, records)
