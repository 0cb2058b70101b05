"""Procedural apartments: `generate_scene(seed)` -> a furnished, navigable `Scene` (numpy only).

A scene is a floor plan (`vlarena.datasets.layout`: 4-12 typed rooms cut from an 8-25 m
rectangle or L, joined by 1.0 m doors) furnished by room type (`vlarena.datasets.furnish`).
Guarantees, for every seed:

- the free space at the default navigation clearance (`vlarena.datasets.navigation`) is one
  4-connected component, so every navigable cell is reachable from every other one;
- every room keeps navigable cells, and every object has a navigable cell within 0.75 m of its
  footprint;
- kitchens hold a fridge, bedrooms a bed, bathrooms a toilet; with 4 or more rooms there is at
  least one kitchen, bathroom, bedroom and living room;
- the same seed gives the same scene bit for bit (one `numpy.random.default_rng(seed)` stream).
"""

from __future__ import annotations

import numpy as np

from vlarena.datasets.furnish import Furnisher
from vlarena.datasets.layout import CELL_SIZE, make_plan
from vlarena.datasets.scene import Scene

WALL_HEIGHT = 2.7
MAX_ROOMS = 16  # what a 25 x 25 m apartment reliably holds
MAX_ATTEMPTS = 50


def generate_scene(seed: int, scene_id: str | None = None, min_rooms: int = 4, max_rooms: int = 12) -> Scene:
    """Generate the apartment for `seed` with a room count drawn uniformly from [min_rooms, max_rooms].

    `scene_id` defaults to f"scene_{seed:05d}". Raises ValueError for a negative seed or room
    counts outside 1 <= min_rooms <= max_rooms <= 16.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    for name, value in (("min_rooms", min_rooms), ("max_rooms", max_rooms)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= MAX_ROOMS:
            raise ValueError(f"{name} must be an int in [1, {MAX_ROOMS}], got {value!r}")
    if min_rooms > max_rooms:
        raise ValueError(f"min_rooms must be <= max_rooms, got min_rooms={min_rooms}, max_rooms={max_rooms}")
    seed = int(seed)
    rng = np.random.default_rng(seed)
    n_rooms = int(rng.integers(min_rooms, max_rooms + 1))
    for _ in range(MAX_ATTEMPTS):
        plan = make_plan(rng, n_rooms)
        furnisher = Furnisher(rng, plan, CELL_SIZE, WALL_HEIGHT)
        if not furnisher.valid:
            continue
        if all(furnisher.furnish_room(room.id) for room in plan.rooms):
            return Scene(
                scene_id=f"scene_{seed:05d}" if scene_id is None else scene_id,
                seed=seed,
                cell_size=CELL_SIZE,
                wall_height=WALL_HEIGHT,
                cells=plan.cells,
                room_ids=plan.room_ids,
                rooms=plan.rooms,
                doors=plan.doors,
                objects=furnisher.objects,
            )
    raise RuntimeError(f"generate_scene({seed}): no valid apartment with {n_rooms} rooms in {MAX_ATTEMPTS} attempts")
