"""Furnishing a floor plan: objects by room type, placed so that navigation stays possible (numpy only).

Rules (see also `vlarena.datasets.navigation` for free space and goal cells):

- Each room type has a short list of typical objects tried in order (kitchens always get a
  fridge, bedrooms a bed, bathrooms a toilet: a scene where these do not fit is re-planned),
  some with companions (chairs around a dining table, a chair at a desk, nightstands beside a
  bed), then random extras from the categories allowed in that room type (`Category.rooms`),
  without repeating a category, up to 2-6 objects per room (1-3 in hallways).
- Sizes are drawn uniformly from the category ranges (centimetre resolution), the top height
  jittered by up to 8 %, the colour from `Category.colours`.
- `against_wall` boxes stand flush against one of the room's four walls: `size` runs along the
  wall and `depth` away from it (half extents swapped against a west/east wall). Bathtubs lie
  with their long side along the wall. Other objects stand free, at least `FREE_WALL_GAP` from
  walls and `FREE_OBJECT_GAP` from other objects, in either orientation.
- No object footprint overlaps another one, a wall, or the keep-out zone in front of a door: the
  door opening widened by `DOOR_SIDE_MARGIN` on each side and `DOOR_CLEAR` deep on both sides.
- A placement is kept only if, afterwards, the free space is still one 4-connected component,
  its room keeps at least `ROOM_FREE_FRACTION` of its free cells, and every object placed so far
  still has a free cell within `GOAL_RADIUS` of its footprint.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from vlarena.datasets.catalog import CATEGORIES, CATEGORY_BY_NAME, Category
from vlarena.datasets.layout import Plan
from vlarena.datasets.navigation import GOAL_RADIUS, NAV_CLEARANCE, object_window, wall_free_space
from vlarena.datasets.scene import SceneObject

DOOR_CLEAR = 0.8  # metres kept clear in front of a door opening, on both sides
DOOR_SIDE_MARGIN = 0.1  # metres the keep-out zone extends past each end of the opening
FREE_WALL_GAP = 0.3  # metres between a free-standing object and the walls
FREE_OBJECT_GAP = 0.3  # metres between a free-standing object and other objects
WALL_OBJECT_GAP = 0.05  # metres between an against-wall object and other objects
COMPANION_GAP = 0.05  # metres between a chair or nightstand and its table, desk or bed
ROOM_FREE_FRACTION = 0.3
MAX_PER_ROOM = 6
SAMPLES = 15  # placement tries per object (3x for the objects a room type must have)
EPS = 1e-9

TYPICAL: dict[str, tuple[tuple[str, float], ...]] = {
    "kitchen": (("fridge", 1.0), ("stove", 0.8), ("counter", 0.6), ("sink", 0.5)),
    "bedroom": (("bed", 1.0), ("wardrobe", 0.5)),
    "bathroom": (("toilet", 1.0), ("sink", 0.9), ("bathtub|shower", 0.75)),
    "living_room": (("sofa", 0.95), ("coffee_table", 0.6), ("tv_stand", 0.5)),
    "dining_room": (("dining_table", 0.95),),
    "office": (("desk", 0.95), ("bookshelf", 0.5)),
    "laundry": (("washing_machine", 0.95), ("dryer", 0.7)),
    "closet": (("wardrobe", 0.7), ("dresser", 0.4)),
    "hallway": (("shoe_rack", 0.6),),
}
REQUIRED: dict[str, str] = {"kitchen": "fridge", "bedroom": "bed", "bathroom": "toilet"}
LONG_SIDE_ALONG_WALL = ("bathtub",)
SIDES = ("S", "N", "W", "E")  # the wall at low y, high y, low x, high x

Box = tuple[float, float, float, float]  # (x0, y0, x1, y1)


def _aabb(center: tuple[float, float], half: tuple[float, float]) -> Box:
    return center[0] - half[0], center[1] - half[1], center[0] + half[0], center[1] + half[1]


def _overlap(a: Box, b: Box, gap: float = 0.0) -> bool:
    return a[0] < b[2] + gap - EPS and b[0] < a[2] + gap - EPS and a[1] < b[3] + gap - EPS and b[1] < a[3] + gap - EPS


class Furnisher:
    """Places objects into a plan one by one, keeping the navigation invariants (see module doc)."""

    def __init__(self, rng: np.random.Generator, plan: Plan, cell_size: float, wall_height: float):
        self.rng = rng
        self.plan = plan
        self.cs = cell_size
        self.wall_height = wall_height
        self.shape = plan.cells.shape
        self.free = wall_free_space(plan.cells, cell_size, NAV_CLEARANCE)
        flat_rooms = plan.room_ids.ravel()
        self.room_cells = [np.flatnonzero(flat_rooms == r.id) for r in plan.rooms]
        base = [int(self.free.flat[idx].sum()) for idx in self.room_cells]
        self.min_free = [max(1, math.ceil(ROOM_FREE_FRACTION * b)) for b in base]
        self.valid = min(base, default=0) > 0 and ndimage.label(self.free)[1] == 1
        self.keepouts = [self._keepout(d.cells) for d in plan.doors]
        self.objects: list[SceneObject] = []
        self.boxes: list[Box] = []
        self.goal_idx: list[np.ndarray] = []
        self.sides: list[str | None] = []

    # ---- geometry helpers --------------------------------------------------------------------
    def _keepout(self, cells: tuple[tuple[int, int], ...]) -> Box:
        ii = [c[0] for c in cells]
        jj = [c[1] for c in cells]
        cs = self.cs
        if len(set(ii)) == 1:  # opening in a horizontal wall: clear along y
            return (min(jj) * cs - DOOR_SIDE_MARGIN, ii[0] * cs - DOOR_CLEAR,
                    (max(jj) + 1) * cs + DOOR_SIDE_MARGIN, (ii[0] + 1) * cs + DOOR_CLEAR)
        return (jj[0] * cs - DOOR_CLEAR, min(ii) * cs - DOOR_SIDE_MARGIN,
                (jj[0] + 1) * cs + DOOR_CLEAR, (max(ii) + 1) * cs + DOOR_SIDE_MARGIN)

    def room_box(self, room: int) -> Box:
        i0, j0, i1, j1 = self.plan.rooms[room].bounds
        return j0 * self.cs, i0 * self.cs, j1 * self.cs, i1 * self.cs

    def _uniform(self, lo: float, hi: float) -> float | None:
        """A centimetre-rounded position in [lo, hi] (None when the interval is empty)."""
        if hi < lo - EPS:
            return None
        return float(min(max(round(float(self.rng.uniform(lo, max(lo, hi))), 2), lo), hi))

    def draw_size(self, cat: Category, shrink: float = 1.0) -> tuple[float, float]:
        """(along-wall width, depth) in metres (a cylinder's diameter twice), drawn from the lowest
        `shrink` fraction of the category's ranges."""
        lo, hi = cat.size
        w = round(lo + float(self.rng.random()) * (hi - lo) * shrink, 2)
        if cat.shape == "cylinder":
            return w, w
        lo, hi = cat.depth
        d = round(lo + float(self.rng.random()) * (hi - lo) * shrink, 2)
        return (d, w) if cat.name in LONG_SIDE_ALONG_WALL else (w, d)

    # ---- the check-and-commit step -------------------------------------------------------------
    def try_add(self, room: int, cat: Category, center: tuple[float, float], half: tuple[float, float],
                gap: float, side: str | None) -> bool:
        box = _aabb(center, half)
        rb = self.room_box(room)
        if box[0] < rb[0] - EPS or box[1] < rb[1] - EPS or box[2] > rb[2] + EPS or box[3] > rb[3] + EPS:
            return False
        if any(_overlap(box, k) for k in self.keepouts) or any(_overlap(box, b, gap) for b in self.boxes):
            return False
        cyl = cat.shape == "cylinder"
        rs, cs_, dist = object_window(center, half, cyl, NAV_CLEARANCE, self.shape, self.cs)
        free = self.free.copy()
        free[rs, cs_] &= ~(dist < NAV_CLEARANCE)
        if free.flat[self.room_cells[room]].sum() < self.min_free[room]:
            return False
        gr, gc, gdist = object_window(center, half, cyl, GOAL_RADIUS, self.shape, self.cs)
        ii, jj = np.nonzero(gdist <= GOAL_RADIUS)
        goal = np.ravel_multi_index((ii + gr.start, jj + gc.start), self.shape)
        if not free.flat[goal].any() or not all(free.flat[g].any() for g in self.goal_idx):
            return False
        if ndimage.label(free)[1] != 1:
            return False
        bottom, top = cat.height
        top = round(min(top * float(self.rng.uniform(0.92, 1.08)), self.wall_height - 0.05), 2)
        colour = cat.colours[int(self.rng.integers(len(cat.colours)))]
        self.objects.append(SceneObject(len(self.objects), cat.name, colour, cat.shape, center, half,
                                        (float(bottom), float(max(top, bottom + 0.05))), room))
        self.free = free
        self.boxes.append(box)
        self.goal_idx.append(goal)
        self.sides.append(side)
        return True

    # ---- placement strategies ------------------------------------------------------------------
    def place_against_wall(self, room: int, cat: Category, size: tuple[float, float]) -> bool:
        w, d = size
        x0, y0, x1, y1 = self.room_box(room)
        side = SIDES[int(self.rng.integers(4))]
        corner = self.rng.random() < 0.35
        if side in ("S", "N"):
            hx, hy = w / 2, d / 2
            cx = self._along(x0 + hx, x1 - hx, corner)
            cy = y0 + hy if side == "S" else y1 - hy
        else:
            hx, hy = d / 2, w / 2
            cy = self._along(y0 + hy, y1 - hy, corner)
            cx = x0 + hx if side == "W" else x1 - hx
        if cx is None or cy is None:
            return False
        return self.try_add(room, cat, (cx, cy), (hx, hy), WALL_OBJECT_GAP, side)

    def _along(self, lo: float, hi: float, corner: bool) -> float | None:
        if hi < lo - EPS:
            return None
        if corner:
            return lo if self.rng.random() < 0.5 else hi
        return self._uniform(lo, hi)

    def place_free(self, room: int, cat: Category, size: tuple[float, float]) -> bool:
        w, d = size
        hx, hy = (w / 2, d / 2) if self.rng.random() < 0.5 else (d / 2, w / 2)
        x0, y0, x1, y1 = self.room_box(room)
        m = FREE_WALL_GAP
        cx = self._uniform(x0 + hx + m, x1 - hx - m)
        cy = self._uniform(y0 + hy + m, y1 - hy - m)
        if cx is None or cy is None:
            return False
        return self.try_add(room, cat, (cx, cy), (hx, hy), FREE_OBJECT_GAP, None)

    def place(self, room: int, cat: Category, samples: int) -> bool:
        for k in range(samples):
            size = self.draw_size(cat, shrink=1.0 if k < samples // 2 else 0.3)  # struggling: go small
            ok = self.place_against_wall(room, cat, size) if cat.against_wall else self.place_free(room, cat, size)
            if ok:
                return True
        return False

    def companions(self, room: int, parent: int, count: int) -> None:
        """Up to `count` chairs around a dining table or at a desk, or nightstands beside a bed (never
        more than `MAX_PER_ROOM` objects in the room)."""
        p = self.objects[parent]
        (cx, cy), (hx, hy) = p.center, p.half_extents
        side = self.sides[parent]
        g = COMPANION_GAP
        slots: list[tuple[str, float, float]] = []  # (category, u, v): where around the parent
        if p.category == "dining_table":
            long_x = hx >= hy
            along, across = (hx, hy) if long_x else (hy, hx)
            offsets = (-along / 2, along / 2) if along >= 0.7 else (0.0,)
            for sgn in (-1.0, 1.0):
                for off in offsets:
                    slots.append(("chair", off, sgn * across))
            if count > len(slots):
                slots += [("chair", sgn * along, 0.0) for sgn in (-1.0, 1.0)]
        elif p.category == "desk" and side is not None:
            slots.append(("chair", 0.0, 0.0))
        elif p.category == "bed" and side is not None:
            slots += [("nightstand", -1.0, 0.0), ("nightstand", 1.0, 0.0)]
        order = [int(k) for k in self.rng.permutation(len(slots))]
        placed = 0
        for k in order:
            if placed >= count or sum(o.room == room for o in self.objects) >= MAX_PER_ROOM:
                return
            name, u, v = slots[k]
            cat = CATEGORY_BY_NAME[name]
            w, d = self.draw_size(cat)
            if p.category == "dining_table":
                ch = max(w, d) / 2
                if abs(v) > 0:  # a long side
                    c = (cx + u, cy + v + math.copysign(g + ch, v)) if hx >= hy else (cx + v + math.copysign(g + ch, v), cy + u)
                else:  # an end
                    c = (cx + u + math.copysign(g + ch, u), cy) if hx >= hy else (cx, cy + u + math.copysign(g + ch, u))
                half = (ch, ch)
            elif p.category == "desk":
                ch = max(w, d) / 2
                out = {"S": (0.0, 1.0), "N": (0.0, -1.0), "W": (1.0, 0.0), "E": (-1.0, 0.0)}[side]
                c = (cx + out[0] * (hx + g + ch), cy + out[1] * (hy + g + ch))
                half = (ch, ch)
            else:  # nightstand beside the bed, against the same wall
                if side in ("S", "N"):
                    half = (w / 2, d / 2)
                    c = (cx + u * (hx + g + w / 2), (cy - hy + d / 2) if side == "S" else (cy + hy - d / 2))
                else:
                    half = (d / 2, w / 2)
                    c = ((cx - hx + d / 2) if side == "W" else (cx + hx - d / 2), cy + u * (hy + g + w / 2))
            if self.try_add(room, cat, c, half, g, side if name == "nightstand" else None):
                placed += 1

    # ---- a whole room --------------------------------------------------------------------------
    def furnish_room(self, room: int) -> bool:
        """Place a room's objects; False when an object its type must have does not fit."""
        r = self.plan.rooms[room]
        x0, y0, x1, y1 = self.room_box(room)
        area = (x1 - x0) * (y1 - y0)
        if r.type == "hallway":
            cap = int(min(3, 1 + int(max(x1 - x0, y1 - y0) > 5.0) + self.rng.integers(2)))
        elif r.type == "closet":
            cap = int(2 + self.rng.integers(2))
        else:
            cap = int(np.clip(round(area / 5.0) + self.rng.integers(2), 2, MAX_PER_ROOM))

        def count() -> int:
            return sum(o.room == room for o in self.objects)

        present: set[str] = set()
        for names, prob in TYPICAL.get(r.type, ()):
            if count() >= cap:
                break
            options = names.split("|")
            name = options[int(self.rng.integers(len(options)))]
            required = REQUIRED.get(r.type) == name
            if not required and self.rng.random() >= prob:
                continue
            if self.place(room, CATEGORY_BY_NAME[name], SAMPLES * (3 if required else 1)):
                present.add(name)
                parent = len(self.objects) - 1
                if name == "dining_table":
                    self.companions(room, parent, int(self.rng.integers(2, 5)))
                elif name == "desk" and self.rng.random() < 0.9:
                    self.companions(room, parent, 1)
                elif name == "bed" and self.rng.random() < 0.8:
                    self.companions(room, parent, int(self.rng.integers(1, 3)))
                present.update(o.category for o in self.objects if o.room == room)
            elif required:
                return False
        pool = [c for c in CATEGORIES if r.type in c.rooms and c.name not in present]
        for k in self.rng.permutation(len(pool)):
            if count() >= cap:
                break
            cat = pool[int(k)]
            if cat.name in present:
                continue
            if self.place(room, cat, SAMPLES):
                present.add(cat.name)
        return True
