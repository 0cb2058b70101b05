"""Small hand-made scenes for tests (no generator involved)."""

from __future__ import annotations

import numpy as np

from vlarena.datasets.scene import FLOOR, WALL, Room, Scene, SceneObject


def box_room(width_m: float = 4.0, depth_m: float = 4.0, objects: list[dict] | None = None,
             room_type: str = "kitchen", cell_size: float = 0.25) -> Scene:
    """One rectangular room with a one-cell wall ring; interior x in [cs, cs + width_m]."""
    cols = int(round(width_m / cell_size)) + 2
    rows = int(round(depth_m / cell_size)) + 2
    cells = np.full((rows, cols), WALL, dtype=np.uint8)
    cells[1:-1, 1:-1] = FLOOR
    room_ids = np.full((rows, cols), -1, dtype=np.int16)
    room_ids[1:-1, 1:-1] = 0
    objs = []
    for k, o in enumerate(objects or []):
        objs.append(SceneObject(
            id=k, category=o.get("category", "fridge"), colour=o.get("colour", "red"), shape=o.get("shape", "box"),
            center=tuple(o["center"]), half_extents=tuple(o.get("half_extents", (0.3, 0.3))),
            z_range=tuple(o.get("z_range", (0.0, 1.0))), room=0))
    return Scene("test_room", 0, cell_size, 2.7, cells, room_ids, [Room(0, room_type, (1, 1, rows - 1, cols - 1))],
                 [], objs)


# a tiny generated R2R dataset (seconds to generate) and a ViT for its 4 x 16x16 panoramas
TINY_R2R = {"scenes": {"seen": 2, "val_unseen": 1, "test": 1},
            "paths_per_scene": {"train": 6, "val_seen": 3, "val_unseen": 6, "test": 4}}
TINY_PANORAMA_VIT = {"image_size": [16, 64], "patch_size": 8, "width": 32, "depth": 1, "heads": 2}
