"""Navigation graphs (R2R style) built from a scene: `build_nav_graph(scene) -> NavGraph` (numpy + scipy).

Viewpoints sit on centres of navigable cells (`navigation.navigable_mask`). They are placed in
stages, and ids follow the placement order (`f"{scan}_{k:03d}"`, k = 0, 1, ...):

1. doors: one viewpoint on each side of every open doorway, `DOOR_SIDE` metres out along the
   door's normal, so that the edge between them runs through the door; where that fails, one
   viewpoint in the doorway (the navigable door cell nearest the door's centre);
2. room centres: near the centre of each room's bounds, preferring cells away from obstacles;
3. landmarks: per object, a navigable cell of its room within `LANDMARK_REACH` of its footprint;
4. lattice: per room, a square lattice of `LATTICE` metres pitch through its first viewpoint;
5. coverage: while some navigable cell is more than `COVER_RADIUS` metres (grid geodesic) from
   every viewpoint, one on the shortest path from the farthest such cell towards the others;
6. connectors: while the graph falls apart, viewpoints along the grid shortest path between the
   first component and the nearest other one, as far apart as the edge rule allows;
7. thinning: viewpoints of stages 3-6 closer than `MERGE_DIST` to another one are dropped while
   the graph stays connected and covering.

Stages 1-5 skip a candidate closer than their spacing (`DOOR_SPACING`, `CENTRE_SPACING`,
`LANDMARK_SPACING`, `MIN_SPACING`) to an existing viewpoint. Viewpoint z is `CAMERA_HEIGHT` =
1.5 m, the camera above the floor: Matterport's `height` and the z of its `pose` translation.

Edges join viewpoints at most `MAX_EDGE` metres apart whose straight segment touches only
navigable cells (`segment_cells`: exact, corners included). An edge (a, b) is then dropped when
a viewpoint c with edges (a, c) and (c, b) lies on the way (|ac| + |cb| <= (1 + DETOUR_TOL) |ab|),
as Matterport graphs do not link past a neighbour; a dropped edge is always replaced by strictly
shorter ones, so connectivity is kept. The result is connected (asserted) and symmetric (edges
are undirected pairs i < j), and the same scene always gives the same graph.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import distance_transform_edt
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from vlarena.datasets.geodesic import NEIGHBOURS, GridGraph
from vlarena.datasets.navgraph import NavGraph
from vlarena.datasets.navigation import navigable_mask, object_distance
from vlarena.datasets.scene import Scene

CAMERA_HEIGHT = 1.5  # metres above the floor (viewpoint z, Matterport `height`)
MAX_EDGE = 3.5  # metres
DOOR_SIDE = 1.0  # metres from a doorway to the viewpoint on each side of it
DOOR_SPACING = 0.75  # metres between a new door viewpoint and the others
LATTICE = 2.25  # metres between the lattice points that fill a room
MIN_SPACING = 1.5  # metres between a new lattice / coverage viewpoint and the others
LANDMARK_SPACING = 1.5  # metres between a new landmark viewpoint and the others
LANDMARK_REACH = 1.0  # metres: a landmark viewpoint lies at most this far from the object's footprint
OPEN_CAP = 0.75  # metres: placements prefer cells up to this far from non-navigable cells
MERGE_DIST = 0.9  # metres: viewpoints closer than this to another are dropped where they are not needed
CENTRE_SPACING = 0.75  # metres between a room-centre viewpoint and the others
COVER_RADIUS = 1.5  # metres (grid geodesic) from every navigable cell to its nearest viewpoint
DETOUR_TOL = 0.01  # relative: an edge is dropped when a viewpoint lies within this detour of it
_EPS = 1e-9


# ---- segments on the grid -------------------------------------------------------------------
def segment_cells(p: np.ndarray, q: np.ndarray, cell_size: float) -> np.ndarray:
    """Every grid cell (i, j) the closed segment p -> q touches ([K, 2] int, may repeat).

    Exact: the segment is cut where it crosses grid lines; the cells around each piece's midpoint
    and around each crossing point are reported, and a point on a cell boundary reports the cells
    on both sides (so a segment through a cell corner reports all four cells there).
    """
    p = np.asarray(p, dtype=np.float64)[:2] / cell_size
    q = np.asarray(q, dtype=np.float64)[:2] / cell_size
    d = q - p
    ts = [np.array([0.0, 1.0])]
    for axis in (0, 1):
        if abs(d[axis]) > _EPS:
            lo, hi = sorted((p[axis], q[axis]))
            k = np.arange(math.ceil(lo), math.floor(hi) + 1, dtype=np.float64)
            ts.append((k - p[axis]) / d[axis])
    t = np.sort(np.clip(np.concatenate(ts), 0.0, 1.0))
    t = np.concatenate([t, (t[:-1] + t[1:]) / 2])
    pts = p + t[:, None] * d  # in cell units: x = column, y = row
    rows = np.floor(pts[:, 1, None] + np.array([-1e-7, 1e-7, -1e-7, 1e-7]))
    cols = np.floor(pts[:, 0, None] + np.array([-1e-7, -1e-7, 1e-7, 1e-7]))
    return np.stack([rows.ravel(), cols.ravel()], axis=1).astype(np.int64)


def segment_clear(mask: np.ndarray, cell_size: float, p: np.ndarray, q: np.ndarray) -> bool:
    """True when every cell the segment p -> q touches is inside the grid and True in `mask`."""
    c = segment_cells(p, q, cell_size)
    rows, cols = mask.shape
    if (c < 0).any() or (c[:, 0] >= rows).any() or (c[:, 1] >= cols).any():
        return False
    return bool(mask[c[:, 0], c[:, 1]].all())


# ---- the builder ----------------------------------------------------------------------------
Cell = tuple[int, int]


class _Builder:
    def __init__(self, scene: Scene):
        self.scene = scene
        self.cs = scene.cell_size
        self.nav = navigable_mask(scene)
        if not self.nav.any():
            raise ValueError(f"scene {scene.scene_id} has no navigable cell; cannot build a navigation graph")
        self.grid = GridGraph(self.nav, self.cs)
        # metres from each navigable cell centre to the nearest non-navigable cell centre
        self.clearance = distance_transform_edt(np.pad(self.nav, 1))[1:-1, 1:-1] * self.cs
        self.cells: list[Cell] = []
        self.kinds: list[str] = []
        self._clear: dict[tuple[Cell, Cell], bool] = {}

    # positions
    def xy(self, cell: Cell) -> np.ndarray:
        return np.array([(cell[1] + 0.5) * self.cs, (cell[0] + 0.5) * self.cs])

    def xy_all(self, cells: list[Cell] | None = None) -> np.ndarray:
        c = np.array(self.cells if cells is None else cells, dtype=np.float64).reshape(-1, 2)
        return (c[:, ::-1] + 0.5) * self.cs

    def nearest_vp_distance(self, cell: Cell) -> float:
        if not self.cells:
            return math.inf
        return float(np.linalg.norm(self.xy_all() - self.xy(cell), axis=1).min())

    def add(self, cell: Cell, kind: str, spacing: float = 0.0) -> bool:
        cell = (int(cell[0]), int(cell[1]))
        if not self.nav[cell] or cell in self.cells or self.nearest_vp_distance(cell) < spacing - _EPS:
            return False
        self.cells.append(cell)
        self.kinds.append(kind)
        return True

    def clear(self, a: Cell, b: Cell) -> bool:
        key = (a, b) if a <= b else (b, a)
        if key not in self._clear:
            self._clear[key] = segment_clear(self.nav, self.cs, self.xy(a), self.xy(b))
        return self._clear[key]

    def best(self, cells: np.ndarray, score: np.ndarray) -> Cell:
        """The cell of lowest score (the first in row-major order on ties)."""
        k = int(np.argmin(score))
        return int(cells[k, 0]), int(cells[k, 1])

    def openness(self, cells: np.ndarray, cap: float) -> np.ndarray:
        return np.minimum(self.clearance[cells[:, 0], cells[:, 1]], cap)

    # 1. doors
    def add_doors(self) -> None:
        side = round(DOOR_SIDE / self.cs)
        offsets = sorted(range(2, 2 * side + 1), key=lambda k: (abs(k - side), k))
        for door in self.scene.doors:
            cells = np.array(door.cells, dtype=np.int64).reshape(-1, 2)
            open_cells = [(int(i), int(j)) for i, j in cells if self.nav[i, j]]
            if not open_cells:
                continue  # a doorway blocked by furniture: the rooms connect elsewhere
            centre = cells.mean(axis=0)
            mid = min(open_cells, key=lambda c: (float(np.hypot(c[0] - centre[0], c[1] - centre[1])), c))
            normal = (0, 1) if len(set(cells[:, 1].tolist())) == 1 else (1, 0)  # across the wall
            sides = []
            for sign in (-1, 1):
                for k in offsets:
                    c = (mid[0] + sign * k * normal[0], mid[1] + sign * k * normal[1])
                    if (0 <= c[0] < self.nav.shape[0] and 0 <= c[1] < self.nav.shape[1] and self.nav[c]
                            and self.scene.room_ids[c] in door.rooms and self.clear(mid, c)):
                        sides.append(c)
                        break
            if len(sides) == 2 and self.clear(sides[0], sides[1]):
                for c in sides:
                    self.add(c, "door", DOOR_SPACING)
            else:
                self.add(mid, "door", DOOR_SPACING)

    # 2. room centres
    def room_cells(self, room_id: int) -> np.ndarray:
        return np.argwhere(self.nav & (self.scene.room_ids == room_id))

    def add_room_centres(self) -> None:
        for room in self.scene.rooms:
            cells = self.room_cells(room.id)
            if not len(cells):
                continue
            i0, j0, i1, j1 = room.bounds
            d = np.hypot(cells[:, 0] + 0.5 - (i0 + i1) / 2, cells[:, 1] + 0.5 - (j0 + j1) / 2) * self.cs
            self.add(self.best(cells, d - self.openness(cells, OPEN_CAP)), "centre", CENTRE_SPACING)

    # 3. landmarks
    def add_landmarks(self) -> None:
        for obj in self.scene.objects:
            cells = self.room_cells(obj.room)
            if not len(cells):
                continue
            d = object_distance(obj, (cells[:, 1] + 0.5) * self.cs, (cells[:, 0] + 0.5) * self.cs)
            near = d <= LANDMARK_REACH
            if near.any():
                cells, d = cells[near], d[near]
                self.add(self.best(cells, d - self.openness(cells, OPEN_CAP)), "landmark", LANDMARK_SPACING)

    # 4. lattice
    def add_lattice(self) -> None:
        """Per room, a square lattice of LATTICE-metre pitch through the room's first viewpoint,
        each point snapped to a navigable cell of the room within a third of the pitch."""
        pitch = LATTICE / self.cs  # in cells
        for room in self.scene.rooms:
            cells = self.room_cells(room.id)
            if not len(cells):
                continue
            mine = [c for c in self.cells if self.scene.room_ids[c] == room.id]
            origin = np.array(mine[0] if mine else cells[0], dtype=np.float64)
            lo, hi = cells.min(axis=0), cells.max(axis=0)
            ks = [np.arange(math.ceil((lo[a] - origin[a]) / pitch), math.floor((hi[a] - origin[a]) / pitch) + 1)
                  for a in (0, 1)]
            for ki in ks[0]:
                for kj in ks[1]:
                    p = origin + pitch * np.array([ki, kj])
                    d = np.hypot(*(cells - p).T) * self.cs
                    near = d <= LATTICE / 3
                    if near.any():
                        score = d[near] - self.openness(cells[near], OPEN_CAP)
                        self.add(self.best(cells[near], score), "lattice", MIN_SPACING)

    # 5. coverage
    def vp_field(self, cells: list[Cell] | None = None) -> np.ndarray:
        goal = np.zeros(self.nav.shape, dtype=bool)
        for c in self.cells if cells is None else cells:
            goal[c] = True
        return self.grid.distance_field(goal)

    def add_coverage(self) -> None:
        for _ in range(int(self.nav.sum())):
            field = self.vp_field()
            d = np.where(self.nav, field, -1.0)
            far = np.unravel_index(int(np.argmax(d)), d.shape)
            dmax = float(d[far])
            if dmax <= COVER_RADIUS + _EPS:
                return
            goal = np.zeros(self.nav.shape, dtype=bool)
            goal[far] = True
            from_far = self.grid.distance_field(goal)
            step = min(max(dmax - MIN_SPACING, 0.0), 0.75 * COVER_RADIUS)
            on_path = self.nav & (field + from_far <= dmax + 1e-4) & (from_far <= COVER_RADIUS)
            cells = np.argwhere(on_path)
            off = np.abs(from_far[on_path] - step)
            if not self.add(self.best(cells, off - 0.5 * self.openness(cells, self.cs)), "cover"):
                self.add(far, "cover")
        raise AssertionError("coverage did not converge")  # unreachable: each round adds a viewpoint

    def covered(self, cells: list[Cell]) -> bool:
        return float(self.vp_field(cells)[self.nav].max()) <= COVER_RADIUS + _EPS

    # 6. edges and connectors
    def edges(self, cells: list[Cell] | None = None) -> list[tuple[int, int]]:
        cells = self.cells if cells is None else cells
        xy = self.xy_all(cells)
        n = len(xy)
        dist = np.linalg.norm(xy[:, None] - xy[None], axis=-1)
        adj = np.zeros((n, n), dtype=bool)
        for a, b in zip(*np.nonzero(np.triu(dist <= MAX_EDGE + _EPS, 1)), strict=True):
            adj[a, b] = adj[b, a] = self.clear(cells[a], cells[b])
        # drop (a, b) when a common neighbour c lies on the way: |ac| + |cb| <= (1 + tol) |ab|
        detour = dist[:, None, :] + dist[None, :, :]  # [a, b, c]
        via = (adj[:, None, :] & adj[None, :, :] & (detour <= dist[:, :, None] * (1 + DETOUR_TOL))).any(-1)
        keep = np.triu(adj & ~via, 1)
        return [(int(a), int(b)) for a, b in zip(*np.nonzero(keep), strict=True)]

    def components(self, n: int, edges: list[tuple[int, int]]) -> np.ndarray:
        if not edges:
            return np.arange(n)
        a, b = np.array(edges).T
        m = csr_matrix((np.ones(len(a)), (a, b)), shape=(n, n))
        return connected_components(m, directed=False)[1]

    def grid_path(self, field: np.ndarray, start: Cell) -> list[Cell]:
        """Cells from `start` down the distance field to a source cell (steepest exact descent)."""
        path = [start]
        rows, cols = field.shape
        while field[path[-1]] > _EPS:
            i, j = path[-1]
            nxt = None
            for di, dj in NEIGHBOURS:
                ni, nj = i + di, j + dj
                if not (0 <= ni < rows and 0 <= nj < cols) or not self.nav[ni, nj]:
                    continue
                if di and dj and not (self.nav[i + di, j] and self.nav[i, j + dj]):
                    continue
                if abs(field[ni, nj] + math.hypot(di, dj) * self.cs - field[i, j]) < 1e-3:
                    nxt = (ni, nj)
                    break
            if nxt is None:
                raise AssertionError(f"no descent from cell {(i, j)}")
            path.append(nxt)
        return path

    def connect(self) -> None:
        for _ in range(len(self.cells) + int(self.nav.sum())):
            comp = self.components(len(self.cells), self.edges())
            if comp.max(initial=0) == 0:
                return
            field = self.vp_field([c for k, c in enumerate(self.cells) if comp[k] == comp[0]])
            others = [k for k in range(len(self.cells)) if comp[k] != comp[0]]
            target = min(others, key=lambda k: (float(field[self.cells[k]]), k))
            path = self.grid_path(field, self.cells[target])[::-1]  # from comp[0] to the target
            cur = 0
            while cur < len(path) - 1:
                nxt = cur + 1
                for k in range(len(path) - 1, cur, -1):
                    near = np.linalg.norm(self.xy(path[k]) - self.xy(path[cur])) <= MAX_EDGE
                    if near and self.clear(path[cur], path[k]):
                        nxt = k
                        break
                self.add(path[nxt], "connector")
                cur = nxt
        raise AssertionError("connecting the navigation graph did not converge")

    # 7. thinning
    def thin(self) -> None:
        """Drop non-structural viewpoints closer than MERGE_DIST to another one while the graph
        stays connected and every navigable cell stays within COVER_RADIUS of a viewpoint."""
        for _ in range(len(self.cells)):
            xy = self.xy_all()
            d = np.linalg.norm(xy[:, None] - xy[None], axis=-1)
            np.fill_diagonal(d, np.inf)
            nn = d.min(axis=1)
            cands = sorted((float(nn[k]), -k) for k in range(len(self.cells))
                           if nn[k] < MERGE_DIST and self.kinds[k] not in ("door", "centre"))
            for _, mk in cands:
                rest = [c for k, c in enumerate(self.cells) if k != -mk]
                if self.components(len(rest), self.edges(rest)).max(initial=0) == 0 and self.covered(rest):
                    del self.cells[-mk], self.kinds[-mk]
                    break
            else:
                return

    def build(self) -> NavGraph:
        self.add_doors()
        self.add_room_centres()
        self.add_landmarks()
        self.add_lattice()
        self.add_coverage()
        self.connect()
        self.thin()
        edges = self.edges()
        scan = self.scene.scene_id
        n = len(self.cells)
        pos = np.concatenate([self.xy_all(), np.full((n, 1), CAMERA_HEIGHT)], axis=1)
        rooms = [int(self.scene.room_ids[c]) for c in self.cells]
        graph = NavGraph(scan, [f"{scan}_{k:03d}" for k in range(n)], pos, edges, rooms)
        if self.components(n, graph.edges).max(initial=0) != 0:  # unreachable: connect() joined everything
            raise RuntimeError(f"navigation graph of {scan} is not connected")
        return graph


def build_nav_graph(scene: Scene) -> NavGraph:
    """The R2R-style navigation graph of `scene` (see the module docstring for the rules)."""
    return _Builder(scene).build()


def graph_cells(graph: NavGraph, cell_size: float) -> np.ndarray:
    """The grid cell (i, j) of every viewpoint [N, 2] (int)."""
    return np.floor(graph.positions[:, [1, 0]] / cell_size).astype(np.int64)
