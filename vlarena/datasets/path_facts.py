"""What an R2R path passes, read against its scene: rooms, turns, doors, landmarks, the stop place.

`path_facts` gives the facts that `vlarena.datasets.instructions` writes instructions from (see its
docstring for the guarantees on what an instruction may mention).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vlarena.datasets.navgraph import NavGraph
from vlarena.datasets.navigation import object_arrays, object_distance
from vlarena.datasets.scene import Scene

LANDMARK_RADIUS = 1.5  # metres from an object's footprint to the path
STOP_RADIUS = 2.0  # metres from the stop object's footprint to the goal viewpoint
STRAIGHT_DEG = 40.0
AROUND_DEG = 150.0
SAMPLE_STEP = 0.05  # metres between the path points read against the grid


@dataclass(frozen=True)
class RoomVisit:
    room: int
    type: str
    start: float  # metres along the path where the visit begins and ends
    end: float


@dataclass(frozen=True)
class TurnFact:
    step: int  # position in the path of the viewpoint where the turn is made (0: relative to start_heading)
    direction: str  # "left", "right", "around" or "straight"
    angle: float  # degrees, counter-clockwise positive, in (-180, 180]
    arc: float


@dataclass(frozen=True)
class DoorFact:
    door: int  # index into scene.doors
    rooms: tuple[int, int]  # (from room, to room)
    arc: float


@dataclass(frozen=True)
class LandmarkFact:
    object_id: int
    category: str
    colour: str
    room: int
    distance: float  # footprint to the nearest path point in the object's room
    arc: float  # where along the path it is passed
    side: str | None  # "left" / "right" of the walking direction, None when ahead or unclear


@dataclass(frozen=True)
class StopFact:
    room: int
    room_type: str
    object_id: int | None
    category: str | None
    colour: str | None
    distance: float | None
    in_doorway: bool


@dataclass(frozen=True)
class PathFacts:
    rooms: tuple[RoomVisit, ...]
    turns: tuple[TurnFact, ...]
    doors: tuple[DoorFact, ...]
    landmarks: tuple[LandmarkFact, ...]  # sorted by arc
    stop: StopFact
    length: float

    @property
    def room_types(self) -> list[str]:
        return [v.type for v in self.rooms]


# ---- facts ----------------------------------------------------------------------------------
def _check_path(graph: NavGraph, path: list[int]) -> list[int]:
    if len(path) < 2:
        raise ValueError(f"path must hold at least 2 viewpoint indices, got {list(path)!r}")
    for v in path:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= v < len(graph):
            raise ValueError(f"path entries must be viewpoint indices in [0, {len(graph) - 1}], got {v!r}")
    return [int(v) for v in path]


def _wrap_deg(a: float) -> float:
    a = math.degrees(a) % 360.0
    return a - 360.0 if a > 180.0 else a


def _direction(angle: float) -> str:
    if abs(angle) < STRAIGHT_DEG:
        return "straight"
    if abs(angle) > AROUND_DEG:
        return "around"
    return "left" if angle > 0 else "right"


def path_facts(scene: Scene, graph: NavGraph, path: list[int], start_heading: float | None = None) -> PathFacts:
    """What an instruction may mention about `path` (viewpoint indices into `graph`).

    `start_heading` (radians, CCW from +x) is the agent's heading at the first viewpoint; without
    it no first turn is reported.
    """
    path = _check_path(graph, path)
    pts = graph.positions[path, :2]
    seg = np.diff(pts, axis=0)
    seglen = np.linalg.norm(seg, axis=1)
    cum = np.concatenate([[0.0], np.cumsum(seglen)])
    counts = np.maximum(1, np.ceil(seglen / SAMPLE_STEP).astype(int))
    sidx = np.repeat(np.arange(len(seg)), counts)
    frac = np.concatenate([np.arange(c) / c for c in counts])
    sidx, frac = np.append(sidx, len(seg) - 1), np.append(frac, 1.0)
    xy = pts[sidx] + seg[sidx] * frac[:, None]
    arc = cum[sidx] + seglen[sidx] * frac
    cs = scene.cell_size
    rows, cols = scene.shape
    ci = np.clip((xy[:, 1] / cs).astype(int), 0, rows - 1)
    cj = np.clip((xy[:, 0] / cs).astype(int), 0, cols - 1)
    pt_room = scene.room_ids[ci, cj].astype(int)
    door_grid = np.full(scene.shape, -1, dtype=int)
    for d, door in enumerate(scene.doors):
        for i, j in door.cells:
            door_grid[i, j] = d
    pt_door = np.where(pt_room < 0, door_grid[ci, cj], -1)

    # Runs of samples in one room or one door; a door run between two rooms is a door passed.
    code = np.where(pt_room >= 0, pt_room, np.where(pt_door >= 0, 100000 + pt_door, -1))
    cuts = np.flatnonzero(np.diff(code)) + 1
    starts, ends = np.concatenate([[0], cuts]), np.concatenate([cuts, [len(code)]])
    visits: list[list] = []  # [room, start arc, end arc]
    doors: list[DoorFact] = []
    pending_door: tuple[int, float] | None = None
    for a, b in zip(starts, ends, strict=True):
        c = int(code[a])
        if c < 0:
            continue
        if c >= 100000:
            pending_door = (c - 100000, float(arc[(a + b - 1) // 2]))
            continue
        if visits and visits[-1][0] == c:
            visits[-1][2] = float(arc[b - 1])
        else:
            if visits and pending_door is not None:
                doors.append(DoorFact(pending_door[0], (visits[-1][0], c), pending_door[1]))
            visits.append([c, float(arc[a]), float(arc[b - 1])])
        pending_door = None
    if not visits:
        raise ValueError(f"path {path} never enters a room of scene {scene.scene_id}")
    rooms = tuple(RoomVisit(r, scene.rooms[r].type, s, e) for r, s, e in visits)

    # Turns at interior viewpoints (and at the start, relative to start_heading).
    turns = []
    heading: list[float | None] = [math.atan2(d[1], d[0]) if n > 1e-6 else None for d, n in zip(seg, seglen, strict=True)]
    prev = start_heading
    for k, h in enumerate(heading):
        if h is None:
            continue
        if prev is not None:
            angle = _wrap_deg(h - prev)
            turns.append(TurnFact(k, _direction(angle), angle, float(cum[k])))
        prev = h

    # Landmarks: objects in a visited room near the path points in that room (or its doors).
    landmarks: list[LandmarkFact] = []
    stop_obj = None
    visited = {v.room for v in rooms}
    goal_room = int(pt_room[-1])
    in_doorway = goal_room < 0
    if in_doorway:
        goal_room = rooms[-1].room
    if scene.objects:
        arrays = object_arrays(scene.objects)
        obj_room = np.array([o.room for o in scene.objects])
        dist = object_distance(arrays, xy[:, 0], xy[:, 1])  # [K, M]
        door_rooms = np.array([d.rooms for d in scene.doors] or [(-1, -1)])[np.maximum(pt_door, 0)]
        same = (pt_room[None] == obj_room[:, None]) | ((pt_door >= 0)[None] & (
            (door_rooms[None, :, 0] == obj_room[:, None]) | (door_rooms[None, :, 1] == obj_room[:, None])))
        dist = np.where(same, dist, np.inf)
        near, nearest = dist.min(axis=1), dist.argmin(axis=1)
        for k in np.flatnonzero(near <= LANDMARK_RADIUS):
            o = scene.objects[k]
            if o.room not in visited:
                continue
            m = nearest[k]
            d = seg[min(sidx[m], len(seg) - 1)]
            d = d / max(float(np.linalg.norm(d)), 1e-9)
            off = np.asarray(o.center) - xy[m]
            cross, along = d[0] * off[1] - d[1] * off[0], d @ off
            side = None if abs(cross) < max(0.3, abs(along)) else ("left" if cross > 0 else "right")
            landmarks.append(LandmarkFact(o.id, o.category, o.colour, o.room, float(near[k]), float(arc[m]), side))
        landmarks.sort(key=lambda lm: (lm.arc, lm.object_id))
        goal_d = np.where(obj_room == goal_room, object_distance(arrays, xy[-1, 0], xy[-1, 1]), np.inf)
        if goal_d.min() <= STOP_RADIUS:
            stop_obj = scene.objects[int(goal_d.argmin())]
            stop_dist = float(goal_d.min())
    stop = StopFact(goal_room, scene.rooms[goal_room].type, *(
        (stop_obj.id, stop_obj.category, stop_obj.colour, stop_dist) if stop_obj else (None, None, None, None)),
        in_doorway)
    return PathFacts(rooms, tuple(turns), tuple(doors), tuple(landmarks), stop, float(cum[-1]))
