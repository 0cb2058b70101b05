import heapq
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import box_room
from vlarena.datasets.geodesic import GridGraph
from vlarena.envs.geodesic import FieldPool
from vlarena.envs.scene_tensors import SceneTensors


def reference(nav: np.ndarray, goals: list[tuple[int, int]], cs: float) -> np.ndarray:
    """Plain heapq Dijkstra, 8-connected, no corner cutting."""
    dist = np.full(nav.shape, np.inf)
    heap = [(0.0, g) for g in goals if nav[g]]
    for _, g in heap:
        dist[g] = 0.0
    rows, cols = nav.shape
    while heap:
        d, (i, j) = heapq.heappop(heap)
        if d > dist[i, j]:
            continue
        for di in (-1, 0, 1):
            for dj in (-1, 0, 1):
                a, b = i + di, j + dj
                if (di, dj) == (0, 0) or not (0 <= a < rows and 0 <= b < cols) or not nav[a, b]:
                    continue
                if di and dj and not (nav[i + di, j] and nav[i, j + dj]):
                    continue
                nd = d + math.hypot(di, dj) * cs
                if nd < dist[a, b] - 1e-12:
                    dist[a, b] = nd
                    heapq.heappush(heap, (nd, (a, b)))
    return dist


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.1, 0.5), st.integers(1, 3))
def test_distance_field_matches_reference_dijkstra(seed, density, n_goals):
    rng = np.random.default_rng(seed)
    nav = rng.random((17, 23)) > density
    free = np.argwhere(nav)
    if len(free) == 0:
        return
    goals = [tuple(free[k]) for k in rng.integers(len(free), size=n_goals)]
    goal = np.zeros_like(nav)
    for g in goals:
        goal[g] = True
    got = GridGraph(nav, 0.25).distance_field(goal)
    want = reference(nav, goals, 0.25)
    assert np.array_equal(np.isinf(got), np.isinf(want))
    assert np.allclose(got[np.isfinite(want)], want[np.isfinite(want)], atol=1e-5)


def test_known_distances():
    nav = np.ones((5, 9), dtype=bool)
    nav[1:4, 4] = False  # a wall with gaps at the top and bottom rows
    g = GridGraph(nav, 0.25)
    assert g.path_length((2, 0), (2, 1)) == pytest.approx(0.25)
    # the last diagonal into (4, 4) would cut the wall cell (3, 4): 3 diagonals and 2 straight moves
    assert g.path_length((0, 0), (4, 4)) == pytest.approx((3 * math.sqrt(2) + 2) * 0.25)
    # around the wall through the gap in row 0: no diagonal may cut past the wall, so 6 straight moves
    assert g.path_length((2, 3), (2, 5)) == pytest.approx(6 * 0.25)
    nav[0, 4] = nav[4, 4] = False
    assert math.isinf(GridGraph(nav, 0.25).path_length((2, 0), (2, 8)))


def test_continuous_distance_from_pool():
    scene = box_room(4.0, 4.0)
    st_ = SceneTensors.from_scenes([scene])
    nav = scene.cells == 1
    goal = np.zeros_like(nav)
    goal[8, 8] = True  # centre (2.125, 2.125)
    pool = FieldPool(st_)
    slot = pool.add("g", GridGraph(nav, 0.25).distance_field(goal))
    xy = torch.tensor([[2.125, 2.125], [3.125, 2.125], [2.2, 2.125]])
    d = pool.distance(torch.full((3,), slot), xy)
    assert d.tolist() == pytest.approx([0.0, 1.0, 0.075], abs=1e-5)
