"""VLN metrics: hand-computed cases, the r4r doctest anchors, continuous metrics and properties."""

from __future__ import annotations

import math
import subprocess
import sys
from functools import cache

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vlarena.datasets.navgraph import NavGraph
from vlarena.metrics import (
    AGGREGATE_KEYS,
    EPISODE_KEYS,
    GraphDistances,
    aggregate,
    cls,
    collapse_repeats,
    continuous_episode_metrics,
    dtw,
    episode_metrics,
    euclidean,
    length_score,
    ndtw,
    path_coverage,
    sdtw,
    spl,
    trajectory_length,
)

# ------------------------------------------------------------------------------------ graphs


def line_graph(n: int = 7) -> GraphDistances:
    """p0 - p1 - ... - p{n-1} on the x axis, 1 m apart (camera height 1.5 m)."""
    return GraphDistances(NavGraph("line", [f"p{k}" for k in range(n)], [(k, 0.0, 1.5) for k in range(n)],
                                   [(k, k + 1) for k in range(n - 1)]))


def grid_graph(rows: int = 4, cols: int = 3) -> GraphDistances:
    """networkx.grid_graph([3, 4]) as a NavGraph: nodes (i, j), 0 <= i < 4, 0 <= j < 3, unit edges."""
    nodes = [(i, j) for i in range(rows) for j in range(cols)]
    index = {v: k for k, v in enumerate(nodes)}
    edges = sorted({tuple(sorted((index[(i, j)], index[(i + di, j + dj)])))
                    for i, j in nodes for di, dj in ((1, 0), (0, 1)) if (i + di, j + dj) in index})
    return GraphDistances(NavGraph("grid", [vid(v) for v in nodes], [(i, j, 0.0) for i, j in nodes], edges))


def vid(node: tuple[int, int]) -> str:
    return f"{node[0]}_{node[1]}"


def vids(nodes) -> list[str]:
    return [vid(v) for v in nodes]


LINE = line_graph()
GRID = grid_graph()


def p(*ks: int) -> list[str]:
    return [f"p{k}" for k in ks]


# -------------------------------------------------------------------------- GraphDistances


def test_graph_distances_lookup_and_errors():
    assert LINE("p0", "p6") == 6.0
    assert LINE.dist("p4", "p1") == 3.0
    assert LINE("p2", "p2") == 0.0
    assert LINE.adjacent("p1", "p2") and not LINE.adjacent("p1", "p3") and not LINE.adjacent("p1", "p1")
    assert "p3" in LINE and "zz" not in LINE and len(LINE) == 7
    with pytest.raises(ValueError, match=r"unknown viewpoint id 'zz'.*accepted: the 7 viewpoint ids of scan 'line'"):
        LINE("p0", "zz")
    np.testing.assert_array_equal(LINE.pairwise(p(0, 1), p(3, 4, 5)), [[3, 4, 5], [2, 3, 4]])


def test_graph_distances_use_3d_edge_lengths_and_inf_when_unreachable():
    # a -> b climbs 4 m over 3 m (a 3-4-5 stair), b -> c 4 m; d is isolated.
    g = GraphDistances(NavGraph("stairs", list("abcd"), [(0, 0, 1.5), (3, 0, 5.5), (3, 4, 5.5), (9, 9, 1.5)],
                                [(0, 1), (1, 2)]))
    assert g("a", "b") == pytest.approx(5.0) and g("a", "c") == pytest.approx(9.0)
    assert g("a", "d") == math.inf
    m = episode_metrics(list("ab"), list("abc"), g)
    assert m["trajectory_length"] == pytest.approx(5.0) and m["nav_error"] == pytest.approx(4.0)
    assert m["shortest_path_length"] == pytest.approx(9.0) and m["success"] == 0.0 and m["spl"] == 0.0
    # the goal unreachable from everywhere the agent went: NE inf, failure, nDTW 0
    m = episode_metrics(list("ab"), list("ad"), g)
    assert m["nav_error"] == math.inf and m["success"] == 0.0 and m["spl"] == 0.0 and m["ndtw"] == 0.0


# ------------------------------------------------------------------- R2R metrics, hand-computed

# ref p0..p5: start p0, goal p5, shortest path 5 m.
REF = p(0, 1, 2, 3, 4, 5)


@pytest.mark.parametrize("pred, ne, one, tl, success, osr, spl_", [
    # stops exactly 3.0 m short: SR is strict, so failure; OSR too (its nearest point is 3.0 m away)
    (p(0, 1, 2), 3.0, 3.0, 2.0, 0.0, 0.0, 0.0),
    # stops 2 m short: success; TL 3 < sp 5 so SPL = 5 / max(3, 5) = 1
    (p(0, 1, 2, 3), 2.0, 2.0, 3.0, 1.0, 1.0, 1.0),
    # overshoots to p6 and comes back: TL 7, SPL 5/7
    (p(0, 1, 2, 3, 4, 5, 6, 5), 0.0, 0.0, 7.0, 1.0, 1.0, 5 / 7),
    # reaches the goal, walks back to p1: failure, but oracle success
    (p(0, 1, 2, 3, 4, 5, 4, 3, 2, 1), 4.0, 0.0, 9.0, 0.0, 1.0, 0.0),
    # turning in place repeats viewpoints: they add nothing
    (p(0, 0, 1, 1, 1, 2, 3, 3), 2.0, 2.0, 3.0, 1.0, 1.0, 1.0),
    # never leaves the start
    (p(0), 5.0, 5.0, 0.0, 0.0, 0.0, 0.0),
])
def test_r2r_metrics_on_a_line(pred, ne, one, tl, success, osr, spl_):
    m = episode_metrics(pred, REF, LINE)
    assert set(m) == set(EPISODE_KEYS)
    assert m["nav_error"] == ne
    assert m["oracle_nav_error"] == one
    assert m["trajectory_length"] == tl
    assert m["success"] == success
    assert m["oracle_success"] == osr
    assert m["shortest_path_length"] == 5.0
    assert m["spl"] == pytest.approx(spl_)
    assert m["steps"] == len(pred) - 1
    assert m["sdtw"] == pytest.approx(success * m["ndtw"])


def test_success_boundary_is_strict_and_radius_is_a_parameter():
    m = episode_metrics(p(0, 1, 2), REF, LINE)
    assert m["nav_error"] == 3.0 and m["success"] == 0.0 and m["oracle_success"] == 0.0
    assert m["ndtw"] > 0 and m["sdtw"] == 0.0  # r4r's dtw.py would use <= here; we keep SR's strict <
    m = episode_metrics(p(0, 1, 2), REF, LINE, success_distance=3.0 + 1e-9)
    assert m["success"] == 1.0 and m["oracle_success"] == 1.0 and m["spl"] == 1.0


def test_oracle_success_on_a_grid_detour():
    # grid 4x3; the agent passes (3, 1) (1 m from the goal (3, 2)) then stops at (0, 2): 3 m away
    ref = vids([(0, 0), (1, 0), (2, 0), (3, 0), (3, 1), (3, 2)])
    pred = vids([(0, 0), (1, 0), (2, 0), (3, 0), (3, 1), (2, 1), (1, 1), (0, 1), (0, 2)])
    m = episode_metrics(pred, ref, GRID)
    assert m["nav_error"] == 3.0 and m["success"] == 0.0
    assert m["oracle_nav_error"] == 1.0 and m["oracle_success"] == 1.0
    assert m["trajectory_length"] == 8.0 and m["shortest_path_length"] == 5.0 and m["spl"] == 0.0


def test_spl_formula_and_degenerate_cases():
    assert spl(1.0, 5.0, 10.0) == 0.5
    assert spl(1.0, 5.0, 2.0) == 1.0
    assert spl(0.0, 5.0, 5.0) == 0.0
    assert spl(1.0, 0.0, 0.0) == 1.0  # start == goal and no move: 0/0 in the official code
    assert spl(0.0, math.inf, 3.0) == 0.0


def test_teleports_are_rejected_unless_asked():
    with pytest.raises(ValueError, match=r"moves from 'p1' to 'p3' \(pred\[1\] -> pred\[2\]\).*no edge"):
        episode_metrics(p(0, 1, 3, 4, 5), REF, LINE)
    m = episode_metrics(p(0, 1, 3, 4, 5), REF, LINE, check_moves=False)
    assert m["trajectory_length"] == 5.0 and m["success"] == 1.0


@pytest.mark.parametrize("pred, ref, match", [
    ([], REF, r"pred is empty; accepted: a non-empty list of viewpoint ids"),
    (p(0), [], r"ref is empty; accepted"),
    (["p0", "p1", "nope"], REF, r"unknown viewpoint id 'nope' in pred\[2\]; accepted: the 7 viewpoint ids of scan"),
    (p(0, 1), ["p0", "x9"], r"unknown viewpoint id 'x9' in ref\[1\]"),
    (p(1, 2), REF, r"pred starts at 'p1' but the reference starts at 'p0'"),
])
def test_episode_errors(pred, ref, match):
    with pytest.raises(ValueError, match=match):
        episode_metrics(pred, ref, LINE)


def test_start_check_can_be_disabled():
    assert episode_metrics(p(1, 2), REF, LINE, check_start=False)["nav_error"] == 3.0


def test_single_metrics_reject_empty_paths():
    for fn in (trajectory_length,):
        with pytest.raises(ValueError, match="pred is empty"):
            fn([], LINE)
    for fn in (dtw, ndtw, cls, sdtw, path_coverage):
        with pytest.raises(ValueError, match="is empty"):
            fn([], REF, LINE)
        with pytest.raises(ValueError, match="ref is empty"):
            fn(p(0), [], LINE)


# --------------------------------------------------------------------------- r4r doctest anchors


def test_r4r_dtw_doctest_anchors():
    """google-research r4r/dtw.py doctest on nx.grid_graph([3, 4])."""
    prediction = vids([(0, 0), (1, 0), (2, 0), (3, 0)])
    reference = vids([(0, 0), (1, 0), (2, 1), (3, 2)])
    assert np.isclose(dtw(prediction, reference, GRID), 3.0)
    assert np.isclose(ndtw(prediction, reference, GRID), 0.77880078307140488)
    assert np.isclose(sdtw(prediction, reference, GRID), 0.77880078307140488)
    assert np.isclose(sdtw(prediction[:2], reference, GRID), 0.0)
    m = episode_metrics(prediction, reference, GRID)
    assert np.isclose(m["ndtw"], 0.77880078307140488) and np.isclose(m["sdtw"], 0.77880078307140488)
    assert m["nav_error"] == 2.0 and m["success"] == 1.0
    assert episode_metrics(prediction[:2], reference, GRID)["sdtw"] == 0.0


R4R_REF = vids([(0, 0), (1, 0), (1, 1), (2, 1), (2, 2), (3, 2)])
R4R_PRED1 = vids([(0, 0), (0, 1), (1, 1), (2, 1), (3, 1), (3, 2)])
R4R_PRED2 = vids([(0, 1), (1, 1), (2, 1), (3, 1)])


def test_r4r_cls_doctest_anchors():
    """google-research r4r/cls.py doctest on nx.grid_graph([3, 4]).

    The doctest calls ``cls(reference, prediction)`` into ``__call__(prediction, reference)``, so its
    literals are CLS with the doctest's reference in the *prediction* slot. Case 1 is symmetric.
    """
    assert np.isclose(cls(R4R_REF, R4R_REF, GRID), 1.0)
    assert np.isclose(cls(R4R_REF, R4R_PRED1, GRID), 0.81994915125863865)
    assert np.isclose(cls(R4R_PRED1, R4R_REF, GRID), 0.81994915125863865)
    assert np.isclose(cls(pred=R4R_REF, ref=R4R_PRED2, dist=GRID), 0.44197196102702557)


def test_cls_hand_computed_with_roles_as_named():
    # coverage of the reference by pred2: (0,0),(1,0),(2,2),(3,2) are 1 m away, (1,1),(2,1) on it
    pc = (2 + 4 * math.exp(-1 / 3)) / 6
    assert path_coverage(R4R_PRED2, R4R_REF, GRID) == pytest.approx(pc)
    epl = pc * 5.0  # PL(reference) = 5
    ls = epl / (epl + abs(epl - 3.0))  # PL(pred2) = 3
    assert length_score(R4R_PRED2, R4R_REF, GRID, pc) == pytest.approx(ls)
    assert cls(R4R_PRED2, R4R_REF, GRID) == pytest.approx(pc * ls)
    assert cls(R4R_PRED2, R4R_REF, GRID) == pytest.approx(0.6435694620652272)


def test_cls_degenerate_one_point_reference():
    assert cls(p(3), p(3), LINE) == 1.0  # EPL == PL == 0: 0/0 in r4r, 1 here
    assert cls(p(3, 4, 3), p(3), LINE) == 0.0  # EPL 0, PL 2: LS 0


def test_repeats_are_collapsed_for_ndtw_and_cls():
    pred, ref = p(0, 1, 1, 2), p(0, 2)
    # collapsed [p0, p1, p2] vs [p0, p2]: p1 costs 1 once; raw: twice
    assert dtw(collapse_repeats(pred), ref, LINE) == 1.0 and dtw(pred, ref, LINE) == 2.0
    assert ndtw(pred, ref, LINE) == pytest.approx(math.exp(-1 / 6))
    assert ndtw(pred, ref, LINE, collapse=False) == pytest.approx(math.exp(-2 / 6))
    assert cls(pred, ref, LINE) == cls(collapse_repeats(pred), ref, LINE)
    m, m_raw = episode_metrics(p(0, 0, 1, 1, 2), ref, LINE), episode_metrics(p(0, 1, 2), ref, LINE)
    assert m == {**m_raw, "steps": 4.0}


def test_a_plain_callable_gives_the_same_numbers():
    plain = lambda a, b: GRID(a, b)  # noqa: E731 -- no `pairwise` fast path
    pred = vids([(0, 0), (0, 1), (1, 1), (2, 1), (3, 1), (3, 2), (3, 1)])
    a, b = episode_metrics(pred, R4R_REF, GRID), episode_metrics(pred, R4R_REF, plain)
    assert a == pytest.approx(b)


# ------------------------------------------------------------------------------------ aggregate


def test_aggregate_means():
    eps = [episode_metrics(p(0, 1, 2, 3, 4, 5, 6, 5), REF, LINE), episode_metrics(p(0, 1, 2), REF, LINE),
           episode_metrics(p(0, 1, 2, 3), REF, LINE)]
    agg = aggregate(eps)
    assert set(agg) == set(AGGREGATE_KEYS)
    assert agg["num_episodes"] == 3
    assert agg["success_rate"] == pytest.approx(2 / 3)
    assert agg["oracle_success_rate"] == pytest.approx(2 / 3)
    assert agg["spl"] == pytest.approx((5 / 7 + 0 + 1) / 3)
    assert agg["nav_error"] == pytest.approx((0 + 3 + 2) / 3)
    assert agg["trajectory_length"] == pytest.approx((7 + 2 + 3) / 3)
    for key in ("ndtw", "sdtw", "cls"):
        assert agg[key] == pytest.approx(np.mean([e[key] for e in eps]))
    assert agg["spl"] <= agg["success_rate"]


def test_aggregate_errors():
    with pytest.raises(ValueError, match="no episodes"):
        aggregate([])
    e = episode_metrics(p(0, 1), REF, LINE)
    with pytest.raises(ValueError, match="episode 1 has no 'cls'"):
        aggregate([e, {k: v for k, v in e.items() if k != "cls"}])
    assert aggregate([{"success": 1.0}, {"success": 0.0}]) == {"success_rate": 0.5, "num_episodes": 2}


# ----------------------------------------------------------------------------------- continuous

XS = np.arange(0.0, 10.01, 0.5)  # 0, 0.5, ..., 10
LINE_REF = [(0.0, 0.0), (5.0, 0.0), (10.0, 0.0)]


def straight(xs, z: float | None = None) -> np.ndarray:
    pts = np.stack([xs, np.zeros_like(xs)], axis=1)
    return pts if z is None else np.concatenate([pts, np.full((len(xs), 1), z)], axis=1)


def test_continuous_straight_line_to_the_goal():
    m = continuous_episode_metrics(straight(XS), (10.0, 0.0), LINE_REF, euclidean)
    assert set(m) == set(EPISODE_KEYS)
    assert m["nav_error"] == 0.0 and m["success"] == 1.0 and m["oracle_success"] == 1.0
    assert m["trajectory_length"] == pytest.approx(10.0) and m["shortest_path_length"] == 10.0
    assert m["spl"] == pytest.approx(1.0)
    # each point matched to its nearest reference point: 7.5 + 12.5 + 5 = 25
    assert dtw(list(straight(XS)), LINE_REF, euclidean) == pytest.approx(25.0)
    assert m["ndtw"] == pytest.approx(math.exp(-25 / (3.0 * 3)))
    assert m["sdtw"] == m["ndtw"]
    # 3-D positions at a constant camera height give the same numbers
    m3 = continuous_episode_metrics(straight(XS, 1.25), (10.0, 0.0, 1.25), [(*q, 1.25) for q in LINE_REF], euclidean)
    assert m3 == pytest.approx(m)


def test_continuous_dense_reference_and_turns_in_place():
    ref = straight(XS)
    turning = np.repeat(straight(XS), 3, axis=0)  # every position held for three steps (turning)
    m = continuous_episode_metrics(turning, (10.0, 0.0), ref, euclidean)
    assert m["ndtw"] == 1.0 and m["cls"] == pytest.approx(1.0) and m["trajectory_length"] == pytest.approx(10.0)


@pytest.mark.parametrize("stop_x, success, spl_", [(7.0, 0.0, 0.0), (7.5, 1.0, 1.0), (10.0, 1.0, 1.0)])
def test_continuous_success_boundary_is_strict(stop_x, success, spl_):
    xs = XS[XS <= stop_x]
    m = continuous_episode_metrics(straight(xs), (10.0, 0.0), LINE_REF, euclidean)
    assert m["nav_error"] == pytest.approx(10.0 - stop_x)
    assert m["success"] == success and m["oracle_success"] == success and m["spl"] == spl_


def test_continuous_overshoot_stop_and_geodesic():
    xs = np.concatenate([XS, [10.5, 11.0, 11.5, 12.0, 11.5, 11.0, 10.5, 10.0]])
    m = continuous_episode_metrics(straight(xs), (10.0, 0.0), LINE_REF, euclidean)
    assert m["trajectory_length"] == pytest.approx(14.0) and m["spl"] == pytest.approx(10 / 14)
    # no STOP: no success (habitat), oracle success still counts
    m = continuous_episode_metrics(straight(XS), (10.0, 0.0), LINE_REF, euclidean, stopped=False)
    assert m["success"] == 0.0 and m["spl"] == 0.0 and m["sdtw"] == 0.0 and m["oracle_success"] == 1.0
    # a geodesic twice the straight line (a wall in between): NE, sp, OSR use it, TL and nDTW do not
    geo = lambda a, b: 2.0 * euclidean(a, b)  # noqa: E731
    m = continuous_episode_metrics(straight(XS[XS <= 8.0]), (10.0, 0.0), LINE_REF, geo)
    assert m["nav_error"] == pytest.approx(4.0) and m["success"] == 0.0 and m["oracle_success"] == 0.0
    assert m["shortest_path_length"] == 20.0 and m["trajectory_length"] == pytest.approx(8.0)
    m2 = continuous_episode_metrics(straight(XS[XS <= 8.0]), (10.0, 0.0), LINE_REF, geo, shortest_path_length=12.0,
                                    path_dist=geo)
    assert m2["shortest_path_length"] == 12.0 and m2["ndtw"] < m["ndtw"]


@pytest.mark.parametrize("positions, goal, ref, match", [
    (np.zeros((0, 2)), (0, 0), LINE_REF, r"positions has shape \(0, 2\); accepted: a non-empty \[T, 2\] or \[T, 3\]"),
    (np.zeros((3, 4)), (0, 0), LINE_REF, r"positions has shape \(3, 4\)"),
    (np.zeros((3, 2)), (0, 0, 0), LINE_REF, r"goal has shape \(3,\); accepted: one point of shape \(2,\)"),
    (np.zeros((3, 2)), (0, 0), [(0, 0, 0)], r"reference_positions has 3 coordinates per point but positions have 2"),
    (np.zeros((3, 2)), (0, 0), np.zeros((0, 2)), r"reference_positions has shape \(0, 2\)"),
    (np.array([[0, 0], [np.nan, 0]]), (0, 0), LINE_REF, r"positions contains non-finite"),
])
def test_continuous_errors(positions, goal, ref, match):
    with pytest.raises(ValueError, match=match):
        continuous_episode_metrics(positions, goal, ref, euclidean)


# ----------------------------------------------------------------------------------- properties


def _node_of(v: str) -> tuple[int, int]:
    i, j = v.split("_")
    return int(i), int(j)


def reference_dtw(pred: list[str], ref: list[str]) -> float:
    """DTW by memoised recursion over monotone alignments (independent of metrics.dtw)."""
    @cache
    def d(i: int, j: int) -> float:
        (a, b), (c, e) = _node_of(pred[i]), _node_of(ref[j])
        cost = abs(a - c) + abs(b - e)  # grid graph: shortest path = Manhattan distance
        if i == 0 and j == 0:
            return cost
        prev = [d(i - 1, j) if i else math.inf, d(i, j - 1) if j else math.inf,
                d(i - 1, j - 1) if i and j else math.inf]
        return cost + min(prev)
    return d(len(pred) - 1, len(ref) - 1)


def _walk(draw, start: tuple[int, int], max_len: int, stay: bool) -> list[tuple[int, int]]:
    path = [start]
    for _ in range(draw(st.integers(0, max_len))):
        i, j = path[-1]
        options = [(i + di, j + dj) for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1))
                   if 0 <= i + di < 4 and 0 <= j + dj < 3]
        if stay:
            options.append((i, j))
        path.append(draw(st.sampled_from(options)))
    return path


@st.composite
def episodes(draw):
    start = (draw(st.integers(0, 3)), draw(st.integers(0, 2)))
    ref = _walk(draw, start, 8, stay=False)
    if draw(st.booleans()):  # pred follows ref, possibly with turns in place
        pred = [v for v in ref for _ in range(draw(st.integers(1, 2)))]
    else:
        pred = _walk(draw, start, 10, stay=True)
    return vids(pred), vids(ref)


@settings(max_examples=200, deadline=None)
@given(episodes())
def test_metric_properties(episode):
    pred, ref = episode
    m = episode_metrics(pred, ref, GRID)
    same = collapse_repeats(pred) == collapse_repeats(ref)
    assert 0.0 < m["ndtw"] <= 1.0
    assert (m["ndtw"] == 1.0) == same
    assert dtw(collapse_repeats(pred), ref, GRID) == pytest.approx(reference_dtw(collapse_repeats(pred), ref))
    assert dtw(pred, ref, GRID) == pytest.approx(reference_dtw(pred, ref))
    assert 0.0 <= m["spl"] <= m["success"] <= m["oracle_success"]
    assert m["oracle_nav_error"] <= m["nav_error"]
    assert 0.0 <= m["sdtw"] <= min(m["ndtw"], m["success"])
    assert 0.0 <= m["cls"] <= 1.0
    if same:
        assert m["cls"] == pytest.approx(1.0) and m["success"] == 1.0
    assert m["trajectory_length"] == len(collapse_repeats(pred)) - 1  # unit edges


def test_module_is_pure():
    code = "import sys, vlarena.metrics; bad = {'torch', 'vlarena.envs'} & set(sys.modules); assert not bad, bad"
    subprocess.run([sys.executable, "-c", code], check=True)
