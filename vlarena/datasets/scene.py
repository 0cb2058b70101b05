"""The scene data model and its JSON file format (version 1).

Frame: x east, y north, metres; heading 0 looks along +x and grows counter-clockwise.
Cell (i, j) of the grid covers x in [j*cell_size, (j+1)*cell_size] and y in
[i*cell_size, (i+1)*cell_size]; row i is y, column j is x.
`cells` holds 0 outside the apartment, 1 floor (rooms and door openings), 2 wall.
`room_ids` holds the id of the room a floor cell belongs to and -1 for door openings and
non-floor cells.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vlarena.datasets.catalog import CATEGORY_NAMES, COLOUR_NAMES, ROOM_TYPES, SHAPES
from vlarena.datasets.jsonio import write_json

SCENE_FORMAT_VERSION = 1
OUTSIDE, FLOOR, WALL = 0, 1, 2


@dataclass(frozen=True)
class Room:
    id: int
    type: str
    bounds: tuple[int, int, int, int]  # (i0, j0, i1, j1): floor cells i0 <= i < i1, j0 <= j < j1


@dataclass(frozen=True)
class Door:
    rooms: tuple[int, int]
    cells: tuple[tuple[int, int], ...]  # the wall cells opened, (i, j)


@dataclass(frozen=True)
class SceneObject:
    id: int
    category: str
    colour: str
    shape: str  # "box" (axis-aligned) or "cylinder"
    center: tuple[float, float]  # (x, y) metres
    half_extents: tuple[float, float]  # (hx, hy) metres; a cylinder has hx == hy == radius
    z_range: tuple[float, float]  # (bottom, top) metres above the floor
    room: int


@dataclass
class Scene:
    scene_id: str
    seed: int
    cell_size: float
    wall_height: float
    cells: np.ndarray  # uint8 [rows, cols]
    room_ids: np.ndarray  # int16 [rows, cols]
    rooms: list[Room] = field(default_factory=list)
    doors: list[Door] = field(default_factory=list)
    objects: list[SceneObject] = field(default_factory=list)

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.cells.shape[0]), int(self.cells.shape[1])

    @property
    def size_m(self) -> tuple[float, float]:
        """(width along x, depth along y) in metres."""
        return self.cells.shape[1] * self.cell_size, self.cells.shape[0] * self.cell_size

    def room_type_of(self, room_id: int) -> str:
        return self.rooms[room_id].type

    # ---- JSON -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "vlarena-scene",
            "version": SCENE_FORMAT_VERSION,
            "scene_id": self.scene_id,
            "seed": self.seed,
            "cell_size": self.cell_size,
            "wall_height": self.wall_height,
            "grid_shape": list(self.shape),
            "cells": ["".join(str(int(v)) for v in row) for row in self.cells],
            "room_ids": [[int(v) for v in row] for row in self.room_ids],
            "rooms": [asdict(r) for r in self.rooms],
            "doors": [asdict(d) for d in self.doors],
            "objects": [asdict(o) for o in self.objects],
        }

    @classmethod
    def from_dict(cls, data: Any, source: str = "<dict>") -> Scene:
        return _parse_scene(data, source)

    def save(self, path: str | Path) -> None:
        """Write the scene as JSON atomically (temp file in the same folder, then rename)."""
        write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> Scene:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e}); expected a vlarena scene file") from e
        return _parse_scene(data, str(path))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Scene):
            return NotImplemented
        return self.to_dict() == other.to_dict()


class _Checker:
    def __init__(self, source: str):
        self.source = source

    def fail(self, fieldname: str, msg: str) -> None:
        raise ValueError(f"{self.source}: field '{fieldname}' {msg}")

    def get(self, data: dict, key: str, types: type | tuple[type, ...], where: str = "") -> Any:
        name = f"{where}{key}"
        if not isinstance(data, dict):
            self.fail(where.rstrip(".") or "<root>", f"must be a JSON object, got {type(data).__name__}")
        if key not in data:
            self.fail(name, "is missing")
        value = data[key]
        if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
            self.fail(name, f"must be {_type_names(types)}, got {value!r}")
        accepted = (list, tuple) if types is list else types  # to_dict() holds tuples where JSON holds lists
        if not isinstance(value, accepted):
            self.fail(name, f"must be {_type_names(types)}, got {type(value).__name__} {value!r:.60}")
        return value

    def pair(self, data: dict, key: str, where: str, kind: type | tuple[type, ...] = (int, float)) -> tuple:
        value = self.get(data, key, list, where)
        if len(value) != 2 or not all(isinstance(v, kind) and not isinstance(v, bool) and math.isfinite(v)
                                      for v in value):
            self.fail(f"{where}{key}", f"must be a list of 2 finite numbers, got {value!r:.60}")
        return tuple(value)


def _type_names(types: type | tuple[type, ...]) -> str:
    types = types if isinstance(types, tuple) else (types,)
    return " or ".join(t.__name__ for t in types)


def _parse_scene(data: Any, source: str) -> Scene:
    c = _Checker(source)
    if not isinstance(data, dict):
        raise ValueError(f"{source}: a scene file must hold a JSON object, got {type(data).__name__}")
    if data.get("format") != "vlarena-scene":
        c.fail("format", f"must be 'vlarena-scene', got {data.get('format')!r}")
    version = c.get(data, "version", int)
    if version != SCENE_FORMAT_VERSION:
        c.fail("version", f"must be {SCENE_FORMAT_VERSION} (the version this vlarena reads), got {version}")
    rows, cols = c.pair(data, "grid_shape", "", int)
    if rows <= 0 or cols <= 0:
        c.fail("grid_shape", f"must hold two positive ints, got {[rows, cols]}")
    cell_rows = c.get(data, "cells", list)
    if len(cell_rows) != rows or any(not isinstance(r, str) or len(r) != cols for r in cell_rows):
        c.fail("cells", f"must be {rows} strings of {cols} characters (grid_shape)")
    if any(ch not in "012" for r in cell_rows for ch in r):
        c.fail("cells", "may only hold the characters 0 (outside), 1 (floor) and 2 (wall)")
    cells = np.array([[int(ch) for ch in r] for r in cell_rows], dtype=np.uint8)
    room_rows = c.get(data, "room_ids", list)
    if not all(isinstance(r, (list, tuple)) and all(isinstance(v, int) and not isinstance(v, bool) for v in r) for r in room_rows):
        c.fail("room_ids", f"must be a {rows}x{cols} list of ints")
    try:
        room_ids = np.array(room_rows, dtype=np.int16)
    except (ValueError, TypeError, OverflowError):
        c.fail("room_ids", f"must be a {rows}x{cols} list of ints")
    if room_ids.shape != (rows, cols):
        c.fail("room_ids", f"must be a {rows}x{cols} list of ints, got shape {room_ids.shape}")
    cell_size = float(c.get(data, "cell_size", (int, float)))
    wall_height = float(c.get(data, "wall_height", (int, float)))
    if cell_size <= 0:
        c.fail("cell_size", f"must be positive, got {cell_size}")
    if wall_height <= 0:
        c.fail("wall_height", f"must be positive, got {wall_height}")

    rooms = []
    for k, r in enumerate(c.get(data, "rooms", list)):
        w = f"rooms[{k}]."
        rtype = c.get(r, "type", str, w)
        if rtype not in ROOM_TYPES:
            c.fail(w + "type", f"must be one of {list(ROOM_TYPES)}, got {rtype!r}")
        bounds = c.get(r, "bounds", list, w)
        if len(bounds) != 4 or not all(isinstance(b, int) and not isinstance(b, bool) for b in bounds):
            c.fail(w + "bounds", f"must be 4 ints (i0, j0, i1, j1), got {bounds!r}")
        if not (0 <= bounds[0] < bounds[2] <= rows and 0 <= bounds[1] < bounds[3] <= cols):
            c.fail(w + "bounds", f"must satisfy 0 <= i0 < i1 <= {rows} and 0 <= j0 < j1 <= {cols}, got {bounds!r}")
        if c.get(r, "id", int, w) != k:
            c.fail(w + "id", f"must equal the room's position {k}")
        rooms.append(Room(k, rtype, tuple(bounds)))
    if room_ids.max(initial=-1) >= len(rooms) or room_ids.min(initial=-1) < -1:
        c.fail("room_ids", f"must hold -1 or a room id in [0, {len(rooms) - 1}]")
    if ((room_ids >= 0) & (cells != FLOOR)).any():
        c.fail("room_ids", "must be -1 on every cell that is not floor (cells '0' or '2')")

    doors = []
    for k, d in enumerate(c.get(data, "doors", list)):
        w = f"doors[{k}]."
        pair = c.pair(d, "rooms", w, int)
        if not all(0 <= p < len(rooms) for p in pair):
            c.fail(w + "rooms", f"must name two room ids in [0, {len(rooms) - 1}], got {list(pair)}")
        dcells = c.get(d, "cells", list, w)
        for cell in dcells:
            if not (isinstance(cell, (list, tuple)) and len(cell) == 2
                    and all(isinstance(v, int) and not isinstance(v, bool) for v in cell)
                    and 0 <= cell[0] < rows and 0 <= cell[1] < cols):
                c.fail(w + "cells", f"must hold [i, j] cells inside the {rows}x{cols} grid, got {cell!r}")
        doors.append(Door(tuple(pair), tuple(tuple(x) for x in dcells)))

    objects = []
    for k, o in enumerate(c.get(data, "objects", list)):
        w = f"objects[{k}]."
        if c.get(o, "id", int, w) != k:
            c.fail(w + "id", f"must equal the object's position {k}")
        cat = c.get(o, "category", str, w)
        if cat not in CATEGORY_NAMES:
            c.fail(w + "category", f"must be one of {list(CATEGORY_NAMES)}, got {cat!r}")
        colour = c.get(o, "colour", str, w)
        if colour not in COLOUR_NAMES:
            c.fail(w + "colour", f"must be one of {list(COLOUR_NAMES)}, got {colour!r}")
        shape = c.get(o, "shape", str, w)
        if shape not in SHAPES:
            c.fail(w + "shape", f"must be one of {list(SHAPES)}, got {shape!r}")
        center = c.pair(o, "center", w)
        half = c.pair(o, "half_extents", w)
        if min(half) <= 0:
            c.fail(w + "half_extents", f"must be positive, got {list(half)}")
        z = c.pair(o, "z_range", w)
        if not 0 <= z[0] < z[1] <= wall_height:
            c.fail(w + "z_range", f"must satisfy 0 <= bottom < top <= wall_height {wall_height}, got {list(z)}")
        room = c.get(o, "room", int, w)
        if not 0 <= room < len(rooms):
            c.fail(w + "room", f"must be a room id in [0, {len(rooms) - 1}], got {room}")
        objects.append(SceneObject(k, cat, colour, shape, tuple(map(float, center)), tuple(map(float, half)),
                                   tuple(map(float, z)), room))
    return Scene(
        scene_id=c.get(data, "scene_id", str),
        seed=c.get(data, "seed", int),
        cell_size=cell_size,
        wall_height=wall_height,
        cells=cells,
        room_ids=room_ids,
        rooms=rooms,
        doors=doors,
        objects=objects,
    )
