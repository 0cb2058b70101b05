"""Vision-language navigation metrics: pure functions, no torch, no envs.

Two settings share the same code, because every metric is written against a distance callable
``dist(a, b) -> float`` (metres, ``inf`` where unreachable):

* **Graph (R2R / R4R)**: points are viewpoint ids of a :class:`~vlarena.datasets.navgraph.NavGraph`
  and ``dist`` is a :class:`GraphDistances` (all-pairs Dijkstra over 3-D edge lengths, the same
  distances the official evaluation gets from ``networkx.all_pairs_dijkstra_path_length``).
  Use :func:`episode_metrics`.
* **Continuous (VLN-CE)**: points are positions ``[D]`` (D = 2 or 3, metres) and distances come
  from callables (a geodesic function for goal distances, Euclidean for path length and nDTW).
  Use :func:`continuous_episode_metrics`.

Inputs of the graph metrics: ``pred`` is the agent's viewpoint sequence *including the start*
(from an R2R prediction file, ``[vp for vp, *_ in item["trajectory"]]``); ``ref`` is the
reference path (R2R ``path``): ``ref[0]`` is the start and ``ref[-1]`` **the goal**.

Conventions (checked against the sources named in brackets):

===========  ==========================================================================================
NE           ``dist(pred[-1], ref[-1])`` [Matterport3DSimulator ``tasks/R2R/eval.py`` ``nav_errors``]
SR           ``NE < success_distance`` (3.0 m), **strict**: NE == 3.0 is a failure [R2R eval.py
             ``i < self.error_margin``; VLN-CE/habitat ``distance_to_target < SUCCESS_DISTANCE``]
OSR          ``min_t dist(pred[t], goal) < success_distance``, **strict**, over every point of ``pred``
             including the start [R2R eval.py ``_get_nearest`` + ``oracle_errors < error_margin``]
TL           sum of ``dist(pred[t], pred[t+1])``; consecutive repeats (turning in place) add 0. On a
             graph consecutive viewpoints must be equal or joined by an edge, else ``ValueError``, as
             the R2R eval raises; so TL is the sum of 3-D edge lengths [R2R eval.py
             ``trajectory_lengths``]. Continuous: sum of Euclidean steps [VLN-CE ``PathLength``].
SPL          ``success * sp / max(TL, sp)``, ``sp = dist(ref[0], ref[-1])`` (graph shortest path start
             to goal, *not* the length of ``ref``) [R2R eval.py ``spls``]. When ``sp == TL == 0`` the
             official code divides 0/0; here SPL = success there.
DTW          classic DTW, steps (i-1, j), (i, j-1), (i-1, j-1), local cost ``dist(pred_i, ref_j)``;
             exact O(|P||R|) dynamic programme [google-research ``r4r/dtw.py``].
nDTW         ``exp(-DTW / (d_th * |R|))``, ``d_th = 3.0``, ``|R| = len(ref)`` as given [r4r ``dtw.py``;
             VLN-CE ``NDTW`` with ``SUCCESS_DISTANCE = 3.0``].
SDTW         ``SR * nDTW`` with the **strict** SR above. r4r ``dtw.py`` uses ``<= threshold`` here; VLN-CE
             ``SDTW`` uses ``<``. We use ``<`` so that SDTW <= SR always holds; the two differ only when
             NE is exactly 3.0.
PC           ``mean_{r in R} exp(-min_{p in P} dist(r, p) / d_th)`` [r4r ``cls.py`` ``coverage``]
LS           ``EPL / (EPL + |EPL - PL(P)|)``, ``EPL = PC * PL(R)``, ``PL`` = sum of ``dist`` between
             consecutive points (= edge lengths on a graph) [r4r ``cls.py``]. When ``EPL == PL(P) == 0``
             (one-point reference, agent never moved) the reference divides 0/0; here LS = 1 there.
CLS          ``PC * LS``, ``d_th = 3.0`` [r4r ``cls.py``].
===========  ==========================================================================================

Repeated points: nDTW, SDTW and CLS are computed on ``pred`` with *consecutive* duplicates removed
(``collapse_repeats=True``), as VLN-CE's NDTW measure does for positions: an R2R trajectory repeats a
viewpoint for every turn in place, and without collapsing each repeat would add its local cost to
DTW again (r4r's ``cls.py`` even fails on them: it looks up the edge ``(v, v)``). For a ``pred`` with no
consecutive repeats the result is exactly r4r's. ``ref`` is used as given. NE, SR, OSR, TL and SPL
do not depend on repeats.

Note on the r4r CLS doctest: it calls ``cls(reference, prediction)`` while ``CLS.__call__`` is
declared ``(prediction, reference)``, so its anchor 0.44197196102702557 is CLS with the roles
swapped; in this module that is ``cls(pred=<doctest reference>, ref=<doctest prediction>)``.
With the roles as named (coverage *of the reference*, as in the paper) the value is 0.6435694620652.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # metrics sit below datasets in the import order (DESIGN.md): the graph is duck-typed
    from vlarena.datasets.navgraph import NavGraph

__all__ = [
    "DEFAULT_SUCCESS_DISTANCE",
    "DEFAULT_DTW_THRESHOLD",
    "GraphDistances",
    "euclidean",
    "collapse_repeats",
    "navigation_error",
    "oracle_navigation_error",
    "trajectory_length",
    "spl",
    "dtw",
    "ndtw",
    "sdtw",
    "path_coverage",
    "length_score",
    "cls",
    "episode_metrics",
    "continuous_episode_metrics",
    "aggregate",
    "EPISODE_KEYS",
    "AGGREGATE_KEYS",
]

DEFAULT_SUCCESS_DISTANCE = 3.0  # metres; R2R `error_margin`, VLN-CE `SUCCESS_DISTANCE`
DEFAULT_DTW_THRESHOLD = 3.0  # metres; r4r `threshold` (d_th) for nDTW and CLS

Distance = Callable[[Any, Any], float]

# Keys of the per-episode dicts (both settings) and of `aggregate`'s result.
EPISODE_KEYS = (
    "nav_error", "oracle_nav_error", "success", "oracle_success", "trajectory_length",
    "shortest_path_length", "spl", "ndtw", "sdtw", "cls", "steps",
)
AGGREGATE_KEYS = (
    "success_rate", "oracle_success_rate", "spl", "nav_error", "oracle_nav_error", "trajectory_length",
    "shortest_path_length", "ndtw", "sdtw", "cls", "steps", "num_episodes",
)


# --------------------------------------------------------------------------------------- distances


class GraphDistances:
    """Shortest-path metres between viewpoints of one NavGraph, looked up by viewpoint id.

    ``GraphDistances(graph)(a, b)`` is the Dijkstra distance over edges weighted by their 3-D
    length (``NavGraph.distances()``), ``inf`` when ``b`` is unreachable from ``a``. Unknown ids
    raise ``ValueError`` naming the id and the scan. Build one per scan and reuse it.
    """

    def __init__(self, graph: NavGraph):
        self.graph = graph
        self.scan = graph.scan
        self.ids = list(graph.ids)
        self.index = dict(graph.index)
        self.matrix = graph.distances()
        self._edges = {(min(a, b), max(a, b)) for a, b in graph.edges}

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, vp: object) -> bool:
        return vp in self.index

    def _accepted(self) -> str:
        shown = ", ".join(repr(v) for v in self.ids[:5])
        more = ", ..." if len(self.ids) > 5 else ""
        return f"accepted: the {len(self.ids)} viewpoint ids of scan {self.scan!r} ({shown}{more})"

    def idx(self, vp: str, what: str = "viewpoint") -> int:
        """Row of `vp` in `matrix`; ValueError naming `what` for an unknown id."""
        try:
            return self.index[vp]
        except (KeyError, TypeError):
            raise ValueError(f"unknown viewpoint id {vp!r} in {what}; {self._accepted()}") from None

    def indices(self, path: Sequence[str], what: str = "path") -> np.ndarray:
        return np.array([self.idx(vp, f"{what}[{k}]") for k, vp in enumerate(path)], dtype=np.int64)

    def dist(self, a: str, b: str) -> float:
        return float(self.matrix[self.idx(a), self.idx(b)])

    __call__ = dist

    def pairwise(self, a: Sequence[str], b: Sequence[str]) -> np.ndarray:
        """[len(a), len(b)] distances (fast path used by DTW and CLS)."""
        return self.matrix[np.ix_(self.indices(a, "pred"), self.indices(b, "ref"))]

    def adjacent(self, a: str, b: str) -> bool:
        """True if `a` and `b` are joined by an edge (a viewpoint is not adjacent to itself)."""
        i, j = self.idx(a), self.idx(b)
        return (min(i, j), max(i, j)) in self._edges

    def check_moves(self, path: Sequence[str], what: str = "pred") -> None:
        """ValueError unless each consecutive pair of `path` is equal or joined by an edge."""
        for k in range(len(path) - 1):
            a, b = path[k], path[k + 1]
            if a != b and not self.adjacent(a, b):
                raise ValueError(
                    f"{what} moves from {a!r} to {b!r} ({what}[{k}] -> {what}[{k + 1}]) but scan {self.scan!r} has "
                    f"no edge between them; accepted: consecutive viewpoints that are equal or neighbours "
                    f"(expand teleports into shortest paths, or pass check_moves=False)")


def euclidean(a: Any, b: Any) -> float:
    """Straight-line metres between two points (any equal-length sequences)."""
    return float(np.linalg.norm(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)))


def _pairwise(a: Sequence, b: Sequence, dist: Distance) -> np.ndarray:
    fast = getattr(dist, "pairwise", None)
    if fast is not None:
        return np.asarray(fast(a, b), dtype=np.float64)
    if dist is euclidean:
        from scipy.spatial.distance import cdist

        return cdist(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
    return np.array([[float(dist(p, r)) for r in b] for p in a], dtype=np.float64).reshape(len(a), len(b))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, str | int | tuple) and isinstance(b, str | int | tuple):
        return a == b
    return bool(np.array_equal(np.asarray(a), np.asarray(b)))


def collapse_repeats(path: Sequence) -> list:
    """`path` without consecutive duplicates (``[a, a, b, a] -> [a, b, a]``); ids or points."""
    out: list = []
    for p in path:
        if not out or not _same(out[-1], p):
            out.append(p)
    return out


def _nonempty(path: Sequence, what: str, accepted: str = "a non-empty sequence of viewpoint ids or points") -> None:
    if path is None or len(path) == 0:
        raise ValueError(f"{what} is empty; accepted: {accepted}")


# ------------------------------------------------------------------------------- single metrics


def navigation_error(pred: Sequence, goal: Any, dist: Distance) -> float:
    """NE: ``dist(pred[-1], goal)`` in metres (goal = ``ref[-1]``)."""
    _nonempty(pred, "pred")
    return float(dist(pred[-1], goal))


def oracle_navigation_error(pred: Sequence, goal: Any, dist: Distance) -> float:
    """Oracle NE: ``min_t dist(pred[t], goal)`` over every point of `pred`, start included.

    Oracle success is ``oracle_navigation_error < success_distance`` (strict), as R2R's eval.py
    (``_get_nearest`` then ``oracle_errors < error_margin``).
    """
    _nonempty(pred, "pred")
    return float(min(float(dist(p, goal)) for p in pred))


def trajectory_length(pred: Sequence, dist: Distance) -> float:
    """TL: ``sum_t dist(pred[t], pred[t+1])``; 0 for a single point; repeats add 0."""
    _nonempty(pred, "pred")
    return float(sum(float(dist(a, b)) for a, b in zip(pred[:-1], pred[1:], strict=True)))


def spl(success: float, shortest_path_length: float, trajectory_length: float) -> float:
    """SPL = ``success * sp / max(TL, sp)``; ``success`` if ``sp == TL == 0``; 0 when not successful."""
    if not success:
        return 0.0
    denom = max(trajectory_length, shortest_path_length)
    if denom == 0.0:
        return float(success)
    return float(success) * shortest_path_length / denom


def dtw(pred: Sequence, ref: Sequence, dist: Distance) -> float:
    """Dynamic time warping cost between `pred` and `ref` with local cost ``dist`` (r4r ``dtw.py``).

    ``D[0,0] = 0``, ``D[i,j] = c(pred_i, ref_j) + min(D[i-1,j], D[i,j-1], D[i-1,j-1])``; returns
    ``D[|P|,|R|]``. Both sequences are used as given (no collapsing here).
    """
    _nonempty(pred, "pred")
    _nonempty(ref, "ref")
    cost = _pairwise(pred, ref, dist)
    n, m = cost.shape
    prev = [math.inf] * (m + 1)
    prev[0] = 0.0
    for i in range(n):
        row = [math.inf] * (m + 1)
        ci = cost[i].tolist()
        for j in range(1, m + 1):
            row[j] = ci[j - 1] + min(prev[j], row[j - 1], prev[j - 1])
        prev = row
    return float(prev[m])


def ndtw(pred: Sequence, ref: Sequence, dist: Distance, threshold: float = DEFAULT_DTW_THRESHOLD,
         collapse: bool = True) -> float:
    """nDTW = ``exp(-DTW(pred, ref) / (threshold * len(ref)))`` in [0, 1]; 1 iff pred == ref up to repeats.

    `pred` has consecutive repeats removed first when `collapse` (see the module docstring).
    """
    _nonempty(ref, "ref")
    p = collapse_repeats(pred) if collapse else pred
    return float(np.exp(-dtw(p, ref, dist) / (threshold * len(ref))))


def sdtw(pred: Sequence, ref: Sequence, dist: Distance, success_distance: float = DEFAULT_SUCCESS_DISTANCE,
         threshold: float = DEFAULT_DTW_THRESHOLD, collapse: bool = True) -> float:
    """SDTW = ``SR * nDTW`` with SR = ``dist(pred[-1], ref[-1]) < success_distance`` (strict; r4r uses <=)."""
    _nonempty(ref, "ref")
    if not navigation_error(pred, ref[-1], dist) < success_distance:
        return 0.0
    return ndtw(pred, ref, dist, threshold, collapse)


def path_coverage(pred: Sequence, ref: Sequence, dist: Distance, threshold: float = DEFAULT_DTW_THRESHOLD) -> float:
    """PC = ``mean_{r in ref} exp(-min_{p in pred} dist(r, p) / threshold)`` (r4r ``cls.py``).

    The local distance is taken as ``dist(p, r)`` (pred first), which is the same number for a
    symmetric distance.
    """
    _nonempty(pred, "pred")
    _nonempty(ref, "ref")
    cost = _pairwise(pred, ref, dist)  # [P, R]
    return float(np.mean(np.exp(-cost.min(axis=0) / threshold)))


def length_score(pred: Sequence, ref: Sequence, dist: Distance, coverage: float) -> float:
    """LS = ``EPL / (EPL + |EPL - PL(pred)|)`` with ``EPL = coverage * PL(ref)``; 1 if both terms are 0."""
    expected = coverage * trajectory_length(ref, dist)
    denom = expected + abs(expected - trajectory_length(pred, dist))
    if denom == 0.0:
        return 1.0
    return float(expected / denom)


def cls(pred: Sequence, ref: Sequence, dist: Distance, threshold: float = DEFAULT_DTW_THRESHOLD,
        collapse: bool = True) -> float:
    """CLS = ``PC * LS`` (r4r ``cls.py``, d_th = `threshold`); consecutive repeats of pred removed first."""
    p = collapse_repeats(pred) if collapse else pred
    pc = path_coverage(p, ref, dist, threshold)
    return pc * length_score(p, ref, dist, pc)


# ------------------------------------------------------------------------------ per episode


def episode_metrics(pred: Sequence[str], ref: Sequence[str], dist: GraphDistances | Distance,
                    success_distance: float = DEFAULT_SUCCESS_DISTANCE, threshold: float = DEFAULT_DTW_THRESHOLD,
                    check_start: bool = True, check_moves: bool = True, collapse: bool = True) -> dict[str, float]:
    """All path metrics of one episode, as the official R2R eval (NE/SR/OSR/TL/SPL) and r4r (nDTW/SDTW/CLS).

    Args:
        pred: the agent's visited viewpoints in order, *including the start* (repeats allowed).
        ref: the reference path; ``ref[0]`` the start, ``ref[-1]`` the goal.
        dist: a :class:`GraphDistances` (ids are then validated) or any ``(a, b) -> metres`` callable.
        success_distance: SR/OSR/SDTW radius, compared with ``<`` (strict). 3.0 m.
        threshold: d_th of nDTW and CLS. 3.0 m.
        check_start: with a GraphDistances, require ``pred[0] == ref[0]`` (R2R eval asserts it).
        check_moves: with a GraphDistances, require consecutive pred viewpoints to be equal or
            neighbours (R2R eval raises otherwise).
        collapse: drop consecutive repeats of pred before nDTW/SDTW/CLS.

    Returns:
        dict with ``EPISODE_KEYS``: nav_error, oracle_nav_error, success (1.0/0.0), oracle_success
        (1.0/0.0), trajectory_length, shortest_path_length (``dist(ref[0], ref[-1])``), spl, ndtw,
        sdtw, cls, steps (``len(pred) - 1``, R2R's ``trajectory_steps``).

    Raises:
        ValueError: empty pred/ref; unknown viewpoint id; pred not starting at ref[0]; a move
            between viewpoints that are not neighbours.
    """
    _nonempty(pred, "pred", "a non-empty list of viewpoint ids starting at the reference start")
    _nonempty(ref, "ref", "a non-empty list of viewpoint ids (start ... goal)")
    if isinstance(dist, GraphDistances):
        dist.indices(ref, "ref")
        dist.indices(pred, "pred")
        if check_start and pred[0] != ref[0]:
            raise ValueError(f"pred starts at {pred[0]!r} but the reference starts at {ref[0]!r}; accepted: a "
                             f"trajectory that includes the start position (R2R eval asserts it)")
        if check_moves:
            dist.check_moves(pred, "pred")
    goal = ref[-1]
    ne = navigation_error(pred, goal, dist)
    one = oracle_navigation_error(pred, goal, dist)
    tl = trajectory_length(pred, dist)
    sp = float(dist(ref[0], goal))
    path = collapse_repeats(pred) if collapse else list(pred)
    return _episode_row(ne, one, tl, sp, float(ne < success_distance), path, list(ref), dist, success_distance,
                        threshold, len(pred) - 1)


def _episode_row(ne: float, one: float, tl: float, sp: float, success: float, path: list, ref: list, local: Distance,
                 success_distance: float, threshold: float, steps: int) -> dict[str, float]:
    """The EPISODE_KEYS dict shared by the graph and continuous metrics; `path` is already collapsed."""
    nd = ndtw(path, ref, local, threshold, collapse=False)
    return {
        "nav_error": ne,
        "oracle_nav_error": one,
        "success": success,
        "oracle_success": float(one < success_distance),
        "trajectory_length": tl,
        "shortest_path_length": sp,
        "spl": spl(success, sp, tl),
        "ndtw": nd,
        "sdtw": success * nd,
        "cls": cls(path, ref, local, threshold, collapse=False),
        "steps": float(steps),
    }


def _points(x: Any, what: str, dim: int | None = None) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] not in (2, 3) or a.shape[0] == 0:
        raise ValueError(f"{what} has shape {a.shape}; accepted: a non-empty [T, 2] or [T, 3] array of positions "
                         f"in metres")
    if dim is not None and a.shape[1] != dim:
        raise ValueError(f"{what} has {a.shape[1]} coordinates per point but positions have {dim}; accepted: "
                         f"the same dimension (2 or 3) everywhere")
    if not np.isfinite(a).all():
        raise ValueError(f"{what} contains non-finite coordinates; accepted: finite positions in metres")
    return a


def continuous_episode_metrics(positions: Any, goal: Any, reference_positions: Any, geodesic_fn: Distance,
                               success_distance: float = DEFAULT_SUCCESS_DISTANCE,
                               threshold: float = DEFAULT_DTW_THRESHOLD,
                               shortest_path_length: float | None = None, stopped: bool = True,
                               path_dist: Distance | None = None) -> dict[str, float]:
    """VLN-CE-style metrics of one continuous episode (same keys as :func:`episode_metrics`).

    Args:
        positions: the agent's positions ``[T, D]`` (D = 2 or 3, metres), *including the start*,
            one per step (repeats from turning are fine).
        goal: the goal position ``[D]``.
        reference_positions: the reference path ``[R, D]`` (VLN-CE's ``gt_locations``, or the
            episode's ``reference_path``); used as given for nDTW/CLS normalisation (``|R|``).
        geodesic_fn: ``(a, b) -> metres`` geodesic distance between two points (``inf`` when
            unreachable); used for NE, oracle NE and the default shortest path length.
        success_distance: radius of SR/OSR/SDTW, compared with ``<`` (strict, VLN-CE's ``Success``,
            ``OracleSuccess`` and ``SDTW`` measures). 3.0 m.
        threshold: d_th of nDTW/CLS (VLN-CE normalises nDTW by its ``SUCCESS_DISTANCE`` = 3.0).
        shortest_path_length: geodesic start-to-goal metres for SPL (the episode's
            ``info["geodesic_distance"]``); default ``geodesic_fn(positions[0], goal)``.
        stopped: whether the agent called STOP; VLN-CE/habitat count success only then.
        path_dist: local distance of nDTW/CLS; default :func:`euclidean`, as VLN-CE's ``NDTW`` and
            ``SDTW`` measures (``_euclidean_distance``). Pass ``geodesic_fn`` for geodesic DTW.

    Conventions: TL is the sum of Euclidean steps (VLN-CE ``PathLength``, habitat ``SPL``); NE and
    oracle NE are geodesic; oracle NE minimises over all given positions, start included; nDTW uses
    an exact DTW over the positions with consecutive duplicates removed (VLN-CE removes them too;
    VLN-CE's default ``FDTW=True`` uses the *approximate* ``fastdtw``, whose cost is >= the exact one);
    CLS (not a VLN-CE measure) is r4r's formula with ``path_dist`` for coverage and polyline lengths.
    """
    pos = _points(positions, "positions")
    dim = pos.shape[1]
    g = np.asarray(goal, dtype=np.float64)
    if g.shape != (dim,):
        raise ValueError(f"goal has shape {g.shape}; accepted: one point of shape ({dim},) like positions")
    ref = _points(reference_positions, "reference_positions", dim)
    local = euclidean if path_dist is None else path_dist
    pts = list(pos)
    ne = float(geodesic_fn(pos[-1], g))
    one = float(min(float(geodesic_fn(p, g)) for p in pts))
    tl = float(np.linalg.norm(np.diff(pos, axis=0), axis=1).sum())
    sp = float(geodesic_fn(pos[0], g)) if shortest_path_length is None else float(shortest_path_length)
    success = float(bool(stopped) and ne < success_distance)
    return _episode_row(ne, one, tl, sp, success, collapse_repeats(pts), list(ref), local, success_distance,
                        threshold, len(pts) - 1)


# ------------------------------------------------------------------------------------ aggregate

_AGG_SOURCE = {"success_rate": "success", "oracle_success_rate": "oracle_success"}


def aggregate(episodes: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """Means over episodes (unweighted, as the R2R eval's ``np.average``) of each per-episode metric.

    Returns ``AGGREGATE_KEYS``: success_rate (mean of ``success``), oracle_success_rate, spl,
    nav_error, oracle_nav_error, trajectory_length, shortest_path_length, ndtw, sdtw, cls, steps,
    num_episodes. A key missing from every episode is left out; missing from only some raises.
    ``nav_error`` is ``inf`` if any episode ended where the goal is unreachable.
    """
    eps = list(episodes)
    if not eps:
        raise ValueError("aggregate got no episodes; accepted: a non-empty list of episode_metrics dicts")
    out: dict[str, float] = {}
    for key in AGGREGATE_KEYS[:-1]:
        src = _AGG_SOURCE.get(key, key)
        have = [src in e for e in eps]
        if not any(have):
            continue
        if not all(have):
            k = have.index(False)
            raise ValueError(f"episode {k} has no {src!r} while others do; accepted: dicts from episode_metrics or "
                             f"continuous_episode_metrics (keys {', '.join(EPISODE_KEYS)})")
        out[key] = float(np.mean([float(e[src]) for e in eps]))
    out["num_episodes"] = len(eps)
    return out
