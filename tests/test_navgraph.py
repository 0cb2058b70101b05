"""Navigation graphs built from scenes, and R2R path sampling on them."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import box_room
from vlarena.datasets import generate_scene, navigable_mask
from vlarena.datasets.geodesic import GridGraph
from vlarena.datasets.navgraph import NavGraph
from vlarena.datasets.navgraph_build import (
    CAMERA_HEIGHT,
    COVER_RADIUS,
    MAX_EDGE,
    build_nav_graph,
    graph_cells,
    segment_cells,
    segment_clear,
)
from vlarena.datasets.r2r import heading_from_scene, heading_to_scene, sample_paths, shortest_paths
from vlarena.datasets.scene import FLOOR, WALL, Door, Room, Scene

SEEDS = (0, 1, 4, 7)


@pytest.fixture(scope="module")
def built() -> list[tuple[Scene, NavGraph]]:
    return [(s, build_nav_graph(s)) for s in (generate_scene(seed) for seed in SEEDS)]


def dense_clear(nav: np.ndarray, cs: float, a: np.ndarray, b: np.ndarray, step: float = 0.005) -> bool:
    """Independent check: points every `step` metres, each in a navigable cell."""
    n = max(2, int(np.linalg.norm(b - a) / step) + 1)
    p = a[:2] + (b[:2] - a[:2]) * np.linspace(0, 1, n)[:, None]
    i, j = np.floor(p[:, 1] / cs).astype(int), np.floor(p[:, 0] / cs).astype(int)
    inside = (i >= 0) & (i < nav.shape[0]) & (j >= 0) & (j < nav.shape[1])
    return bool(inside.all() and nav[i, j].all())


def components(graph: NavGraph) -> int:
    seen, stack = {0}, [0]
    while stack:
        for v in graph.neighbours[stack.pop()]:
            if v not in seen:
                seen.add(v)
                stack.append(v)
    return len(seen)


def two_rooms() -> Scene:
    """Two 4 x 3 m rooms side by side (x), one 1 m door in the wall between them."""
    rows, cols = 14, 35
    cells = np.full((rows, cols), WALL, dtype=np.uint8)
    room_ids = np.full((rows, cols), -1, dtype=np.int16)
    cells[1:13, 1:17], room_ids[1:13, 1:17] = FLOOR, 0
    cells[1:13, 18:34], room_ids[1:13, 18:34] = FLOOR, 1
    door = tuple((i, 17) for i in range(5, 9))
    for c in door:
        cells[c] = FLOOR
    rooms = [Room(0, "kitchen", (1, 1, 13, 17)), Room(1, "bedroom", (1, 18, 13, 34))]
    return Scene("two_rooms", 0, 0.25, 2.7, cells, room_ids, rooms, [Door((0, 1), door)], [])


# ---- segments ---------------------------------------------------------------------------------
def test_segment_cells_exact_cases():
    cs = 0.25
    # along a row: the cells of that row only
    got = {tuple(c) for c in segment_cells(np.array([0.125, 0.125]), np.array([0.875, 0.125]), cs)}
    assert got == {(0, 0), (0, 1), (0, 2), (0, 3)}
    # a diagonal through cell corners touches the four cells at each corner
    got = {tuple(c) for c in segment_cells(np.array([0.125, 0.125]), np.array([0.375, 0.375]), cs)}
    assert got == {(0, 0), (0, 1), (1, 0), (1, 1)}
    # pinched corner: diagonal cells free, the two others blocked -> not clear
    mask = np.array([[True, False], [False, True]])
    assert not segment_clear(mask, cs, np.array([0.125, 0.125]), np.array([0.375, 0.375]))
    assert segment_clear(np.ones((2, 2), bool), cs, np.array([0.125, 0.125]), np.array([0.375, 0.375]))
    # leaving the grid is never clear
    assert not segment_clear(np.ones((2, 2), bool), cs, np.array([0.125, 0.125]), np.array([0.6, 0.125]))


@settings(max_examples=60, deadline=None)
@given(st.tuples(*[st.floats(0.01, 2.49)] * 4))
def test_segment_cells_contains_every_sampled_cell(xy):
    cs = 0.25
    a, b = np.array(xy[:2]), np.array(xy[2:])
    got = {tuple(c) for c in segment_cells(a, b, cs)}
    p = a + (b - a) * np.linspace(0, 1, 2001)[:, None]
    sampled = {(int(i), int(j)) for i, j in zip(np.floor(p[:, 1] / cs), np.floor(p[:, 0] / cs), strict=True)}
    assert sampled <= got
    # and nothing far off the segment: every reported cell is within a cell diagonal of it
    centres = (np.array(sorted(got))[:, ::-1] + 0.5) * cs
    t = np.clip(((centres - a) @ (b - a)) / max(float((b - a) @ (b - a)), 1e-12), 0, 1)
    off = np.linalg.norm(centres - (a + t[:, None] * (b - a)), axis=1)
    assert off.max() <= cs * math.sqrt(2) / 2 + 1e-9


# ---- graphs -----------------------------------------------------------------------------------
def test_graph_structure(built):
    for scene, g in built:
        n = len(g)
        assert n >= len(scene.rooms)
        assert g.ids == [f"{scene.scene_id}_{k:03d}" for k in range(n)]
        assert g.edges == sorted(set(g.edges)) and all(0 <= a < b < n for a, b in g.edges)
        # symmetric adjacency
        adj = np.zeros((n, n), bool)
        for a, b in g.edges:
            adj[a, b] = adj[b, a] = True
        assert (adj == adj.T).all() and not adj.diagonal().any()
        assert all(b in g.neighbours[a] and a in g.neighbours[b] for a, b in g.edges)
        assert components(g) == n, f"{scene.scene_id}: graph not connected"
        assert np.all(g.positions[:, 2] == CAMERA_HEIGHT)


def test_viewpoints_on_navigable_cell_centres(built):
    for scene, g in built:
        nav = navigable_mask(scene)
        cells = graph_cells(g, scene.cell_size)
        assert nav[cells[:, 0], cells[:, 1]].all()
        assert np.allclose(g.positions[:, :2], (cells[:, ::-1] + 0.5) * scene.cell_size, atol=1e-12)
        assert len({tuple(c) for c in cells}) == len(g)
        assert g.room_ids == [int(scene.room_ids[i, j]) for i, j in cells]


def test_edges_unobstructed_and_short(built):
    for scene, g in built:
        nav = navigable_mask(scene)
        for a, b in g.edges:
            pa, pb = g.positions[a], g.positions[b]
            assert np.linalg.norm(pa - pb) <= MAX_EDGE + 1e-9
            assert dense_clear(nav, scene.cell_size, pa, pb), (scene.scene_id, g.ids[a], g.ids[b])
            assert segment_clear(nav, scene.cell_size, pa, pb)


def test_spacing_and_coverage(built):
    lengths, nearest = [], []
    for scene, g in built:
        lengths += [g.edge_length(a, b) for a, b in g.edges]
        d = np.linalg.norm(g.positions[:, None] - g.positions[None], axis=-1)
        np.fill_diagonal(d, np.inf)
        nearest += list(d.min(axis=1))
        # every navigable cell within COVER_RADIUS (grid geodesic) of a viewpoint
        nav = navigable_mask(scene)
        goal = np.zeros(nav.shape, bool)
        cells = graph_cells(g, scene.cell_size)
        goal[cells[:, 0], cells[:, 1]] = True
        assert GridGraph(nav, scene.cell_size).distance_field(goal)[nav].max() <= COVER_RADIUS + 1e-5
    assert 1.5 <= np.mean(lengths) <= 3.0, np.mean(lengths)
    assert np.median(nearest) >= 1.0, np.median(nearest)
    assert np.mean(np.array(nearest) < 0.5) < 0.1


def test_every_open_door_is_crossed(built):
    for scene, g in built:
        nav = navigable_mask(scene)
        crossed = set()
        for a, b in g.edges:
            cells = {tuple(c) for c in segment_cells(g.positions[a], g.positions[b], scene.cell_size)}
            crossed |= cells
        crossed |= {tuple(c) for c in graph_cells(g, scene.cell_size)}
        for door in scene.doors:
            if any(nav[c] for c in door.cells):
                assert crossed & set(door.cells), (scene.scene_id, door)


def test_two_rooms_connect_through_the_door():
    scene = two_rooms()
    g = build_nav_graph(scene)
    assert components(g) == len(g)
    assert set(g.room_ids) >= {0, 1}
    through = [(a, b) for a, b in g.edges if {g.room_ids[a], g.room_ids[b]} == {0, 1}]
    assert through, "no edge crosses the door"
    for a, b in through:  # the crossing runs through the door opening (x = 17 * 0.25 .. 18 * 0.25)
        t = (4.375 - g.positions[a, 0]) / (g.positions[b, 0] - g.positions[a, 0])
        y = g.positions[a, 1] + t * (g.positions[b, 1] - g.positions[a, 1])
        assert 5 * 0.25 < y < 9 * 0.25


def test_small_room_and_determinism():
    room = box_room(6.0, 4.0, objects=[{"center": (3.0, 2.5), "half_extents": (0.5, 0.4), "category": "table"}])
    g = build_nav_graph(room)
    assert components(g) == len(g) and len(g) >= 2
    again = build_nav_graph(room)
    assert again.ids == g.ids and again.edges == g.edges and np.array_equal(again.positions, g.positions)


def test_deterministic_across_regeneration(built):
    scene, g = built[0]
    g2 = build_nav_graph(generate_scene(scene.seed))
    assert g2.ids == g.ids and g2.edges == g.edges and np.array_equal(g2.positions, g.positions)
    assert g2.room_ids == g.room_ids


# ---- paths ------------------------------------------------------------------------------------
def test_sample_paths_are_r2r_shortest_paths(built):
    for scene, g in built:
        dist, _ = shortest_paths(g)
        paths = sample_paths(g, np.random.default_rng(scene.seed), 25)
        assert len({(p.path[0], p.path[-1]) for p in paths}) == 25
        for p in paths:
            assert 4 <= len(p.path) <= 7
            assert 5.0 <= p.distance <= 20.0
            assert 0.0 <= p.heading < 2 * math.pi
            length = sum(g.edge_length(a, b) for a, b in zip(p.path, p.path[1:], strict=False))
            assert all(b in g.neighbours[a] for a, b in zip(p.path, p.path[1:], strict=False))
            assert length == pytest.approx(p.distance, abs=1e-9)
            assert length == pytest.approx(dist[p.path[0], p.path[-1]], abs=1e-9)  # a shortest path


def test_sample_paths_deterministic_exclusions_and_errors(built):
    _, g = built[0]
    a = sample_paths(g, np.random.default_rng(5), 10)
    b = sample_paths(g, np.random.default_rng(5), 10)
    assert a == b
    used = {(p.path[0], p.path[-1]) for p in a}
    c = sample_paths(g, np.random.default_rng(6), 10, exclude=used)
    assert not {(p.path[0], p.path[-1]) for p in c} & (used | {(y, x) for x, y in used})
    with pytest.raises(ValueError, match="fewer than the 1000000 asked for"):
        sample_paths(g, np.random.default_rng(0), 1_000_000)
    with pytest.raises(ValueError, match="min_edges"):
        sample_paths(g, np.random.default_rng(0), 1, min_edges=5, max_edges=2)


# ---- headings ---------------------------------------------------------------------------------
def test_heading_conventions():
    # R2R: 0 faces north (+y), pi/2 faces east (+x), turning right is positive
    assert heading_to_scene(0.0) == pytest.approx(math.pi / 2)
    assert heading_to_scene(math.pi / 2) == pytest.approx(0.0)
    assert heading_to_scene(math.pi) == pytest.approx(-math.pi / 2)
    assert heading_from_scene(math.pi) == pytest.approx(3 * math.pi / 2)  # west


@settings(max_examples=200, deadline=None)
@given(st.floats(-10, 10))
def test_heading_round_trip(theta):
    h = heading_from_scene(theta)
    assert 0.0 <= h < 2 * math.pi
    back = heading_to_scene(h)
    assert -math.pi < back <= math.pi
    assert math.cos(back - theta) == pytest.approx(1.0, abs=1e-12)
    # a right turn (R2R +) is a clockwise turn (scene -)
    assert math.sin(heading_to_scene(h + 0.1) - back) == pytest.approx(math.sin(-0.1), abs=1e-12)
