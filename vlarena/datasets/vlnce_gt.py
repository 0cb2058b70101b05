"""VLN-CE ground-truth action sequences along reference paths, and their file format (numpy only).

File (`{split}_gt.json[.gz]`, as VLN-CE's `*_gt.json.gz`): a JSON object keyed by the episode id
as a string,

    {"<episode_id>": {"locations": [[x, y, z], ...], "forward_steps": int, "actions": [int, ...]}}

- `actions`: habitat action ids, 0 STOP, 1 MOVE_FORWARD, 2 TURN_LEFT, 3 TURN_RIGHT (also
  vlarena's ids, `vlarena.envs.motion`); ours always end with one STOP;
- `locations`: the agent's floor position (habitat frame, see `vlnce`) when it takes each action,
  so `len(locations) == len(actions)`: the start first, the stop position last;
- `forward_steps`: how many MOVE_FORWARD actions there are.
Readers check types only (real files are read as they are); our writer guarantees the relations.

`follow_reference_path` produces them with VLN-CE's action space (FORWARD 0.25 m, turns of 15
degrees) and the simulator's collision rule (an agent disc of radius 0.18 m may not overlap a
non-floor cell or an object footprint; a blocked FORWARD is never chosen). It visits the waypoints
in turn with the greedy geodesic rule of `vlarena.envs.geodesic.ShortestPathExpert`: among the
headings reachable by m turns it takes the one whose next FORWARD position is geodesically closest
to the waypoint (plus 0.03 m per turn), turning towards it or stepping forward when m = 0. A
waypoint counts as reached within `WAYPOINT_RADIUS` (the last one within `STOP_RADIUS`, then
STOP), or when no FORWARD gets any closer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vlarena.datasets.geodesic import GridGraph
from vlarena.datasets.jsonio import Records, is_int, read_json, short, write_json
from vlarena.datasets.navigation import AGENT_RADIUS, navigable_mask, object_arrays, object_distance
from vlarena.datasets.scene import FLOOR, Scene
from vlarena.datasets.vlnce import VLNCEEpisode, to_habitat

STOP, MOVE_FORWARD, TURN_LEFT, TURN_RIGHT = 0, 1, 2, 3
FORWARD_STEP = 0.25  # metres
TURN_DEG = 15.0
TURN_PENALTY = 0.03  # metres per turn, as the simulator's expert
WAYPOINT_RADIUS = 0.5  # metres (geodesic) at which an intermediate waypoint counts as reached
STOP_RADIUS = 0.25  # metres (geodesic) from the last waypoint at which the follower stops
MAX_STEPS = 500  # VLN-CE's episode step limit


@dataclass
class GTTrajectory:
    locations: list[tuple[float, float, float]]  # habitat frame, one per action
    forward_steps: int
    actions: list[int]

    def to_dict(self) -> dict:
        return {"locations": [[float(v) for v in p] for p in self.locations], "forward_steps": int(self.forward_steps),
                "actions": [int(a) for a in self.actions]}


class _Follower:
    def __init__(self, scene: Scene, grid: GridGraph | None = None):
        self.scene = scene
        self.cs = scene.cell_size
        self.grid = grid or GridGraph(navigable_mask(scene), scene.cell_size)
        self.solid = np.pad(scene.cells != FLOOR, 2, constant_values=True)
        self.objects = object_arrays(scene.objects)
        n = round(360.0 / TURN_DEG)
        self.turns = np.arange(-(n // 2), n - n // 2)
        self.substeps = max(1, math.ceil(FORWARD_STEP / AGENT_RADIUS))

    def collides(self, xy: np.ndarray) -> np.ndarray:
        """bool [P]: the agent disc at points xy [P, 2] overlaps a non-floor cell or an object."""
        cs, r = self.cs, AGENT_RADIUS
        reach = math.ceil(r / cs)
        off = np.arange(-reach, reach + 1)
        ci = np.floor(xy[:, 1] / cs).astype(np.int64)[:, None, None] + off[None, :, None]
        cj = np.floor(xy[:, 0] / cs).astype(np.int64)[:, None, None] + off[None, None, :]
        ci, cj = np.broadcast_arrays(ci, cj)
        rows, cols = self.solid.shape
        solid = self.solid[np.clip(ci + 2, 0, rows - 1), np.clip(cj + 2, 0, cols - 1)]
        x, y = xy[:, 0, None, None], xy[:, 1, None, None]
        dx = np.maximum(np.maximum(cj * cs - x, x - (cj + 1) * cs), 0.0)
        dy = np.maximum(np.maximum(ci * cs - y, y - (ci + 1) * cs), 0.0)
        hit = (solid & (dx * dx + dy * dy < r * r)).reshape(len(xy), -1).any(axis=1)
        if len(self.scene.objects):
            hit |= (object_distance(self.objects, xy[:, 0], xy[:, 1]) < r).any(axis=0)
        return hit

    def distance(self, field: np.ndarray, xy: np.ndarray) -> np.ndarray:
        """Geodesic metres [P] from points xy [P, 2] to the field's goal: min over the 5x5 cells
        around each point of field + straight distance to the cell centre."""
        cs = self.cs
        off = np.arange(-2, 3)
        ci = np.floor(xy[:, 1] / cs).astype(np.int64)[:, None, None] + off[None, :, None]
        cj = np.floor(xy[:, 0] / cs).astype(np.int64)[:, None, None] + off[None, None, :]
        ci, cj = np.broadcast_arrays(ci, cj)
        rows, cols = field.shape
        inside = (ci >= 0) & (ci < rows) & (cj >= 0) & (cj < cols)
        vals = np.where(inside, field[np.clip(ci, 0, rows - 1), np.clip(cj, 0, cols - 1)], np.inf)
        d = np.hypot((cj + 0.5) * cs - xy[:, 0, None, None], (ci + 0.5) * cs - xy[:, 1, None, None])
        return (vals + d).reshape(len(xy), -1).min(axis=1)

    def follow(self, waypoints: np.ndarray, heading: float) -> tuple[list[int], list[tuple[float, float]]]:
        """Actions and the (x, y) at which each is taken, from waypoints[0] facing `heading`."""
        goals = []
        for p in waypoints[1:]:
            g = np.zeros(self.grid.shape, dtype=bool)
            g[int(p[1] // self.cs), int(p[0] // self.cs)] = True
            goals.append(self.grid.distance_field(g))
        pos, theta = np.array(waypoints[0][:2], dtype=np.float64), float(heading)
        turn = math.radians(TURN_DEG)
        frac = np.arange(1, self.substeps + 1) / self.substeps
        actions: list[int] = []
        where: list[tuple[float, float]] = []
        w = 0
        while len(actions) < MAX_STEPS:
            field = goals[w]
            here = float(self.distance(field, pos[None])[0])
            last = w == len(goals) - 1
            if here <= (STOP_RADIUS if last else WAYPOINT_RADIUS):
                if last:
                    break
                w += 1
                continue
            heads = theta + self.turns * turn
            dirs = np.stack([np.cos(heads), np.sin(heads)], axis=1)
            pts = pos + dirs[:, None, :] * (FORWARD_STEP * frac)[None, :, None]
            blocked = self.collides(pts.reshape(-1, 2)).reshape(len(heads), -1).any(axis=1)
            ends = pts[:, -1]
            dist = np.where(blocked, np.inf, self.distance(field, ends))
            if not dist.min() < here - 1e-6:  # no FORWARD gets closer: the waypoint is as reached as it gets
                if last:
                    break
                w += 1
                continue
            m = int(self.turns[int(np.argmin(dist + TURN_PENALTY * np.abs(self.turns)))])
            where.append((float(pos[0]), float(pos[1])))
            if m == 0:
                actions.append(MOVE_FORWARD)
                pos = pos + FORWARD_STEP * np.array([math.cos(theta), math.sin(theta)])
            else:
                actions.append(TURN_LEFT if m > 0 else TURN_RIGHT)
                theta = math.remainder(theta + (turn if m > 0 else -turn), 2 * math.pi)
        else:
            raise RuntimeError(f"reference path not followed within {MAX_STEPS} steps in scene {self.scene.scene_id}")
        actions.append(STOP)
        where.append((float(pos[0]), float(pos[1])))
        return actions, where


def follow_reference_path(scene: Scene, waypoints: np.ndarray, heading: float,
                          grid: GridGraph | None = None) -> GTTrajectory:
    """The ground-truth trajectory from waypoints[0] (scene frame, [K, 2+]) facing `heading`
    (scene frame) through the other waypoints in order. Raises RuntimeError if the stop position
    is more than WAYPOINT_RADIUS from the last waypoint."""
    waypoints = np.asarray(waypoints, dtype=np.float64)
    actions, where = _Follower(scene, grid).follow(waypoints, heading)
    miss = math.dist(where[-1], waypoints[-1][:2])
    if miss > WAYPOINT_RADIUS:
        raise RuntimeError(f"ground-truth follower stopped {miss:.2f} m from the goal in scene {scene.scene_id}")
    locations = [to_habitat((x, y, 0.0)) for x, y in where]
    return GTTrajectory(locations, actions.count(MOVE_FORWARD), actions)


def vlnce_gt(episodes: Sequence[VLNCEEpisode], scenes: Mapping[str, Scene]) -> dict[str, GTTrajectory]:
    """Ground truth for every episode, keyed by str(episode_id); episodes sharing a trajectory
    (same scene, reference path and start rotation) share one computation."""
    grids: dict[str, GridGraph] = {}
    cache: dict[tuple, GTTrajectory] = {}
    out = {}
    for ep in episodes:
        scan = ep.scan
        if scan not in scenes:
            raise ValueError(f"episode {ep.episode_id}: no scene {scan!r} given")
        key = (scan, tuple(map(tuple, ep.reference_path)), tuple(ep.start_rotation))
        if key not in cache:
            if scan not in grids:
                grids[scan] = GridGraph(navigable_mask(scenes[scan]), scenes[scan].cell_size)
            x, y, theta = ep.start_pose()
            pts = ep.reference_path_scene()
            pts[0, :2] = (x, y)
            cache[key] = follow_reference_path(scenes[scan], pts, theta, grids[scan])
        out[str(ep.episode_id)] = cache[key]
    return out


def parse_vlnce_gt(data: object, source: str) -> dict[str, GTTrajectory]:
    if not isinstance(data, dict):
        raise ValueError(f"{source}: a VLN-CE ground-truth file must hold a JSON object keyed by episode id, "
                         f"got {type(data).__name__}")
    r = Records(source, "episode_id")
    out = {}
    for k, (eid, rec) in enumerate(data.items()):
        if not isinstance(rec, dict):
            raise ValueError(f"{source}: record {k} (episode_id {eid!r}) must be a JSON object, got {type(rec).__name__}")
        rec = {"episode_id": eid, **rec}  # names the record in error messages
        locs = r.get(k, rec, "locations")
        if not isinstance(locs, list) or not locs:
            r.fail(k, rec, "locations", f"must be a non-empty list of [x, y, z] points, got {short(locs)}")
        locations = [tuple(r.vector(k, rec, f"locations[{m}]", 3, value=p)) for m, p in enumerate(locs)]
        actions = r.get(k, rec, "actions")
        if not isinstance(actions, list) or not all(is_int(a) and 0 <= a <= 5 for a in actions):
            r.fail(k, rec, "actions", f"must be a list of habitat action ids 0-5, got {short(actions)}")
        steps = r.get(k, rec, "forward_steps")
        if not is_int(steps) or steps < 0:
            r.fail(k, rec, "forward_steps", f"must be a non-negative int, got {short(steps)}")
        out[str(eid)] = GTTrajectory(locations, steps, list(actions))
    return out


def read_vlnce_gt(path: str | Path) -> dict[str, GTTrajectory]:
    return parse_vlnce_gt(read_json(path, "a VLN-CE ground-truth file"), str(path))


def write_vlnce_gt(gt: Mapping[str, GTTrajectory], path: str | Path) -> Path:
    data = {str(k): v.to_dict() for k, v in gt.items()}
    parse_vlnce_gt(data, str(path))
    return write_json(path, data)
