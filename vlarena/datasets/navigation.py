"""Where an agent can stand: free space, the navigable grid and goal cells (numpy + scipy, no torch).

Conventions (shared by the scene generator, episode sampling and the simulator's geodesics):

- A cell is *free* when its centre lies on FLOOR and is at least `clearance` metres from every
  non-floor cell's square (walls, outside, and everything beyond the grid's border) and from every
  object footprint.
- The default clearance is `NAV_CLEARANCE` = agent radius 0.18 m + a 0.07 m margin = 0.25 m: an
  agent disc standing on any free cell centre touches nothing, and shortest paths planned over
  free cells keep a few centimetres off obstacles, so the discrete FORWARD/TURN expert does not
  graze walls when it is between two cell centres. With 0.25 m cells this means a free cell has
  no wall among its 8 neighbours; a 1.0 m door opening leaves 2 free cells across.
- The *navigable* grid is the largest 4-connected component of the free cells (ties broken by the
  lowest component in row-major order). Generated scenes have exactly one component, so there
  navigable == free.
- An object's *goal cells* are navigable cells whose centre lies within `GOAL_RADIUS` = 0.75 m of
  its footprint.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike
from scipy import ndimage

from vlarena.datasets.scene import FLOOR, Scene, SceneObject

AGENT_RADIUS = 0.18
NAV_MARGIN = 0.07
NAV_CLEARANCE = AGENT_RADIUS + NAV_MARGIN
GOAL_RADIUS = 0.75

ObjectArrays = tuple[ArrayLike, ArrayLike, ArrayLike]


# ---- distances to object footprints ---------------------------------------------------------
def object_arrays(objects: Sequence[SceneObject]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(centers [K, 2], half_extents [K, 2], is_cylinder [K] bool) of a list of objects."""
    centers = np.array([o.center for o in objects], dtype=np.float64).reshape(-1, 2)
    halves = np.array([o.half_extents for o in objects], dtype=np.float64).reshape(-1, 2)
    cylinder = np.array([o.shape == "cylinder" for o in objects], dtype=bool)
    return centers, halves, cylinder


def _footprint_distance(cx: ArrayLike, cy: ArrayLike, hx: ArrayLike, hy: ArrayLike, cylinder: ArrayLike,
                        x: np.ndarray, y: np.ndarray) -> np.ndarray:
    dx = np.abs(x - cx)
    dy = np.abs(y - cy)
    box = np.hypot(np.maximum(dx - hx, 0.0), np.maximum(dy - hy, 0.0))
    cyl = np.maximum(np.hypot(dx, dy) - hx, 0.0)
    return np.where(cylinder, cyl, box)


def object_distance(obj_or_arrays: SceneObject | ObjectArrays, x: ArrayLike, y: ArrayLike) -> np.ndarray:
    """Euclidean distance (metres) from points (x, y) to object footprints; 0 inside a footprint.

    `obj_or_arrays` is one `SceneObject` (result shaped like broadcast(x, y)) or a tuple
    `(centers [K, 2], half_extents [K, 2], shapes [K])` with shapes as bools (True = cylinder) or
    shape names (result [K, *broadcast(x, y).shape]). A box is axis-aligned with half extents
    (hx, hy); a cylinder has radius hx.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if isinstance(obj_or_arrays, SceneObject):
        o = obj_or_arrays
        if o.shape not in ("box", "cylinder"):
            raise ValueError(f"object {o.id} has shape {o.shape!r}; accepted are 'box' and 'cylinder'")
        return _footprint_distance(o.center[0], o.center[1], o.half_extents[0], o.half_extents[1],
                                   o.shape == "cylinder", x, y)
    if not (isinstance(obj_or_arrays, tuple) and len(obj_or_arrays) == 3):
        raise ValueError("object_distance takes a SceneObject or a tuple (centers [K, 2], half_extents [K, 2], "
                         f"shapes [K]), got {type(obj_or_arrays).__name__}")
    centers, halves, shapes = (np.asarray(a) for a in obj_or_arrays)
    centers = centers.astype(np.float64).reshape(-1, 2)
    halves = halves.astype(np.float64).reshape(-1, 2)
    shapes = shapes.reshape(-1)
    cylinder = shapes == "cylinder" if shapes.dtype.kind in "UO" else shapes.astype(bool)
    if not (len(centers) == len(halves) == len(cylinder)):
        raise ValueError(f"object_distance: centers, half_extents and shapes must have the same length K, got "
                         f"{len(centers)}, {len(halves)}, {len(cylinder)}")
    extra = (1,) * np.broadcast(x, y).ndim
    def col(a: np.ndarray) -> np.ndarray:
        return a.reshape(-1, *extra)
    return _footprint_distance(col(centers[:, 0]), col(centers[:, 1]), col(halves[:, 0]), col(halves[:, 1]),
                               col(cylinder), x[None], y[None])


def object_window(center: tuple[float, float], half: tuple[float, float], cylinder: bool, reach: float,
                  shape: tuple[int, int], cell_size: float,
                  ) -> tuple[slice, slice, np.ndarray]:
    """Cells whose centre lies within `reach` of a footprint (distance < reach when `reach` is a
    clearance, see `blocked_window`): the window (row slice, col slice) around the footprint and
    the distance of every window cell centre to the footprint."""
    rows, cols = shape
    cs = cell_size
    i0 = max(0, math.floor((center[1] - half[1] - reach) / cs - 0.5))
    i1 = min(rows, math.ceil((center[1] + half[1] + reach) / cs - 0.5) + 1)
    j0 = max(0, math.floor((center[0] - half[0] - reach) / cs - 0.5))
    j1 = min(cols, math.ceil((center[0] + half[0] + reach) / cs - 0.5) + 1)
    i0, j0 = min(i0, rows), min(j0, cols)
    i1, j1 = max(i1, i0), max(j1, j0)
    y = ((np.arange(i0, i1) + 0.5) * cs)[:, None]
    x = ((np.arange(j0, j1) + 0.5) * cs)[None, :]
    dist = _footprint_distance(center[0], center[1], half[0], half[1], cylinder, x, y)
    return slice(i0, i1), slice(j0, j1), dist


# ---- free space and the navigable grid ------------------------------------------------------
def wall_free_space(cells: np.ndarray, cell_size: float, clearance: float = NAV_CLEARANCE) -> np.ndarray:
    """FLOOR cells whose centre is at least `clearance` from every non-floor cell's square
    (cells beyond the grid count as non-floor). Objects are ignored."""
    _check_clearance(clearance)
    floor = cells == FLOOR
    reach = max(1, math.ceil(clearance / cell_size + 0.5))
    offsets = np.arange(-reach, reach + 1)
    gap = np.maximum(np.abs(offsets) - 0.5, 0.0) * cell_size
    structure = np.hypot(gap[:, None], gap[None, :]) < clearance
    solid = np.pad(~floor, reach, constant_values=True)
    near_solid = ndimage.binary_dilation(solid, structure=structure)[reach:-reach, reach:-reach]
    return floor & ~near_solid


def blocked_window(obj: SceneObject, shape: tuple[int, int], cell_size: float,
                   clearance: float = NAV_CLEARANCE) -> tuple[slice, slice, np.ndarray]:
    """(row slice, col slice, mask): the cells an object makes non-free (centre closer than `clearance`)."""
    rs, cs_, dist = object_window(obj.center, obj.half_extents, obj.shape == "cylinder", clearance, shape,
                                  cell_size)
    return rs, cs_, dist < clearance


def free_space(scene: Scene, clearance: float = NAV_CLEARANCE) -> np.ndarray:
    """bool [rows, cols]: cells whose centre is FLOOR and at least `clearance` metres from every
    non-floor cell's square and from every object footprint."""
    free = wall_free_space(scene.cells, scene.cell_size, clearance)
    for o in scene.objects:
        rs, cs_, blocked = blocked_window(o, scene.shape, scene.cell_size, clearance)
        free[rs, cs_] &= ~blocked
    return free


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 4-connected component of a bool grid (lowest label on ties; all False if empty)."""
    labels, n = ndimage.label(mask)
    if n == 0:
        return np.zeros_like(mask, dtype=bool)
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    sizes[0] = 0
    return labels == int(np.argmax(sizes))


def is_connected(mask: np.ndarray) -> bool:
    """True when `mask` has at least one True cell and all of them form one 4-connected component."""
    _, n = ndimage.label(np.asarray(mask, dtype=bool))
    return n == 1


def navigable_mask(scene: Scene, clearance: float = NAV_CLEARANCE) -> np.ndarray:
    """bool [rows, cols]: the largest 4-connected component of `free_space(scene, clearance)`.

    The default clearance is the agent radius (0.18 m) plus a 0.07 m margin, so an agent centred
    on a navigable cell touches nothing and planned paths keep off obstacles.
    """
    return largest_component(free_space(scene, clearance))


def object_goal_cells(scene: Scene, object_ids: int | Sequence[int], radius: float = GOAL_RADIUS,
                      clearance: float = NAV_CLEARANCE, navigable: np.ndarray | None = None) -> np.ndarray:
    """bool [rows, cols]: navigable cells whose centre lies within `radius` metres of the footprint of
    any of the objects `object_ids`. Pass a precomputed `navigable` mask to skip recomputing it."""
    if isinstance(object_ids, (int, np.integer)):
        object_ids = [int(object_ids)]
    if not (isinstance(radius, (int, float)) and radius > 0):
        raise ValueError(f"radius must be a positive number of metres, got {radius!r}")
    nav = navigable_mask(scene, clearance) if navigable is None else np.asarray(navigable, dtype=bool)
    if nav.shape != scene.shape:
        raise ValueError(f"navigable must have the scene's grid shape {scene.shape}, got {nav.shape}")
    near = np.zeros(scene.shape, dtype=bool)
    for k in object_ids:
        if not 0 <= k < len(scene.objects):
            raise ValueError(f"object id {k} is not in scene {scene.scene_id} (ids 0..{len(scene.objects) - 1})")
        o = scene.objects[k]
        rs, cs_, dist = object_window(o.center, o.half_extents, o.shape == "cylinder", radius, scene.shape,
                                      scene.cell_size)
        near[rs, cs_] |= dist <= radius
    return near & nav


def _check_clearance(clearance: float) -> None:
    if not (isinstance(clearance, (int, float)) and math.isfinite(clearance) and clearance >= 0):
        raise ValueError(f"clearance must be a non-negative number of metres, got {clearance!r}")
