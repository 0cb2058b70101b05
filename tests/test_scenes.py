"""Procedural scenes: layout, furniture, navigability, determinism and the JSON file format."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from collections import Counter, deque

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vlarena.datasets import (
    CATEGORY_BY_NAME,
    CATEGORY_NAMES,
    FLOOR,
    NAV_CLEARANCE,
    ROOM_TYPES,
    WALL,
    Room,
    Scene,
    SceneObject,
    free_space,
    generate_scene,
    is_connected,
    navigable_mask,
    object_distance,
    object_goal_cells,
)

SEEDS = range(30)
TOL = 1e-6
DOOR_CLEAR = 0.8  # metres kept free in front of every door opening, both sides


@pytest.fixture(scope="module")
def scenes() -> list[Scene]:
    return [generate_scene(s) for s in SEEDS]


# ---- invariants every generated scene satisfies ------------------------------------------------
def bfs_component(mask: np.ndarray, start: tuple[int, int]) -> np.ndarray:
    """Independent 4-connected flood fill (checks scipy's labelling)."""
    seen = np.zeros_like(mask, dtype=bool)
    seen[start] = True
    queue = deque([start])
    while queue:
        i, j = queue.popleft()
        for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            a, b = i + di, j + dj
            if 0 <= a < mask.shape[0] and 0 <= b < mask.shape[1] and mask[a, b] and not seen[a, b]:
                seen[a, b] = True
                queue.append((a, b))
    return seen


def aabb(o: SceneObject) -> tuple[float, float, float, float]:
    (cx, cy), (hx, hy) = o.center, o.half_extents
    return cx - hx, cy - hy, cx + hx, cy + hy


def room_box(scene: Scene, room: Room) -> tuple[float, float, float, float]:
    i0, j0, i1, j1 = room.bounds
    cs = scene.cell_size
    return j0 * cs, i0 * cs, j1 * cs, i1 * cs


def door_keepout(scene: Scene, cells) -> tuple[float, float, float, float]:
    cs = scene.cell_size
    ii = [c[0] for c in cells]
    jj = [c[1] for c in cells]
    if len(set(ii)) == 1:
        return min(jj) * cs, ii[0] * cs - DOOR_CLEAR, (max(jj) + 1) * cs, (ii[0] + 1) * cs + DOOR_CLEAR
    return jj[0] * cs - DOOR_CLEAR, min(ii) * cs, (jj[0] + 1) * cs + DOOR_CLEAR, (max(ii) + 1) * cs


def overlaps(a, b) -> bool:
    return a[0] < b[2] - TOL and b[0] < a[2] - TOL and a[1] < b[3] - TOL and b[1] < a[3] - TOL


def check_layout(scene: Scene) -> None:
    rows, cols = scene.shape
    assert scene.cell_size == 0.25 and scene.wall_height == 2.7
    assert all(8.0 <= s <= 25.0 for s in scene.size_m)
    assert 4 <= len(scene.rooms) <= 12
    # the border is never floor: the apartment is closed
    border = np.concatenate([scene.cells[0], scene.cells[-1], scene.cells[:, 0], scene.cells[:, -1]])
    assert not (border == FLOOR).any()
    for room in scene.rooms:
        i0, j0, i1, j1 = room.bounds
        short, long_ = sorted((i1 - i0, j1 - j0))
        assert short >= (5 if room.type == "hallway" else 9)  # 1.25 m hallways, 2.25 m rooms
        assert (scene.cells[i0:i1, j0:j1] == FLOOR).all()
        assert (scene.room_ids[i0:i1, j0:j1] == room.id).all()
        assert (scene.room_ids == room.id).sum() == (i1 - i0) * (j1 - j0)
    types = Counter(r.type for r in scene.rooms)
    assert all(types[t] >= 1 for t in ("kitchen", "bathroom", "bedroom", "living_room"))
    # doors: 4 cells in a line in a shared wall, away from wall corners, joining the two rooms
    parent = list(range(len(scene.rooms)))

    def find(a: int) -> int:
        while parent[a] != a:
            a = parent[a]
        return a

    opened = np.zeros(scene.shape, dtype=bool)
    for door in scene.doors:
        cells = sorted(door.cells)
        assert len(cells) == 4
        ii, jj = zip(*cells, strict=True)
        horizontal = len(set(ii)) == 1
        assert horizontal or len(set(jj)) == 1
        along = jj if horizontal else ii
        assert list(along) == list(range(along[0], along[0] + 4))
        for i, j in cells:
            assert scene.cells[i, j] == FLOOR and scene.room_ids[i, j] == -1
            opened[i, j] = True
            a, b = ((i - 1, j), (i + 1, j)) if horizontal else ((i, j - 1), (i, j + 1))
            assert {int(scene.room_ids[a]), int(scene.room_ids[b])} == set(door.rooms)
        for end in ((cells[0][0], cells[0][1] - 1), (cells[-1][0], cells[-1][1] + 1)) if horizontal else \
                ((cells[0][0] - 1, cells[0][1]), (cells[-1][0] + 1, cells[-1][1])):
            assert scene.cells[end] == WALL  # at least one wall cell beyond each end ...
            a, b = ((end[0] - 1, end[1]), (end[0] + 1, end[1])) if horizontal else \
                ((end[0], end[1] - 1), (end[0], end[1] + 1))
            assert scene.cells[a] == FLOOR and scene.cells[b] == FLOOR  # ... and it is no wall corner
        parent[find(door.rooms[0])] = find(door.rooms[1])
    assert len({find(k) for k in range(len(scene.rooms))}) == 1  # doors join every room
    # floor outside rooms is exactly the door openings
    assert ((scene.cells == FLOOR) & (scene.room_ids == -1) == opened).all()


def check_objects(scene: Scene) -> None:
    assert [o.id for o in scene.objects] == list(range(len(scene.objects)))
    per_room = Counter(o.room for o in scene.objects)
    for room in scene.rooms:
        assert 1 <= per_room[room.id] <= 6
        names = {o.category for o in scene.objects if o.room == room.id}
        required = {"kitchen": "fridge", "bedroom": "bed", "bathroom": "toilet"}.get(room.type)
        assert required is None or required in names
    keepouts = [door_keepout(scene, d.cells) for d in scene.doors]
    boxes = [aabb(o) for o in scene.objects]
    for o, box in zip(scene.objects, boxes, strict=True):
        cat = CATEGORY_BY_NAME[o.category]
        room = scene.rooms[o.room]
        assert room.type in cat.rooms and o.colour in cat.colours and o.shape == cat.shape
        hx, hy = o.half_extents
        if o.shape == "cylinder":
            assert hx == hy and cat.size[0] - TOL <= 2 * hx <= cat.size[1] + TOL
        else:
            a, b = sorted((2 * hx, 2 * hy))
            fits = lambda v, r: r[0] - TOL <= v <= r[1] + TOL  # noqa: E731
            assert (fits(a, cat.size) and fits(b, cat.depth)) or (fits(a, cat.depth) and fits(b, cat.size))
        assert 0 <= o.z_range[0] < o.z_range[1] <= scene.wall_height
        rb = room_box(scene, room)
        assert rb[0] - TOL <= box[0] and rb[1] - TOL <= box[1] and box[2] <= rb[2] + TOL and box[3] <= rb[3] + TOL
        if cat.against_wall:  # flush against one of the room's walls
            assert min(abs(box[k] - rb[k]) for k in range(4)) < TOL
        assert not any(overlaps(box, k) for k in keepouts), f"{o} blocks a door"
    for a in range(len(boxes)):
        for b in range(a + 1, len(boxes)):
            assert not overlaps(boxes[a], boxes[b]), (scene.objects[a], scene.objects[b])


def check_navigation(scene: Scene) -> None:
    free = free_space(scene)
    nav = navigable_mask(scene)
    assert is_connected(free) and (nav == free).all()  # one component: every free cell is reachable
    start = tuple(int(v) for v in np.argwhere(nav)[0])
    assert (bfs_component(nav, start) == nav).all()
    for room in scene.rooms:
        assert nav[scene.room_ids == room.id].sum() > 0, room
    for door in scene.doors:
        assert sum(bool(nav[c]) for c in door.cells) == 2  # the two middle cells of a 1 m opening
    for o in scene.objects:
        goal = object_goal_cells(scene, [o.id], navigable=nav)
        assert goal.any(), o
        ii, jj = np.nonzero(goal)
        assert (object_distance(o, (jj + 0.5) * scene.cell_size, (ii + 0.5) * scene.cell_size) <= 0.75 + TOL).all()


def check_scene(scene: Scene) -> None:
    check_layout(scene)
    check_objects(scene)
    check_navigation(scene)


# ---- generated scenes ------------------------------------------------------------------------
def test_room_counts_and_sizes(scenes):
    counts = [len(s.rooms) for s in scenes]
    assert min(counts) >= 4 and max(counts) <= 12 and len(set(counts)) >= 5
    sizes = [m for s in scenes for m in s.size_m]
    assert min(sizes) >= 8.0 and max(sizes) <= 25.0 and max(sizes) >= 12.0
    for s in scenes:
        check_layout(s)


def test_room_types_and_categories(scenes):
    types = Counter(r.type for s in scenes for r in s.rooms)
    assert set(types) <= set(ROOM_TYPES) and len(types) >= 8
    cats = Counter(o.category for s in scenes for o in s.objects)
    assert set(cats) <= set(CATEGORY_NAMES)
    assert len(cats) >= 25, sorted(cats)
    objects_per_room = sum(len(s.objects) for s in scenes) / sum(len(s.rooms) for s in scenes)
    assert 2.0 <= objects_per_room <= 6.0


def test_objects_placed_by_the_rules(scenes):
    for s in scenes:
        check_objects(s)
    assert any((s.cells == 0).any() for s in scenes)  # some apartments are L-shaped
    assert any(r.type == "hallway" for s in scenes for r in s.rooms)


def test_everything_reachable(scenes):
    for s in scenes:
        check_navigation(s)


def test_navigable_cells_keep_clear_of_walls_and_objects(scenes):
    """Brute force against the definition: centre >= clearance from every non-floor square and object."""
    for s in scenes[:3]:
        cs = s.cell_size
        nav = navigable_mask(s)
        solid = np.argwhere(s.cells != FLOOR)
        for i, j in np.argwhere(nav)[::7]:
            x, y = (j + 0.5) * cs, (i + 0.5) * cs
            dx = np.maximum.reduce([solid[:, 1] * cs - x, x - (solid[:, 1] + 1) * cs, np.zeros(len(solid))])
            dy = np.maximum.reduce([solid[:, 0] * cs - y, y - (solid[:, 0] + 1) * cs, np.zeros(len(solid))])
            assert np.hypot(dx, dy).min() >= NAV_CLEARANCE
            assert all(object_distance(o, x, y) >= NAV_CLEARANCE for o in s.objects)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(min_value=0, max_value=10**9))
def test_any_seed_satisfies_the_invariants(seed):
    check_scene(generate_scene(seed))


@pytest.mark.parametrize("n", [4, 12])
def test_room_count_bounds_are_honoured(n):
    for seed in range(3):
        s = generate_scene(seed, min_rooms=n, max_rooms=n)
        assert len(s.rooms) == n
        check_scene(s)


def test_small_apartments():
    assert [r.type for r in generate_scene(0, min_rooms=1, max_rooms=1).rooms] == ["living_room"]
    s = generate_scene(0, min_rooms=3, max_rooms=3)
    assert sorted(r.type for r in s.rooms) == ["bathroom", "kitchen", "living_room"]
    check_objects(s)
    check_navigation(s)


def test_bad_arguments():
    for kwargs, field in [({"seed": -1}, "seed"), ({"seed": 1.5}, "seed"), ({"seed": 0, "min_rooms": 0}, "min_rooms"),
                          ({"seed": 0, "max_rooms": 40}, "max_rooms"), ({"seed": 0, "min_rooms": 8, "max_rooms": 5}, "min_rooms")]:
        with pytest.raises(ValueError, match=field):
            generate_scene(**kwargs)


def test_scene_ids():
    assert generate_scene(42).scene_id == "scene_00042"
    assert generate_scene(42, scene_id="flat").scene_id == "flat"


def test_deterministic():
    np.random.seed(1)
    a = generate_scene(123)
    np.random.seed(2)  # the global RNG plays no part
    b = generate_scene(123)
    assert a == b and a.to_dict() == b.to_dict()
    assert a.cells.tobytes() == b.cells.tobytes() and a.room_ids.tobytes() == b.room_ids.tobytes()
    dicts = [json.dumps(generate_scene(s).to_dict() | {"scene_id": "", "seed": 0}) for s in range(10)]
    assert len(set(dicts)) == 10


@pytest.mark.slow  # absolute time on an idle machine: not in the default suite, where load makes it flaky
def test_generation_is_fast():
    t0 = time.perf_counter()
    for s in range(1000, 1020):
        generate_scene(s)
    assert (time.perf_counter() - t0) / 20 < 0.2


def test_datasets_do_not_import_torch():
    code = "import sys, vlarena.datasets; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# ---- navigation on hand-made scenes ----------------------------------------------------------
def room_scene(cells_rows: int = 10, cols: int = 12, objects: tuple[SceneObject, ...] = ()) -> Scene:
    """A walled rectangle of (rows-2) x (cols-2) floor cells."""
    cells = np.full((cells_rows, cols), WALL, dtype=np.uint8)
    cells[1:-1, 1:-1] = FLOOR
    room_ids = np.full(cells.shape, -1, dtype=np.int16)
    room_ids[1:-1, 1:-1] = 0
    return Scene("hand", 0, 0.25, 2.7, cells, room_ids, [Room(0, "kitchen", (1, 1, cells_rows - 1, cols - 1))], [],
                 list(objects))


def obj(k: int, shape: str, center, half) -> SceneObject:
    return SceneObject(k, "fridge" if shape == "box" else "plant", "white" if shape == "box" else "green", shape,
                       center, half, (0.0, 1.0), 0)


def test_object_distance_box_and_cylinder():
    box = obj(0, "box", (1.0, 1.0), (0.5, 0.25))
    cyl = obj(1, "cylinder", (3.0, 1.0), (0.5, 0.5))
    assert object_distance(box, 1.2, 1.1) == 0.0  # inside
    assert object_distance(box, 2.0, 1.0) == pytest.approx(0.5)
    assert object_distance(box, 2.5, 2.25) == pytest.approx(math.hypot(1.0, 1.0))  # from the corner
    assert object_distance(cyl, 3.0, 2.5) == pytest.approx(1.0)
    assert object_distance(cyl, 3.1, 1.0) == 0.0
    d = object_distance(((box.center, cyl.center), (box.half_extents, cyl.half_extents), ("box", "cylinder")),
                        np.array([2.0, 3.0]), np.array([1.0, 2.5]))
    assert d.shape == (2, 2)
    np.testing.assert_allclose(d, [[0.5, math.hypot(1.5, 1.25)], [0.5, 1.0]])


def test_free_space_of_an_empty_room():
    s = room_scene()
    free = free_space(s)
    expected = np.zeros(s.shape, dtype=bool)
    expected[2:-2, 2:-2] = True  # cells touching a wall (also diagonally) are within 0.25 m of it
    assert (free == expected).all()
    assert (free_space(s, clearance=0.0) == (s.cells == FLOOR)).all()
    assert free_space(s, clearance=0.4).sum() == (10 - 6) * (12 - 6)


def test_free_space_around_objects():
    # a 0.5 m box centred on the corner between cells: blocks cell centres closer than 0.25 m
    s = room_scene(objects=(obj(0, "box", (1.5, 1.25), (0.25, 0.25)),))
    free = free_space(s)
    ys, xs = np.indices(s.shape)
    d = object_distance(s.objects[0], (xs + 0.5) * 0.25, (ys + 0.5) * 0.25)
    assert (free == (free_space(room_scene()) & (d >= NAV_CLEARANCE))).all()
    assert not free[4:6, 5].any() and free[4, 8]


def test_navigable_mask_keeps_the_largest_component():
    s = room_scene(cells_rows=12, cols=20)
    s.cells[:, 7] = WALL  # split into a small west part and a big east part
    s.room_ids[:, 7] = -1
    free = free_space(s)
    assert not is_connected(free)
    nav = navigable_mask(s)
    assert is_connected(nav)
    assert nav[:, 8:].sum() == nav.sum() > 0 and free[:, :7].any()
    assert not is_connected(np.zeros((3, 3), dtype=bool))


def test_object_goal_cells():
    s = room_scene(cells_rows=14, cols=14, objects=(obj(0, "cylinder", (1.75, 1.75), (0.2, 0.2)),))
    goal = object_goal_cells(s, [0])
    ii, jj = np.nonzero(goal)
    d = np.hypot((jj + 0.5) * 0.25 - 1.75, (ii + 0.5) * 0.25 - 1.75) - 0.2
    assert len(ii) > 0 and (d <= 0.75).all() and (d >= NAV_CLEARANCE).all()
    assert (goal <= navigable_mask(s)).all()
    assert object_goal_cells(s, [0], radius=0.3).sum() < goal.sum()
    with pytest.raises(ValueError, match="object id 3"):
        object_goal_cells(s, [3])


# ---- the JSON file format --------------------------------------------------------------------
def test_json_round_trip(tmp_path):
    s = generate_scene(7)
    path = tmp_path / "scenes" / "s7.json"
    s.save(path)
    s.save(path)  # overwriting is atomic too
    loaded = Scene.load(path)
    assert loaded == s and loaded.to_dict() == s.to_dict()
    assert loaded.cells.dtype == np.uint8 and (loaded.cells == s.cells).all()
    assert (loaded.room_ids == s.room_ids).all() and loaded.objects == s.objects and loaded.doors == s.doors
    assert Scene.from_dict(s.to_dict()) == s
    assert sorted(p.name for p in path.parent.iterdir()) == ["s7.json"]  # no temp files left


def corrupt(data: dict, what: str) -> str | dict:
    if what == "version":
        data["version"] = 99
    elif what == "category":
        data["objects"][0]["category"] = "unicorn"
    elif what == "row":
        data["cells"][3] = data["cells"][3][:-1]
    elif what == "missing":
        del data["objects"][1]["z_range"]
    elif what == "door":
        data["doors"][0]["cells"][0] = ["a", 1]
    elif what == "room":
        data["rooms"][0] = [1, 2]
    return data


@pytest.mark.parametrize("what, field", [
    ("truncated", None),
    ("version", "version"),
    ("category", "objects[0].category"),
    ("row", "cells"),
    ("missing", "objects[1].z_range"),
    ("door", "doors[0].cells"),
    ("room", "rooms[0]"),
])
def test_corrupt_files_name_the_file_and_field(tmp_path, what, field):
    s = generate_scene(3)
    path = tmp_path / f"bad_{what}.json"
    if what == "truncated":
        s.save(path)
        path.write_text(path.read_text()[:500])
    else:
        path.write_text(json.dumps(corrupt(json.loads(json.dumps(s.to_dict())), what)))
    with pytest.raises(ValueError) as err:
        Scene.load(path)
    message = str(err.value)
    assert str(path) in message
    if field is not None:
        assert f"'{field}'" in message
