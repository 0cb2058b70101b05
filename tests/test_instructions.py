"""R2R-style instructions: grammar, distinctness, grounding in the path, turn directions, variety."""

from __future__ import annotations

import math
import re
import time

import numpy as np
import pytest

from tests.helpers import box_room
from vlarena.datasets import COLOUR_NAMES, ROOM_TYPES, Scene, generate_scene, navigable_mask, readable
from vlarena.datasets.catalog import CATEGORY_NAMES
from vlarena.datasets.instructions import (
    LANDMARK_RADIUS,
    MAX_INSTRUCTIONS,
    OBJECT_WORDS,
    ROOM_WORDS,
    STOP_RADIUS,
    TEMPLATE_FAMILIES,
    compose_instruction,
    generate_instructions,
    parse_mentions,
    path_facts,
)
from vlarena.datasets.navgraph import NavGraph
from vlarena.datasets.scene import FLOOR, WALL, Door, Room, SceneObject

CAMERA_Z = 1.5


# ---- graphs and paths -------------------------------------------------------------------------
def _segment_navigable(nav: np.ndarray, cs: float, a: np.ndarray, b: np.ndarray) -> bool:
    n = max(2, int(np.linalg.norm(b - a) / (cs / 4)) + 1)
    t = np.linspace(0, 1, n)[:, None]
    p = a + (b - a) * t
    return bool(nav[(p[:, 1] / cs).astype(int), (p[:, 0] / cs).astype(int)].all())


def simple_graph(scene: Scene, spacing: int = 7, reach: float = 3.2) -> NavGraph:
    """Viewpoints on a lattice of navigable cells plus one at every door; edges between viewpoints
    closer than `reach` metres whose straight segment stays on navigable cells."""
    nav = navigable_mask(scene)
    cs = scene.cell_size
    pts = [((j + 0.5) * cs, (i + 0.5) * cs) for i in range(spacing // 2, nav.shape[0], spacing)
           for j in range(spacing // 2, nav.shape[1], spacing) if nav[i, j]]
    for door in scene.doors:
        c = np.mean(np.array(door.cells, dtype=float), axis=0) + 0.5
        pts.append((c[1] * cs, c[0] * cs))
    pos = np.array([(x, y, CAMERA_Z) for x, y in pts])
    edges = []
    for a in range(len(pos)):
        for b in range(a + 1, len(pos)):
            if np.linalg.norm(pos[a, :2] - pos[b, :2]) < reach and _segment_navigable(nav, cs, pos[a, :2], pos[b, :2]):
                edges.append((a, b))
    room_ids = [int(scene.room_ids[int(y / cs), int(x / cs)]) for x, y, _ in pos]
    return NavGraph(scene.scene_id, [f"{scene.scene_id}_{k:03d}" for k in range(len(pos))], pos, edges, room_ids)


def nav_graph(scene: Scene) -> NavGraph:
    try:
        from vlarena.datasets.navgraph_build import build_nav_graph
    except ImportError:
        return simple_graph(scene)
    return build_nav_graph(scene)


def shortest_path(graph: NavGraph, a: int, b: int) -> list[int]:
    import heapq

    dist, prev, heap = {a: 0.0}, {}, [(0.0, a)]
    while heap:
        d, u = heapq.heappop(heap)
        if u == b:
            break
        if d > dist[u]:
            continue
        for v in graph.neighbours[u]:
            nd = d + graph.edge_length(u, v)
            if nd < dist.get(v, math.inf):
                dist[v], prev[v] = nd, u
                heapq.heappush(heap, (nd, v))
    if b not in dist:
        return []
    path = [b]
    while path[-1] != a:
        path.append(prev[path[-1]])
    return path[::-1]


def sample_paths(graph: NavGraph, rng: np.random.Generator, count: int) -> list[list[int]]:
    """Shortest paths of 4-7 viewpoints (prefixes of shortest paths are shortest paths)."""
    out = []
    for _ in range(50 * count):
        a, b = (int(v) for v in rng.integers(len(graph), size=2))
        p = shortest_path(graph, a, b)
        if len(p) >= 4:
            out.append(p[: int(rng.integers(4, 8))])
            if len(out) == count:
                break
    return out


@pytest.fixture(scope="module")
def corpus() -> list[tuple[Scene, NavGraph, list[int], float]]:
    """200 (scene, graph, path, start heading), ten from each generated apartment."""
    rng = np.random.default_rng(0)
    items = []
    for seed in range(40):
        scene = generate_scene(seed)
        graph = nav_graph(scene)
        for path in sample_paths(graph, rng, 10):
            items.append((scene, graph, path, float(rng.uniform(-math.pi, math.pi))))
        if len(items) >= 200:
            return items[:200]
    raise AssertionError(f"only {len(items)} paths of 4-7 viewpoints in 40 scenes")


@pytest.fixture(scope="module")
def written(corpus) -> list[list[str]]:
    rng = np.random.default_rng(1)
    return [generate_instructions(s, g, p, rng, n=3, start_heading=h) for s, g, p, h in corpus]


# ---- independent reading of what a text names (catalog names + synonyms) -------------------------
def named(text: str) -> tuple[set[str], list[tuple[str | None, str]]]:
    """(room types, [(colour or None, category)]) by longest-first matching of surface names."""
    low = text.lower()
    phrases = [(w, "obj", c) for c, ws in OBJECT_WORDS.items() for w in ws]
    phrases += [(w, "room", r) for r, ws in ROOM_WORDS.items() for w in ws]
    rooms, objects = set(), []
    for w, kind, key in sorted(phrases, key=lambda x: -len(x[0])):
        for m in list(re.finditer(rf"\b{re.escape(w)}\b", low)):
            before = low[: m.start()].split()
            if kind == "obj":
                objects.append((before[-1] if before and before[-1] in COLOUR_NAMES else None, key))
            else:
                rooms.add(key)
        low = re.sub(rf"\b{re.escape(w)}\b", "#" * len(w), low)
    return rooms, objects


def test_vocabulary_starts_with_catalog_names():
    assert all(ROOM_WORDS[t][0] == readable(t) for t in ROOM_TYPES)
    assert all(OBJECT_WORDS[c][0] == readable(c) for c in CATEGORY_NAMES)


# ---- grammar, distinctness, grounding ---------------------------------------------------------------
def test_grammar_and_no_digits(written):
    for texts in written:
        for t in texts:
            assert not re.search(r"\d", t), t
            assert "  " not in t and t == t.strip()
            sentences = re.split(r"(?<=\.) ", t)
            for s in sentences:
                assert s[0].isupper() and s.endswith(".") and s.count(".") == 1, t
                assert re.fullmatch(r"[A-Z][a-z ,\-]*\.", s), s
            for banned in ("metre", "meter", "steps", "viewpoint", "_"):
                assert banned not in t.lower(), t


def test_three_distinct_instructions_per_path(written):
    for texts in written:
        assert len(texts) == 3 and len(set(texts)) == 3


def test_mentions_are_on_or_beside_the_path(corpus, written):
    n_obj = n_col = 0
    for (scene, graph, path, heading), texts in zip(corpus, written, strict=True):
        f = path_facts(scene, graph, path, heading)
        visited = {v.type for v in f.rooms}
        near = {(lm.category, lm.colour) for lm in f.landmarks}
        if f.stop.object_id is not None:
            near.add((f.stop.category, f.stop.colour))
        for t in texts:
            rooms, objects = named(t)
            assert rooms <= visited, (t, visited)
            assert f.stop.room_type in rooms, t  # the goal room is always named
            m = parse_mentions(t)
            assert set(m.rooms) == rooms and sorted(m.objects, key=str) == sorted(objects, key=str)
            for colour, cat in objects:
                n_obj += 1
                n_col += colour is not None
                assert any(c == cat and (colour is None or colour == col) for c, col in near), (t, near)
            if f.stop.object_id is not None:  # the stop object is always named
                assert f.stop.category in {c for _, c in objects}, t
            if not f.doors and not f.stop.in_doorway:
                assert m.doors == 0, t
            for turn in m.turns:
                assert turn in {tf.direction for tf in f.turns}, (t, f.turns)
    assert n_obj > 300 and 0.3 < n_col / n_obj < 0.95


def test_facts_are_geometrically_true(corpus):
    for scene, graph, path, heading in corpus[::5]:
        f = path_facts(scene, graph, path, heading)
        pts = graph.positions[path, :2]
        for lm in f.landmarks:
            o = scene.objects[lm.object_id]
            assert (o.category, o.colour, o.room) == (lm.category, lm.colour, lm.room)
            assert lm.distance <= LANDMARK_RADIUS and lm.room in {v.room for v in f.rooms}
        if f.stop.object_id is not None:
            o = scene.objects[f.stop.object_id]
            assert o.room == f.stop.room and f.stop.distance <= STOP_RADIUS
            assert np.linalg.norm(np.asarray(o.center) - pts[-1]) <= STOP_RADIUS + max(o.half_extents) * math.sqrt(2)
        assert f.rooms[-1].room == f.stop.room
        assert len(f.turns) == len(path) - 1  # one per viewpoint but the last (with a start heading)
        assert abs(f.length - sum(graph.edge_length(a, b) for a, b in zip(path, path[1:], strict=False))) < 1e-6
        for d in f.doors:
            assert set(d.rooms) == set(scene.doors[d.door].rooms)


def test_deterministic_given_rng(corpus):
    scene, graph, path, heading = corpus[7]
    a = generate_instructions(scene, graph, path, np.random.default_rng(5), n=3, start_heading=heading)
    b = generate_instructions(scene, graph, path, np.random.default_rng(5), n=3, start_heading=heading)
    assert a == b


def test_distinct_up_to_max_even_on_a_tiny_path():
    scene = box_room(4.0, 4.0)
    graph = NavGraph("t", ["a", "b"], [[1.0, 2.0, CAMERA_Z], [3.0, 2.0, CAMERA_Z]], [(0, 1)])
    texts = generate_instructions(scene, graph, [0, 1], np.random.default_rng(0), n=MAX_INSTRUCTIONS)
    assert len(set(texts)) == MAX_INSTRUCTIONS
    with pytest.raises(ValueError, match="n must be"):
        generate_instructions(scene, graph, [0, 1], np.random.default_rng(0), n=MAX_INSTRUCTIONS + 1)
    with pytest.raises(ValueError, match="viewpoint indices"):
        generate_instructions(scene, graph, [0, 5], np.random.default_rng(0))


# ---- turns on hand-made L-shaped paths ---------------------------------------------------------------
def l_path(corner_to: str) -> tuple[Scene, NavGraph]:
    scene = box_room(6.0, 6.0)
    y0 = 1.0 if corner_to == "north" else 5.0
    y1 = [y0 + 1.5, y0 + 3.0] if corner_to == "north" else [y0 - 1.5, y0 - 3.0]
    xy = [(1.0, y0), (2.5, y0), (4.0, y0), (4.0, y1[0]), (4.0, y1[1])]
    return scene, NavGraph("l", list("abcde"), [(x, y, CAMERA_Z) for x, y in xy], [(0, 1), (1, 2), (2, 3), (3, 4)])


@pytest.mark.parametrize(("corner_to", "turn", "other"), [("north", "left", "right"), ("south", "right", "left")])
def test_l_shaped_turn_direction(corner_to, turn, other):
    scene, graph = l_path(corner_to)
    f = path_facts(scene, graph, [0, 1, 2, 3, 4], start_heading=0.0)
    assert [t.direction for t in f.turns] == ["straight", "straight", turn, "straight"]
    rng = np.random.default_rng(0)
    for _ in range(30):
        for t in generate_instructions(scene, graph, [0, 1, 2, 3, 4], rng, n=3, start_heading=0.0):
            assert turn in t and other not in t and "around" not in t, t
            assert parse_mentions(t).turns.count(turn) == 1
    # Without a start heading there is no first turn; facing west the first turn is "around".
    assert len(path_facts(scene, graph, [0, 1, 2, 3, 4]).turns) == 3
    assert path_facts(scene, graph, [0, 1, 2, 3, 4], start_heading=math.pi).turns[0].direction == "around"


# ---- rooms, doors, landmarks and the stop place on a hand-made two-room flat --------------------------
def two_rooms() -> Scene:
    """Bedroom x in [0.25, 4.25], hallway x in [4.5, 8.5], y in [0.25, 4.25]; door at x 4.25-4.5, y 1.75-2.75."""
    cs = 0.25
    cells = np.full((18, 36), WALL, dtype=np.uint8)
    room_ids = np.full(cells.shape, -1, dtype=np.int16)
    cells[1:17, 1:17] = FLOOR
    room_ids[1:17, 1:17] = 0
    cells[1:17, 18:34] = FLOOR
    room_ids[1:17, 18:34] = 1
    door = tuple((i, 17) for i in range(7, 11))
    for i, j in door:
        cells[i, j] = FLOOR

    def obj(k, cat, colour, center, room, half=(0.3, 0.3), shape="box"):
        return SceneObject(k, cat, colour, shape, center, half, (0.0, 1.0), room)

    objects = [obj(0, "bed", "blue", (1.5, 3.3), 0, (0.8, 1.0)),
               obj(1, "plant", "green", (6.0, 1.2), 1, (0.2, 0.2), "cylinder"),
               obj(2, "wardrobe", "brown", (8.0, 2.2), 1, (0.3, 0.6)),
               obj(3, "lamp", "yellow", (3.0, 1.6), 0, (0.2, 0.2), "cylinder"),
               obj(4, "shoe_rack", "black", (6.5, 4.0), 1, (0.4, 0.15))]
    return Scene("two", 0, cs, 2.7, cells, room_ids, [Room(0, "bedroom", (1, 1, 17, 17)), Room(1, "hallway", (1, 18, 17, 34))],
                 [Door((0, 1), door)], objects)


def test_two_room_facts_and_text():
    scene = two_rooms()
    xy = [(2.0, 2.25), (3.5, 2.25), (4.375, 2.25), (5.75, 2.25), (7.0, 2.25)]
    graph = NavGraph("two", list("abcde"), [(x, y, CAMERA_Z) for x, y in xy], [(0, 1), (1, 2), (2, 3), (3, 4)])
    path = [0, 1, 2, 3, 4]
    f = path_facts(scene, graph, path)
    assert f.room_types == ["bedroom", "hallway"]
    assert [(d.door, d.rooms) for d in f.doors] == [(0, (0, 1))]
    lms = {lm.object_id: lm for lm in f.landmarks}
    assert set(lms) == {0, 1, 2, 3}  # the shoe rack is 1.6 m away; the wardrobe is the stop object too
    assert lms[1].side == "right" and lms[0].side == "left"
    assert (f.stop.category, f.stop.room_type, f.stop.in_doorway) == ("wardrobe", "hallway", False)
    rng = np.random.default_rng(3)
    texts = [t for _ in range(40) for t in generate_instructions(scene, graph, path, rng)]
    for t in texts:
        rooms, objects = named(t)
        assert rooms <= {"bedroom", "hallway"} and "hallway" in rooms
        assert {c for _, c in objects} <= {"bed", "plant", "wardrobe", "lamp"} and "wardrobe" in {c for _, c in objects}
        assert all(col in (None, {"bed": "blue", "plant": "green", "wardrobe": "brown", "lamp": "yellow"}[c])
                   for col, c in objects)
        assert "on your left" not in t or "bed" in t or "lamp" in t
    assert any("bedroom" in t for t in texts) and any("door" in t for t in texts)
    assert any("green plant" in t for t in texts) and any("on your right" in t for t in texts)


# ---- variety and speed -----------------------------------------------------------------------------
def test_vocabulary_and_family_diversity(corpus, written):
    words = {w for texts in written for t in texts for w in re.findall(r"[a-z]+", t.lower())}
    assert len(words) >= 100, len(words)
    rng = np.random.default_rng(2)
    seen: set[str] = set()
    for scene, graph, path, heading in corpus:
        f = path_facts(scene, graph, path, heading)
        for _ in range(3):
            seen |= compose_instruction(scene, f, rng)[1]
    assert seen == set(TEMPLATE_FAMILIES), set(TEMPLATE_FAMILIES) - seen
    openers = {t.split()[0] for texts in written for t in texts}
    assert len(openers) >= 8, openers
    lengths = [len(t.split()) for texts in written for t in texts]
    assert 5 <= np.mean(lengths) <= 60


@pytest.mark.slow  # absolute time on an idle machine: not in the default suite, where load makes it flaky
def test_speed(corpus):
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for scene, graph, path, heading in corpus:
        generate_instructions(scene, graph, path, rng, n=3, start_heading=heading)
    per_path = (time.perf_counter() - t0) / len(corpus)
    assert per_path < 0.005, f"{per_path * 1e3:.2f} ms per path"
