"""Batched egocentric rendering: RGB, depth, semantic and instance ids for B agents at once.

A 2.5D raycaster in the family of ViZDoom and megastep: one ray per image column against the wall
grid (exact grid-line crossings) and against analytic object shapes (axis-aligned boxes and
upright cylinders with a bottom and a top), floor and ceiling by perspective. Pinhole camera at
`camera_height` looking horizontally along the agent's heading, square pixels, column 0 leftmost,
row 0 topmost. Depth is z-depth along the forward axis (habitat convention), clamped to
`max_depth`; pixels beyond it keep their colour.

Looks: walls take the colour and pattern of the room in front of them (catalog.ROOM_STYLES; door
openings show DOOR_RGB jambs), x-facing walls lit more than y-facing ones; floors take the room's
colour and pattern (checker tiles 0.5 m, planks 0.2 m, plain), door thresholds DOOR_RGB; objects
their catalog colour, sides shaded by the face normal against a fixed light, tops lighter,
bottoms darker.

Usage::

    renderer = Renderer(SceneTensors.from_scenes(scenes), RenderConfig(width=64, height=64))
    obs = renderer.render(scene_idx, pose)   # scene_idx long [B], pose float [B, 3] (x, y, heading)
    obs["rgb"], obs["depth"], obs["semantic"], obs["instance"]

    obs = renderer.render(scene_idx, pose, outputs=("rgb", "depth"))   # skip the id maps

Speed: stages (walls, object keys, column tables, pixels) are compiled separately with
`RenderConfig(compile=True)`; each (batch bucket, resolution) compiles once (about 10 s cold, under
1 s from the inductor disk cache) and is cached; compiled renders pad the batch to the next of
1, 2, 3, 4, 6, 8, 12, 16, 24, ... so odd batch sizes do not recompile. Eager mode shades big batches
a few agents at a time. On CPU, constructing a Renderer raises glibc's mmap/trim thresholds once
per process (see `_keep_freed_memory`); `reuse_buffers=True` writes outputs into buffers reused
across calls instead (the tensors returned are then overwritten by the next call).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable
from dataclasses import dataclass

import torch

from vlarena.datasets.catalog import (
    CEILING_RGB,
    DOOR_RGB,
    ROOM_STYLES,
    SEM_CEILING,
    SEM_FLOOR,
    SEM_OBJECT_BASE,
    SEM_WALL,
)
from vlarena.envs import renderer_kernels as K
from vlarena.envs.scene_tensors import ROOM_DOOR, ROOM_NONE, SceneTensors

OUTPUT_KEYS = ("rgb", "depth", "semantic", "instance")
WAINSCOT_Z = 0.9  # top of the darker lower band of wainscot walls (metres)
_NONE_RGB = (110, 110, 110)
_EAGER_PIXELS = 1 << 18  # eager mode shades at most this many pixels at a time  # looks of cells with no room (seen only from inside walls)


@dataclass
class RenderConfig:
    width: int = 64
    height: int = 64
    hfov_deg: float = 90.0
    camera_height: float = 1.25  # metres above the floor; must be below every scene's wall height
    max_depth: float = 10.0  # depth is clamped here (colours are not)
    compile: bool = False  # torch.compile the stages (benchmarks turn it on; tests stay eager)
    max_layers: int = 4  # objects kept per image column, nearest first
    wall_chunk: int = 32  # grid-line crossings tested per pass; unresolved rays get another pass
    reuse_buffers: bool = False  # write outputs into buffers reused across calls (see Renderer.render)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        for name in ("width", "height", "max_layers", "wall_chunk"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"render.{name} must be a positive int, got {value!r}")
        if not _is_number(self.hfov_deg) or not 0 < self.hfov_deg < 180:
            raise ValueError(f"render.hfov_deg must be a number in (0, 180) degrees, got {self.hfov_deg!r}")
        for name in ("camera_height", "max_depth"):
            value = getattr(self, name)
            if not _is_number(value) or not 0 < value < math.inf:
                raise ValueError(f"render.{name} must be a positive finite number (metres), got {value!r}")
        for name in ("compile", "reuse_buffers"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"render.{name} must be a bool, got {getattr(self, name)!r}")


def _is_number(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def column_slopes(width: int, hfov_deg: float) -> torch.Tensor:
    """float64 [W]: column c's ray is forward + u[c] * left (u > 0 left of the centre, the image's left first)."""
    t = math.tan(math.radians(hfov_deg) / 2)
    return t * (1 - (2 * torch.arange(width, dtype=torch.float64) + 1) / width)


def _bucket(batch: int) -> int:
    """The batch size a compiled render runs at: the next of 1, 2, 3, 4, 6, 8, 12, 16, 24, ... (powers
    of two and 1.5x powers of two), so odd batch sizes cost at most 1/3 more work, not a new compile."""
    p = 1 << max(0, (batch - 1).bit_length())
    return p * 3 // 4 if p >= 4 and batch <= p * 3 // 4 else p


_MALLOC_TUNED = False


def _keep_freed_memory() -> None:
    """Have glibc serve big blocks from its heap and keep freed memory for reuse (process-wide).

    By default blocks over 32 MB are fresh mmaps every call, and the first-touch page faults of a
    big batch's outputs then cost more than rendering them (3x at batch 1024, 128x128). This is
    what MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ do; elsewhere than glibc it is a no-op.
    """
    global _MALLOC_TUNED
    if _MALLOC_TUNED or not sys.platform.startswith("linux"):
        return
    _MALLOC_TUNED = True
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 1 << 30)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 1 << 30)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass


def _raise_compile_limits() -> None:
    import torch._dynamo.config as dc

    for name in ("recompile_limit", "cache_size_limit"):
        if hasattr(dc, name):
            setattr(dc, name, max(getattr(dc, name), 256))
    if hasattr(dc, "accumulated_recompile_limit"):
        dc.accumulated_recompile_limit = max(dc.accumulated_recompile_limit, 4096)
    if hasattr(dc, "accumulated_cache_size_limit"):
        dc.accumulated_cache_size_limit = max(dc.accumulated_cache_size_limit, 4096)


class Renderer:
    """Renders B agents, each in one scene of a SceneTensors pool, in one batched call."""

    def __init__(self, scenes: SceneTensors, config: RenderConfig | None = None):
        config = RenderConfig() if config is None else config
        config.validate()
        if sys.byteorder != "little":
            raise RuntimeError("Renderer packs RGBA into int32 and needs a little-endian machine")
        min_wall = float(scenes.wall_height.min())
        if config.camera_height >= min_wall - 1e-6:
            raise ValueError(f"render.camera_height must be in (0, {min_wall:.6g}) (below the lowest wall height of "
                             f"the scene pool), got {config.camera_height}")
        self.scenes = scenes
        self.config = config
        self.device = scenes.device
        if self.device.type == "cpu":
            _keep_freed_memory()
        dev = self.device
        # flat pool grids padded with a ring of solid cells: solid, and each cell's look index
        # (room type + 2: 0 no room, 1 door opening)
        self._solid = torch.nn.functional.pad(scenes.solid.to(torch.uint8), (1, 1, 1, 1), value=1).bool().reshape(-1)
        look = (scenes.room_type + 2).to(torch.int32)
        self._look = torch.nn.functional.pad(look, (1, 1, 1, 1), value=ROOM_NONE + 2).reshape(-1)
        # looks by look index: packed wall colours (x-facing upper, y-facing upper, x lower, y lower;
        # wainscot darkens the lower band) and the floor's colour | pattern << 24
        assert ROOM_NONE + 2 == 0 and ROOM_DOOR + 2 == 1
        styles = list(ROOM_STYLES.values())
        wall = torch.tensor([_NONE_RGB, DOOR_RGB] + [st.wall_rgb for st in styles], dtype=torch.float32)
        lower = torch.tensor([1.0, 1.0] + [0.72 if st.wall_pattern == 3 else 1.0 for st in styles])[:, None]
        self._wall_colours = torch.stack([K.pack_rgb(wall), K.pack_rgb(wall * 0.8), K.pack_rgb(wall * lower),
                                          K.pack_rgb(wall * lower * 0.8)]).to(dev)
        floor = torch.tensor([_NONE_RGB, DOOR_RGB] + [st.floor_rgb for st in styles], dtype=torch.float32)
        pattern = torch.tensor([0, 0] + [st.floor_pattern for st in styles], dtype=torch.int32)
        floor_word = (K.pack_rgb(floor) & 0xFFFFFF) | (pattern << 24)
        self._floor_word = floor_word.to(dev)[self._look.long()]
        self._ceiling = int(K.pack_rgb(torch.tensor(CEILING_RGB, dtype=torch.float32)))
        self.refresh_objects()
        self._layers = min(config.max_layers, scenes.max_objects)
        self._rows, self._cols = scenes.rows, scenes.cols
        self._max_chunks = (max(self._rows, self._cols) + 2) // config.wall_chunk + 2
        self._cameras: dict[tuple[int, int], tuple[torch.Tensor, ...]] = {}
        self._buffers: dict[tuple, tuple[torch.Tensor, ...]] = {}
        if config.compile:
            _raise_compile_limits()
            self._walls = torch.compile(K.walls_first_pass, dynamic=False)
            self._walls_more = torch.compile(K.cast_walls, dynamic=True)
            self._objects = torch.compile(K.object_keys, dynamic=False)
            self._columns = torch.compile(K.column_tables, dynamic=False)
            self._pixels = torch.compile(K.shade_pixels, dynamic=False)
        else:
            self._walls, self._walls_more = K.walls_first_pass, K.cast_walls
            self._objects, self._columns, self._pixels = K.object_keys, K.column_tables, K.shade_pixels

    def refresh_objects(self) -> None:
        """Re-read the objects' shapes, semantic ids and colours from the scene tensors (call it after
        changing `obj_shape`, `obj_category`, `obj_valid` or `obj_rgb`; positions are read every render)."""
        scenes = self.scenes
        # objects: shapes as bool, semantic id per object slot (padding reads as wall; never hit)
        self._obj_cyl = scenes.obj_shape == 1
        cat = scenes.obj_category.clamp(min=0)
        self._obj_sem = torch.where(scenes.obj_valid, SEM_OBJECT_BASE + cat, SEM_WALL).to(torch.int32)
        self._obj_top = K.pack_rgb(scenes.obj_rgb * 1.12 + 12.0)  # top faces lighter, bottoms darker
        self._obj_bottom = K.pack_rgb(scenes.obj_rgb * 0.5)

    # ---- camera -----------------------------------------------------------------------------
    def _camera(self) -> tuple[torch.Tensor, ...]:
        """Column offsets u [W], row slopes v [H], 1 / v and the floor's ray parameter per row."""
        w, h = self.config.width, self.config.height
        key = (w, h)
        if key not in self._cameras:
            t = math.tan(math.radians(self.config.hfov_deg) / 2)
            tv = t * h / w
            u = column_slopes(w, self.config.hfov_deg)
            v = tv * (1 - (2 * torch.arange(h, dtype=torch.float64) + 1) / h)
            v = torch.where(v == 0, torch.full_like(v, -1e-7), v)  # the horizon row of odd heights
            inv_v = 1 / v
            s_floor = torch.where(v < 0, -self.config.camera_height * inv_v, 0.0)
            self._cameras[key] = tuple(x.to(torch.float32).to(self.device) for x in (u, v, inv_v, s_floor))
        return self._cameras[key]

    # ---- rendering --------------------------------------------------------------------------
    @torch.no_grad()
    def render(self, scene_idx: torch.Tensor, pose: torch.Tensor,
               outputs: Iterable[str] = OUTPUT_KEYS) -> dict[str, torch.Tensor]:
        """Render agent b in scene `scene_idx[b]` at `pose[b]` = (x, y, heading rad).

        Returns a dict with the keys asked for in `outputs` (all by default; asking for only rgb
        and/or depth skips the id maps):
        "rgb" uint8 [B, H, W, 3] (a strided view of a packed RGBA int32 buffer),
        "depth" float32 [B, H, W, 1] (metres, z-depth, clamped to max_depth),
        "semantic" int32 [B, H, W] (SEM_WALL / SEM_FLOOR / SEM_CEILING or SEM_OBJECT_BASE + category),
        "instance" int32 [B, H, W] (object slot 0..K-1, -1 where no object is seen).
        With `reuse_buffers=True`, the tensors returned are overwritten by the next call with the
        same batch size and outputs: copy them to keep them.
        """
        outputs = tuple(outputs)
        bad = [k for k in outputs if k not in OUTPUT_KEYS]
        if bad or not outputs:
            raise ValueError(f"render outputs must be a non-empty subset of {list(OUTPUT_KEYS)}, got {list(outputs)}")
        if scene_idx.dim() != 1 or pose.dim() != 2 or pose.shape != (scene_idx.shape[0], 3):
            raise ValueError(f"render needs scene_idx [B] and pose [B, 3], got {tuple(scene_idx.shape)} and "
                             f"{tuple(pose.shape)}")
        scene_idx = scene_idx.to(self.device, torch.int64)
        pose = pose.to(self.device, torch.float32)
        batch = scene_idx.shape[0]
        with_ids = "semantic" in outputs or "instance" in outputs
        if batch == 0:
            res = self._empty(with_ids)
        else:
            padded = _bucket(batch) if self.config.compile else batch
            if padded > batch:  # compiled graphs are per batch size: pad to a few sizes, slice back
                scene_idx = torch.cat([scene_idx, scene_idx[:1].expand(padded - batch)])
                pose = torch.cat([pose, pose[:1].expand(padded - batch, 3)])
            res = self._render(scene_idx, pose, with_ids)
            if padded > batch:
                res = tuple(t[:batch] for t in res)
        b, hh, ww = res[0].shape
        out = {}
        if "rgb" in outputs:
            out["rgb"] = res[0].view(torch.uint8).view(b, hh, ww, 4)[..., :3]
        if "depth" in outputs:
            out["depth"] = res[1].unsqueeze(-1)
        if "semantic" in outputs:
            out["semantic"] = res[2]
        if "instance" in outputs:
            out["instance"] = res[3]
        return out

    def _render(self, scene_idx: torch.Tensor, pose: torch.Tensor, with_ids: bool) -> tuple[torch.Tensor, ...]:
        """The stages: walls (and further chunks where needed), objects, column tables, pixels."""
        cfg, sc = self.config, self.scenes
        u, v, inv_v, s_floor = self._camera()
        rows, cols, cell = self._rows, self._cols, sc.cell_size
        dx, dy, s, x_face, front, unresolved = self._walls(pose, scene_idx, u, self._solid, self._look,
                                                           cfg.wall_chunk, rows, cols, cell)
        s, x_face, front = self._more_walls(pose, scene_idx, dx, dy, s, x_face, front, unresolved)
        key = self._objects(pose, scene_idx, dx, dy, s, sc.obj_center, sc.obj_half, self._obj_cyl, sc.obj_valid)
        columns = self._columns(pose, scene_idx, dx, dy, s, x_face, front, key, sc.wall_height, sc.obj_center,
                                sc.obj_half, sc.obj_z, self._obj_cyl, sc.obj_rgb, self._obj_sem, self._obj_top,
                                self._obj_bottom, self._wall_colours, float(cfg.camera_height), WAINSCOT_Z,
                                self._layers)
        batch = scene_idx.shape[0]
        out = self._out_buffers(batch, with_ids) if cfg.reuse_buffers else None
        args = (self._floor_word, rows, cols, cell, self._ceiling, float(cfg.max_depth), self._layers, SEM_WALL,
                SEM_FLOOR, SEM_CEILING, with_ids)
        step = max(1, _EAGER_PIXELS // (cfg.height * cfg.width))
        if cfg.compile or batch <= step:
            return self._pixels(v, inv_v, s_floor, pose, scene_idx, dx, dy, columns, *args, out)
        # eager: per-pixel temporaries of a big batch would each be fresh (page-faulting) memory;
        # shade a few agents at a time into the outputs instead
        out = self._empty(with_ids, batch) if out is None else out
        for a in range(0, batch, step):
            sl = slice(a, a + step)
            self._pixels(v, inv_v, s_floor, pose[sl], scene_idx[sl], dx[sl], dy[sl], tuple(t[sl] for t in columns),
                         *args, tuple(t[sl] for t in out))
        return out

    def _empty(self, with_ids: bool, batch: int = 0) -> tuple[torch.Tensor, ...]:
        shape = (batch, self.config.height, self.config.width)
        res = [torch.empty(shape, dtype=torch.int32, device=self.device),
               torch.empty(shape, dtype=torch.float32, device=self.device)]
        if with_ids:
            res += [torch.empty(shape, dtype=torch.int32, device=self.device) for _ in range(2)]
        return tuple(res)

    def _more_walls(self, pose, scene_idx, dx, dy, s, x_face, front, unresolved):
        """Further chunks of grid-line crossings for the (few) rays the first chunk did not settle."""
        n = self.config.wall_chunk
        b, w = dx.shape
        chunk = 1
        while bool(unresolved.any()):
            if chunk > self._max_chunks:  # cannot happen: rays leave the grid, and off-grid cells are solid
                raise RuntimeError("wall casting did not converge")
            idx = unresolved.reshape(-1).nonzero().squeeze(1)
            agent = torch.div(idx, w, rounding_mode="floor")
            s_flat, xf_flat, fr_flat = s.reshape(-1), x_face.reshape(-1), front.reshape(-1)
            s2, xf2, fr2, limit = self._walls_more(
                pose[agent, 0], pose[agent, 1], dx.reshape(-1)[idx], dy.reshape(-1)[idx],
                scene_idx[agent] * ((self._rows + 2) * (self._cols + 2)), self._solid, self._look, chunk * n, n,
                self._rows, self._cols, self.scenes.cell_size)
            s_old = s_flat[idx]
            better = s2 < s_old
            s_new = torch.where(better, s2, s_old)
            s_flat = s_flat.index_put((idx,), s_new)
            xf_flat = xf_flat.index_put((idx,), torch.where(better, xf2, xf_flat[idx]))
            fr_flat = fr_flat.index_put((idx,), torch.where(better, fr2, fr_flat[idx]))
            unresolved = torch.zeros_like(unresolved).reshape(-1).index_put((idx,), s_new > limit)
            s, x_face, front = s_flat.view(b, w), xf_flat.view(b, w), fr_flat.view(b, w)
            chunk += 1
        return s, x_face, front

    def _out_buffers(self, batch: int, with_ids: bool) -> tuple[torch.Tensor, ...]:
        key = (batch, self.config.height, self.config.width, with_ids)
        if key not in self._buffers:
            shape = key[:3]
            bufs = [torch.empty(shape, dtype=torch.int32, device=self.device),
                    torch.empty(shape, dtype=torch.float32, device=self.device)]
            if with_ids:
                bufs += [torch.empty(shape, dtype=torch.int32, device=self.device) for _ in range(2)]
            self._buffers[key] = tuple(bufs)
        return self._buffers[key]
