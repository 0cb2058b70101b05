"""Apartment floor plans: rooms by binary space partitioning, room types and doors (numpy only).

Grid conventions are those of `vlarena.datasets.scene` (row i is y, column j is x, cell 0.25 m).
A plan is a rectangle of floor inside a one-cell outer wall ring, cut along grid lines into
rectangular rooms separated by one-cell walls:

- Rooms are at least `MIN_SIDE` cells (2.25 m) on each side; a hallway, when there is one, is a
  `HALL_WIDTHS` cells (1.25-1.5 m) wide corridor across the whole apartment, cut first.
- L-shaped apartments: a corner room is dropped (its cells become OUTSIDE, so are the wall cells
  that no longer touch any floor).
- Two rooms are adjacent when they share a straight wall segment with floor on both sides at
  least `DOOR_WIDTH + 2 * DOOR_MARGIN` cells long. Doors are `DOOR_WIDTH` cells (1.0 m) opened in
  such a segment at least `DOOR_MARGIN` wall cells away from each end; the opened cells become
  FLOOR with room id -1. Doors form a random spanning tree of the adjacency graph (hubs such as
  the hallway and living room preferred, bathrooms, closets and laundries kept as leaves) plus a
  few extra doors between non-leaf rooms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vlarena.datasets.scene import FLOOR, OUTSIDE, WALL, Door, Room

CELL_SIZE = 0.25
MIN_SIDE = 9  # cells: 2.25 m
HALL_WIDTHS = (5, 6)  # cells: 1.25 m or 1.5 m
DOOR_WIDTH = 4  # cells: 1.0 m
DOOR_MARGIN = 1  # wall cells kept at each end of a shared wall segment
MIN_GRID, MAX_GRID = 32, 100  # grid side in cells incl. the outer walls: 8 m .. 25 m
BEDROOM_MIN_SIDE = 11  # cells (2.75 m): rooms narrower than this rarely fit a bed and a way past it
TERMINAL_TYPES = ("bathroom", "closet", "laundry")  # rooms entered from one door only
HUB_TYPES = ("hallway", "living_room")
EXTRA_DOOR_PROB = 0.25

Rect = tuple[int, int, int, int]  # (i0, j0, i1, j1), floor cells i0 <= i < i1, j0 <= j < j1


@dataclass
class Plan:
    cells: np.ndarray  # uint8 [rows, cols]
    room_ids: np.ndarray  # int16 [rows, cols]
    rooms: list[Room]
    doors: list[Door]


@dataclass(frozen=True)
class Adjacency:
    a: int
    b: int
    vertical: bool  # True: the shared wall is a column (rooms side by side along x)
    line: int  # the wall's row (horizontal wall) or column (vertical wall)
    lo: int  # floor overlap along the wall: lo <= k < hi
    hi: int


def _h(r: Rect) -> int:
    return r[2] - r[0]


def _w(r: Rect) -> int:
    return r[3] - r[1]


def _area(r: Rect) -> int:
    return _h(r) * _w(r)


def _short(r: Rect) -> int:
    return min(_h(r), _w(r))


def _split_at(rng: np.random.Generator, length: int) -> int | None:
    """Length of the first part when cutting `length` cells into two parts >= MIN_SIDE and a wall."""
    lo, hi = MIN_SIDE, length - MIN_SIDE - 1
    if hi < lo:
        return None
    want = int(round(length * rng.uniform(0.28, 0.72)))
    return int(min(max(want, lo), hi))


def _bsp(rng: np.random.Generator, rows: int, cols: int, n_rooms: int, with_hall: bool) -> tuple[list[Rect], int]:
    """Leaves of a BSP of the interior into `n_rooms` rooms (empty list when it does not fit) and the
    index of the hallway leaf (-1 when none)."""
    interior: Rect = (1, 1, rows - 1, cols - 1)
    fixed: list[Rect] = []
    leaves: list[Rect] = [interior]
    if with_hall:
        width = int(HALL_WIDTHS[rng.integers(len(HALL_WIDTHS))])
        horizontal = cols >= rows  # the corridor runs along the long side
        span = _h(interior) if horizontal else _w(interior)
        lo, hi = MIN_SIDE, span - width - 2 - MIN_SIDE  # first side's length
        if hi >= lo:
            first = int(min(max(round(span * rng.uniform(0.35, 0.65) - width / 2), lo), hi))
            if horizontal:
                a, h0, h1 = 1 + first, 2 + first, 2 + first + width
                leaves = [(1, 1, a, cols - 1), (h1 + 1, 1, rows - 1, cols - 1)]
                fixed = [(h0, 1, h1, cols - 1)]
            else:
                a, h0, h1 = 1 + first, 2 + first, 2 + first + width
                leaves = [(1, 1, rows - 1, a), (1, h1 + 1, rows - 1, cols - 1)]
                fixed = [(1, h0, rows - 1, h1)]
    while len(leaves) + len(fixed) < n_rooms:
        splittable = [k for k, r in enumerate(leaves) if max(_h(r), _w(r)) >= 2 * MIN_SIDE + 1]
        if not splittable:
            return [], -1
        weights = np.array([_area(leaves[k]) ** 2 for k in splittable], dtype=np.float64)
        k = splittable[int(rng.choice(len(splittable), p=weights / weights.sum()))]
        r = leaves.pop(k)
        can_rows = _h(r) >= 2 * MIN_SIDE + 1
        can_cols = _w(r) >= 2 * MIN_SIDE + 1
        if can_rows and can_cols:  # cut across the long side; either way when nearly square
            longer_rows = _h(r) >= _w(r)
            square = max(_h(r), _w(r)) < 1.3 * min(_h(r), _w(r))
            cut_rows = longer_rows if not square or rng.random() < 0.5 else not longer_rows
        else:
            cut_rows = can_rows
        if cut_rows:
            first = _split_at(rng, _h(r))
            assert first is not None
            leaves += [(r[0], r[1], r[0] + first, r[3]), (r[0] + first + 1, r[1], r[2], r[3])]
        else:
            first = _split_at(rng, _w(r))
            assert first is not None
            leaves += [(r[0], r[1], r[2], r[1] + first), (r[0], r[1] + first + 1, r[2], r[3])]
    rects = sorted(leaves + fixed)  # rooms numbered in row-major order of their corner
    hall = rects.index(fixed[0]) if fixed else -1
    return rects, hall


def adjacencies(rects: list[Rect]) -> list[Adjacency]:
    """Pairs of rooms that share a wall long enough for a door, in a deterministic order."""
    need = DOOR_WIDTH + 2 * DOOR_MARGIN
    out = []
    for a, ra in enumerate(rects):
        for b in range(a + 1, len(rects)):
            rb = rects[b]
            for first, second in ((ra, rb), (rb, ra)):
                if first[2] + 1 == second[0]:  # horizontal wall at row first[2]
                    lo, hi = max(first[1], second[1]), min(first[3], second[3])
                    if hi - lo >= need:
                        out.append(Adjacency(a, b, False, first[2], lo, hi))
                if first[3] + 1 == second[1]:  # vertical wall at column first[3]
                    lo, hi = max(first[0], second[0]), min(first[2], second[2])
                    if hi - lo >= need:
                        out.append(Adjacency(a, b, True, first[3], lo, hi))
    return out


def _connected(n: int, edges: list[Adjacency]) -> bool:
    seen = {0} if n else set()
    stack = [0] if n else []
    while stack:
        u = stack.pop()
        for e in edges:
            for x, y in ((e.a, e.b), (e.b, e.a)):
                if x == u and y not in seen:
                    seen.add(y)
                    stack.append(y)
    return len(seen) == n


def _drop_corner(rng: np.random.Generator, rects: list[Rect], rows: int, cols: int) -> tuple[list[Rect], Rect] | None:
    corner = [k for k, r in enumerate(rects)
              if (r[0] == 1 or r[2] == rows - 1) and (r[1] == 1 or r[3] == cols - 1)]
    for k in rng.permutation(corner):
        rest = rects[:k] + rects[k + 1:]
        if _connected(len(rest), adjacencies(rest)):
            return rest, rects[k]
    return None


def assign_types(rng: np.random.Generator, rects: list[Rect], hall: int) -> list[str]:
    """Room types by size and need. The largest room is the living room, the largest remaining room
    wide enough for a bed the bedroom, the smallest the bathroom and a random one of the larger
    half of the rest the kitchen (with fewer than 4 rooms: living room, bathroom, kitchen in that
    order). Further small rooms become closets/laundries/bathrooms, bigger ones
    bedrooms/offices/dining rooms (at most one dining room and laundry, two offices)."""
    n = len(rects)
    types = [""] * n
    if hall >= 0:
        types[hall] = "hallway"
    order = sorted((k for k in range(n) if k != hall), key=lambda k: (-_area(rects[k]), k))
    if not order:
        return types
    types[order[0]] = "living_room"
    rest = order[1:]
    if len(rest) >= 3:
        big = [k for k in rest if _short(rects[k]) >= BEDROOM_MIN_SIDE] or rest
        types[big[0]] = "bedroom"
        rest.remove(big[0])
    if rest:
        types[rest.pop()] = "bathroom"
    if rest:
        half = rest[: (len(rest) + 1) // 2]
        kitchen = half[int(rng.integers(len(half)))]
        types[kitchen] = "kitchen"
        rest.remove(kitchen)
    limits = {"dining_room": 1, "laundry": 1, "office": 2}
    counts = dict.fromkeys(limits, 0)
    for k in rest:
        area_m2 = _area(rects[k]) * CELL_SIZE**2
        short = _short(rects[k])
        if area_m2 < 8.0 or short < 10:
            options = {"closet": 0.35, "laundry": 0.35, "bathroom": 0.3}
        elif area_m2 < 13.0:
            options = {"bedroom": 0.4, "office": 0.3, "dining_room": 0.2, "bathroom": 0.1}
        else:
            options = {"bedroom": 0.4, "dining_room": 0.35, "office": 0.25}
        if short < BEDROOM_MIN_SIDE:
            options.pop("bedroom", None)
        options = {t: p for t, p in options.items() if counts.get(t, 0) < limits.get(t, n)}
        if not options:
            options = {"bedroom": 1.0} if short >= BEDROOM_MIN_SIDE else {"closet": 1.0}
        names = list(options)
        p = np.array([options[t] for t in names], dtype=np.float64)
        t = names[int(rng.choice(len(names), p=p / p.sum()))]
        types[k] = t
        if t in counts:
            counts[t] += 1
    return types


def _door_tree(rng: np.random.Generator, n: int, types: list[str], edges: list[Adjacency]) -> list[Adjacency]:
    """A random spanning tree grown from a hub room, preferring to grow from hubs and never from
    terminal rooms (unless nothing else is left), plus a few extra doors between non-terminal rooms."""
    if n <= 1:
        return []
    root = next((k for k in range(n) if types[k] == "hallway"), None)
    if root is None:
        root = next((k for k in range(n) if types[k] == "living_room"), 0)
    in_tree = [False] * n
    in_tree[root] = True
    chosen: list[int] = []
    for _ in range(n - 1):
        cands, weights = [], []
        for idx, e in enumerate(edges):
            if in_tree[e.a] != in_tree[e.b]:
                src = e.a if in_tree[e.a] else e.b
                w = 0.0 if types[src] in TERMINAL_TYPES else 3.0 if types[src] in HUB_TYPES else 1.0
                cands.append(idx)
                weights.append(w)
        if not cands:
            raise RuntimeError("room adjacency graph is not connected")  # the plan is checked before
        p = np.array(weights, dtype=np.float64)
        p = p / p.sum() if p.sum() > 0 else np.full(len(p), 1.0 / len(p))
        idx = cands[int(rng.choice(len(cands), p=p))]
        chosen.append(idx)
        in_tree[edges[idx].a] = in_tree[edges[idx].b] = True
    tree = set(chosen)
    for idx, e in enumerate(edges):
        if idx in tree or types[e.a] in TERMINAL_TYPES or types[e.b] in TERMINAL_TYPES:
            continue
        if rng.random() < EXTRA_DOOR_PROB:
            chosen.append(idx)
    return [edges[idx] for idx in sorted(chosen)]


def make_plan(rng: np.random.Generator, n_rooms: int) -> Plan:
    """A floor plan with exactly `n_rooms` typed rooms connected by doors."""
    with_hall = n_rooms >= 6 and rng.random() < 0.5
    drop = not with_hall and n_rooms >= 3 and rng.random() < 0.3
    per_room = rng.uniform(9.0, 24.0)  # m^2 of interior per room, walls included
    aspect = float(np.exp(rng.uniform(-0.4, 0.4)))
    grow = 1.0
    for attempt in range(40):
        if attempt == 20:
            drop = False  # give up on an L-shape rather than on the room count
        leaves = n_rooms + (1 if drop else 0)
        area = leaves * per_room * grow
        width, depth = np.sqrt(area * aspect), np.sqrt(area / aspect)
        cols = int(np.clip(round(width / CELL_SIZE) + 2, MIN_GRID, MAX_GRID))
        rows = int(np.clip(round(depth / CELL_SIZE) + 2, MIN_GRID, MAX_GRID))
        if with_hall:
            if cols >= rows:
                rows = min(MAX_GRID, rows + 6)
            else:
                cols = min(MAX_GRID, cols + 6)
        rects, hall = _bsp(rng, rows, cols, leaves, with_hall)
        if not rects:
            grow *= 1.12
            continue
        if with_hall and hall < 0:
            with_hall = False
            continue
        dropped = None
        if drop:
            res = _drop_corner(rng, rects, rows, cols)
            if res is None:
                continue
            rects, dropped = res
            hall = -1
        edges = adjacencies(rects)
        if not _connected(len(rects), edges):
            continue
        return _build(rng, rows, cols, rects, hall, dropped, edges)
    raise RuntimeError(f"could not lay out {n_rooms} rooms within {MAX_GRID * CELL_SIZE} m")


def _build(rng: np.random.Generator, rows: int, cols: int, rects: list[Rect], hall: int, dropped: Rect | None,
           edges: list[Adjacency]) -> Plan:
    cells = np.full((rows, cols), WALL, dtype=np.uint8)
    room_ids = np.full((rows, cols), -1, dtype=np.int16)
    for k, (i0, j0, i1, j1) in enumerate(rects):
        cells[i0:i1, j0:j1] = FLOOR
        room_ids[i0:i1, j0:j1] = k
    if dropped is not None:
        i0, j0, i1, j1 = dropped
        cells[i0:i1, j0:j1] = OUTSIDE
        floor = np.pad(cells == FLOOR, 1)
        near_floor = np.zeros_like(floor)
        for di in (-1, 0, 1):
            for dj in (-1, 0, 1):
                near_floor[1:-1, 1:-1] |= floor[1 + di:rows + 1 + di, 1 + dj:cols + 1 + dj]
        cells[(cells == WALL) & ~near_floor[1:-1, 1:-1]] = OUTSIDE
    types = assign_types(rng, rects, hall)
    doors = []
    for e in _door_tree(rng, len(rects), types, edges):
        start = int(rng.integers(e.lo + DOOR_MARGIN, e.hi - DOOR_MARGIN - DOOR_WIDTH + 1))
        opened = tuple((k, e.line) if e.vertical else (e.line, k) for k in range(start, start + DOOR_WIDTH))
        for i, j in opened:
            cells[i, j] = FLOOR
            room_ids[i, j] = -1
        doors.append(Door((e.a, e.b), opened))
    rooms = [Room(k, types[k], tuple(int(v) for v in r)) for k, r in enumerate(rects)]
    return Plan(cells, room_ids, rooms, doors)
