"""Navigation graphs in the Matterport3DSimulator connectivity format (numpy only).

One file per scan, `connectivity/<scan>_connectivity.json`: a JSON list with one record per
viewpoint (format version: the Matterport3DSimulator `connectivity/README.md` schema, the only
version there is; the file itself holds no version field):

    {"image_id": str, "pose": [16 floats], "included": bool,
     "visible": [N bools], "unobstructed": [N bools], "height": float}

- `pose` is a 4x4 camera-to-world matrix in row-major order, world z up; the translation
  (elements 3, 7, 11) is the viewpoint position, the camera itself (not the floor below it).
- `unobstructed[j]` marks a navigable edge to record j; `visible[j]` marks line of sight.
- `height` is the camera height above the floor.

Reading (`read_connectivity`) follows the official `load_nav_graphs` (tasks/R2R/utils.py): only
records with `included` true become viewpoints, in file order; an edge joins i and j when
`unobstructed` is true between them and both are included (it must then be true both ways);
positions are the pose translations. Real files are read as they are: `visible` is not required
to contain `unobstructed` there (Matterport's own files break that), and extra keys are ignored.

Writing (`write_connectivity`) gives every viewpoint the rotation of a camera looking north (+y,
heading 0 in R2R's convention) with OpenCV axes (x right = east, y down, z forward = north), like
Matterport's (near-)level poses whose third row is about (0, -1, 0, z). `height` is the pose z
(vlarena floors are at z = 0). `visible` is `visibility(scene, graph)` when a scene is given,
else `unobstructed`; it always contains `unobstructed`. vlarena adds one optional key per record,
`room_id` (the scene room, -1 for none), which Matterport readers ignore and ours reads back.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vlarena.datasets.jsonio import Records, is_int, is_number, read_json, short, write_json
from vlarena.datasets.navgraph import NavGraph
from vlarena.datasets.navgraph_build import segment_cells
from vlarena.datasets.navigation import object_arrays, object_distance
from vlarena.datasets.scene import FLOOR, Scene

CONNECTIVITY_FORMAT = "Matterport3DSimulator connectivity (connectivity/README.md)"
SUFFIX = "_connectivity.json"
# camera-to-world rotation of a level camera looking north: columns are the camera's x (east),
# y (down) and z (forward = north) axes in world coordinates
NORTH_CAMERA = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
VISIBILITY_STEP = 0.05  # metres between the points of a sight line tested against objects


def connectivity_path(folder: str | Path, scan: str) -> Path:
    return Path(folder) / f"{scan}{SUFFIX}"


def camera_pose(position: np.ndarray) -> list[float]:
    """The 16 row-major floats of the pose of a north-looking camera at `position` (x, y, z)."""
    m = np.eye(4)
    m[:3, :3] = NORTH_CAMERA
    m[:3, 3] = np.asarray(position, dtype=np.float64)
    return [float(v) for v in m.ravel()]


def visibility(scene: Scene, graph: NavGraph) -> np.ndarray:
    """bool [N, N]: line of sight at camera height between viewpoints: the segment touches only
    floor cells and crosses no object footprint taller than the lower of the two cameras.
    Graph edges are always visible (their segments touch navigable cells only)."""
    n = len(graph)
    vis = np.eye(n, dtype=bool)
    arrays = object_arrays(scene.objects)
    tops = np.array([o.z_range[1] for o in scene.objects], dtype=np.float64)
    floor = scene.cells == FLOOR
    rows, cols = floor.shape
    for a in range(n):
        for b in range(a + 1, n):
            p, q = graph.positions[a], graph.positions[b]
            c = segment_cells(p, q, scene.cell_size)
            inside = (c >= 0).all(axis=1) & (c[:, 0] < rows) & (c[:, 1] < cols)
            if not inside.all() or not floor[c[:, 0], c[:, 1]].all():
                continue
            tall = tops > min(p[2], q[2])
            if tall.any():
                k = max(2, int(np.ceil(np.linalg.norm(q[:2] - p[:2]) / VISIBILITY_STEP)) + 1)
                pts = p[:2] + np.linspace(0.0, 1.0, k)[:, None] * (q[:2] - p[:2])
                d = object_distance(tuple(x[tall] for x in arrays), pts[:, 0], pts[:, 1])
                if (d <= 0).any():
                    continue
            vis[a, b] = vis[b, a] = True
    for a, b in graph.edges:
        vis[a, b] = vis[b, a] = True
    return vis


def _check_graph(graph: NavGraph) -> None:
    n = len(graph.ids)
    if len(set(graph.ids)) != n or not all(isinstance(i, str) and i for i in graph.ids):
        raise ValueError(f"graph {graph.scan}: viewpoint ids must be unique non-empty strings")
    if graph.positions.shape != (n, 3) or not np.isfinite(graph.positions).all():
        raise ValueError(f"graph {graph.scan}: positions must be {n} finite (x, y, z) rows, got shape "
                         f"{graph.positions.shape}")
    for a, b in graph.edges:
        if not (is_int(a) or isinstance(a, np.integer)) or not 0 <= a < b < n:
            raise ValueError(f"graph {graph.scan}: edge {(a, b)} must be a pair of viewpoint indices i < j < {n}")
    if graph.room_ids and len(graph.room_ids) != n:
        raise ValueError(f"graph {graph.scan}: room_ids must hold one id per viewpoint ({n}), got {len(graph.room_ids)}")


def connectivity_records(graph: NavGraph, visible: np.ndarray | None = None) -> list[dict]:
    """The connectivity records of `graph` (see the module docstring)."""
    _check_graph(graph)
    n = len(graph)
    adj = np.zeros((n, n), dtype=bool)
    for a, b in graph.edges:
        adj[a, b] = adj[b, a] = True
    vis = adj.copy() if visible is None else np.asarray(visible, dtype=bool)
    if vis.shape != (n, n):
        raise ValueError(f"graph {graph.scan}: visible must be a [{n}, {n}] bool matrix, got shape {vis.shape}")
    vis = vis | adj
    np.fill_diagonal(vis, False)
    records = []
    for k in range(n):
        rec = {
            "image_id": graph.ids[k],
            "pose": camera_pose(graph.positions[k]),
            "included": True,
            "visible": [bool(v) for v in vis[k]],
            "unobstructed": [bool(v) for v in adj[k]],
            "height": float(graph.positions[k, 2]),
        }
        if graph.room_ids:
            rec["room_id"] = int(graph.room_ids[k])
        records.append(rec)
    return records


def write_connectivity(graph: NavGraph, folder: str | Path, scene: Scene | None = None,
                       visible: np.ndarray | None = None) -> Path:
    """Write `folder/<scan>_connectivity.json` atomically; returns its path.

    `visible` defaults to `visibility(scene, graph)` when `scene` is given, else to the edges.
    """
    if visible is None and scene is not None:
        visible = visibility(scene, graph)
    return write_json(connectivity_path(folder, graph.scan), connectivity_records(graph, visible))


def read_connectivity(path: str | Path, scan: str | None = None) -> NavGraph:
    """The NavGraph of a connectivity file (ours or Matterport's). `scan` defaults to the file
    name without `_connectivity.json`."""
    path = Path(path)
    if scan is None:
        if not path.name.endswith(SUFFIX):
            raise ValueError(f"{path}: cannot tell the scan from the file name (expected '<scan>{SUFFIX}'); "
                             "pass scan=...")
        scan = path.name[: -len(SUFFIX)]
    return parse_connectivity(read_json(path, "a Matterport connectivity file"), str(path), scan)


def parse_connectivity(data: object, source: str, scan: str) -> NavGraph:
    """Validate connectivity records (see the module docstring) and build the NavGraph."""
    if not isinstance(data, list):
        raise ValueError(f"{source}: a connectivity file must hold a JSON list of viewpoint records, "
                         f"got {type(data).__name__}")
    if not data:
        raise ValueError(f"{source}: the connectivity file holds no viewpoint record")
    r = Records(source, "image_id")
    n = len(data)
    seen: dict[str, int] = {}
    included, unob, poses, rooms = [], [], [], []
    for k, rec in enumerate(data):
        rec = r.record(k, rec)
        image_id = r.string(k, rec, "image_id")
        if image_id in seen:
            r.fail(k, rec, "image_id", f"repeats the id of record {seen[image_id]}")
        seen[image_id] = k
        pose = r.vector(k, rec, "pose", 16)
        if max(abs(v - w) for v, w in zip(pose[12:], (0.0, 0.0, 0.0, 1.0), strict=True)) > 1e-6:
            r.fail(k, rec, "pose", f"must end with the row 0, 0, 0, 1 (a 4x4 row-major rigid transform), "
                                   f"got {pose[12:]}")
        included.append(r.boolean(k, rec, "included"))
        for name in ("visible", "unobstructed"):
            flags = r.get(k, rec, name)
            if not isinstance(flags, list):
                r.fail(k, rec, name, f"must be a list of {n} bools (one per record), got {short(flags)}")
            if len(flags) != n:
                r.fail(k, rec, name, f"must be a list of {n} bools (one per record), got {len(flags)} entries")
            if not all(isinstance(v, bool) for v in flags):
                bad = next(v for v in flags if not isinstance(v, bool))
                r.fail(k, rec, name, f"must hold true/false only, got {short(bad)}")
        unob.append(rec["unobstructed"])
        height = r.get(k, rec, "height")
        if not is_number(height):
            r.fail(k, rec, "height", f"must be a finite number (camera height above the floor), got {short(height)}")
        room = rec.get("room_id", -1)
        if not is_int(room) or room < -1:
            r.fail(k, rec, "room_id", f"must be an int >= -1 when present, got {short(room)}")
        poses.append(pose)
        rooms.append(room)
    keep = [k for k in range(n) if included[k]]
    index = {k: m for m, k in enumerate(keep)}
    edges = set()
    for k in keep:
        for j, flag in enumerate(unob[k]):
            if flag and j != k and included[j]:
                if not unob[j][k]:
                    r.fail(k, data[k], "unobstructed", f"is true towards record {j} ({data[j]['image_id']!r}) "
                                                       "but that record's is false towards this one; the graph "
                                                       "must be undirected")
                edges.add((min(index[k], index[j]), max(index[k], index[j])))
    positions = np.array([[poses[k][3], poses[k][7], poses[k][11]] for k in keep], dtype=np.float64).reshape(-1, 3)
    return NavGraph(scan, [data[k]["image_id"] for k in keep], positions, sorted(edges), [rooms[k] for k in keep])
