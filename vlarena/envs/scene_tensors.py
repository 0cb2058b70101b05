"""A pool of scenes as padded batch tensors on one device.

Every agent of a batched env points at one scene of the pool by index; the renderer, the motion
model and the geodesic fields read the pool with that index (flat gathers, no per-agent copies).
Grids are padded to the largest scene with solid cells; object lists are padded to the largest
count with invalid objects parked far outside every scene.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from vlarena.datasets.catalog import CATEGORY_NAMES, COLOURS, ROOM_TYPES, SHAPES
from vlarena.datasets.scene import FLOOR, Scene

PARKED = -1.0e4  # where padding objects live: never hit by a ray, never collided with
ROOM_DOOR = -1  # room_type value of a door opening
ROOM_NONE = -2  # room_type value of a wall / outside / padding cell


@dataclass
class SceneTensors:
    """Padded tensors for S scenes with at most R x C cells and K objects."""

    scene_ids: list[str]
    cell_size: float
    solid: torch.Tensor  # bool [S, R, C]: wall, outside or padding
    room_type: torch.Tensor  # int64 [S, R, C]: index into ROOM_TYPES, ROOM_DOOR or ROOM_NONE
    room_id: torch.Tensor  # int64 [S, R, C]: room id within the scene, -1 where none
    grid_shape: torch.Tensor  # int64 [S, 2]: each scene's own (rows, cols)
    wall_height: torch.Tensor  # float32 [S]
    obj_center: torch.Tensor  # float32 [S, K, 2]
    obj_half: torch.Tensor  # float32 [S, K, 2]
    obj_z: torch.Tensor  # float32 [S, K, 2]: bottom, top
    obj_shape: torch.Tensor  # int64 [S, K]: index into SHAPES (0 box, 1 cylinder)
    obj_category: torch.Tensor  # int64 [S, K]: index into CATEGORY_NAMES, -1 for padding
    obj_rgb: torch.Tensor  # float32 [S, K, 3] in [0, 255]
    obj_valid: torch.Tensor  # bool [S, K]
    obj_room: torch.Tensor  # int64 [S, K]: room id, -1 for padding

    @property
    def num_scenes(self) -> int:
        return self.solid.shape[0]

    @property
    def rows(self) -> int:
        return self.solid.shape[1]

    @property
    def cols(self) -> int:
        return self.solid.shape[2]

    @property
    def max_objects(self) -> int:
        return self.obj_center.shape[1]

    @property
    def device(self) -> torch.device:
        return self.solid.device

    @classmethod
    def from_scenes(cls, scenes: Sequence[Scene], device: str | torch.device = "cpu",
                    min_objects: int = 1) -> SceneTensors:
        if len(scenes) == 0:
            raise ValueError("SceneTensors needs at least one scene, got an empty list")
        sizes = {s.cell_size for s in scenes}
        if len(sizes) != 1:
            raise ValueError(f"all scenes of a pool must share one cell_size, got {sorted(sizes)}")
        n = len(scenes)
        rows = max(s.shape[0] for s in scenes)
        cols = max(s.shape[1] for s in scenes)
        k = max(min_objects, max(len(s.objects) for s in scenes))
        solid = np.ones((n, rows, cols), dtype=bool)
        room_type = np.full((n, rows, cols), ROOM_NONE, dtype=np.int64)
        room_id = np.full((n, rows, cols), -1, dtype=np.int64)
        center = np.full((n, k, 2), PARKED, dtype=np.float32)
        half = np.full((n, k, 2), 0.01, dtype=np.float32)
        z = np.zeros((n, k, 2), dtype=np.float32)
        z[..., 1] = 0.01
        shape = np.zeros((n, k), dtype=np.int64)
        category = np.full((n, k), -1, dtype=np.int64)
        rgb = np.zeros((n, k, 3), dtype=np.float32)
        valid = np.zeros((n, k), dtype=bool)
        obj_room = np.full((n, k), -1, dtype=np.int64)
        type_index = {t: i for i, t in enumerate(ROOM_TYPES)}
        for si, s in enumerate(scenes):
            r, c = s.shape
            floor = s.cells == FLOOR
            solid[si, :r, :c] = ~floor
            rt = np.full((r, c), ROOM_NONE, dtype=np.int64)
            rt[floor] = ROOM_DOOR
            for room in s.rooms:
                rt[floor & (s.room_ids == room.id)] = type_index[room.type]
            room_type[si, :r, :c] = rt
            room_id[si, :r, :c] = np.where(floor, s.room_ids, -1)
            for o in s.objects:
                center[si, o.id] = o.center
                half[si, o.id] = o.half_extents
                z[si, o.id] = o.z_range
                shape[si, o.id] = SHAPES.index(o.shape)
                category[si, o.id] = CATEGORY_NAMES.index(o.category)
                rgb[si, o.id] = COLOURS[o.colour]
                valid[si, o.id] = True
                obj_room[si, o.id] = o.room

        def t(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(a).to(device)

        return cls(
            scene_ids=[s.scene_id for s in scenes],
            cell_size=float(scenes[0].cell_size),
            solid=t(solid),
            room_type=t(room_type),
            room_id=t(room_id),
            grid_shape=t(np.array([s.shape for s in scenes], dtype=np.int64)),
            wall_height=t(np.array([s.wall_height for s in scenes], dtype=np.float32)),
            obj_center=t(center),
            obj_half=t(half),
            obj_z=t(z),
            obj_shape=t(shape),
            obj_category=t(category),
            obj_rgb=t(rgb),
            obj_valid=t(valid),
            obj_room=t(obj_room),
        )

    def cell_index(self, xy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(i, j) integer cell of world points [..., 2] (unclamped)."""
        ij = torch.floor(xy / self.cell_size).long()
        return ij[..., 1], ij[..., 0]

    def lookup(self, grid: torch.Tensor, scene_idx: torch.Tensor, i: torch.Tensor, j: torch.Tensor,
               outside: int | bool = True) -> torch.Tensor:
        """grid[scene_idx, i, j] with broadcasting; cells off the padded grid read `outside`.

        `scene_idx` has shape [B] and `i`, `j` shape [B, ...].
        """
        inside = (i >= 0) & (i < self.rows) & (j >= 0) & (j < self.cols)
        s = scene_idx.view(-1, *([1] * (i.dim() - 1)))
        flat = (s * self.rows + i.clamp(0, self.rows - 1)) * self.cols + j.clamp(0, self.cols - 1)
        vals = grid.reshape(-1)[flat.reshape(-1)].view(flat.shape)
        return torch.where(inside, vals, torch.as_tensor(outside, dtype=grid.dtype, device=grid.device))
