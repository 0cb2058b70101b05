"""(frame, caption) pairs from the simulator, for image-text pretraining (CLIP) and retrieval tests.

Frames are the panoramas `vlarena/R2R-v0` shows (K views stitched left to right, centred on the
heading; with `hfov_deg` each view that wide instead of 360 / K, e.g. one 90-degree view as
`vlarena/ObjectNav-v0` shows), taken at the navigation-graph viewpoints of one R2R split's scenes with a random heading.
The caption is written from the ground truth of what is in view, from the renderer's instance map:
the room type of the viewpoint, then for each direction (ahead: within 45 degrees of the heading; on
the left / right: 45 to 135 degrees; behind) the largest objects seen there (at most `per_direction`,
each covering at least `min_fraction` of one view), named by colour and category:

    "a kitchen with a white fridge and a grey counter ahead, a red chair on the left"

An object seen in several directions is named once, where most of its pixels are. A frame with
nothing in view reads "an empty hallway". Sampling is seeded: the same arguments give the same pairs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from vlarena.datasets.catalog import readable
from vlarena.datasets.scene import Scene
from vlarena.envs.r2r_data import R2RDataConfig, load_split
from vlarena.envs.r2r_graph import R2RGraphConfig, panorama_poses, stitch_panorama
from vlarena.envs.renderer import Renderer
from vlarena.envs.scene_tensors import SceneTensors

DIRECTIONS = ("ahead", "on the left", "on the right", "behind")


@dataclass
class CaptionSet:
    rgb: torch.Tensor  # uint8 (N, H, K * W, 3)
    captions: list[str]
    scene_ids: list[str]  # the scan of each frame
    split: str

    def __len__(self) -> int:
        return len(self.captions)


def column_directions(views: int, width: int, hfov_deg: float | None = None) -> np.ndarray:
    """Direction index (into DIRECTIONS) of each column of K views 360 / K apart, each `hfov_deg` wide
    (None: 360 / K, a panorama), (K * W,)."""
    step = 2 * math.pi / views
    half = math.tan((step if hfov_deg is None else math.radians(hfov_deg)) / 2)
    out = np.empty(views * width, dtype=np.int64)
    for i in range(views):
        centre = (views / 2 - 0.5 - i) * step  # counter-clockwise (left) positive
        for c in range(width):
            a = centre + math.atan((width / 2 - 0.5 - c) / (width / 2) * half)
            a = (a + math.pi) % (2 * math.pi) - math.pi
            deg = math.degrees(a)
            out[i * width + c] = 0 if abs(deg) <= 45 else 1 if 45 < deg <= 135 else 2 if -135 <= deg < -45 else 3
    return out


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def caption_panorama(scene: Scene, room_type: str, instance: np.ndarray, directions: np.ndarray,
                     view_pixels: int, per_direction: int = 2, min_fraction: float = 0.015) -> str:
    """The caption of one panorama from its instance map (H, K * W) (object slot, -1 none)."""
    seen: list[list[tuple[int, int]]] = [[] for _ in DIRECTIONS]
    ids, counts = np.unique(instance[instance >= 0], return_counts=True)
    for obj, total in zip(ids.tolist(), counts.tolist(), strict=True):
        if obj >= len(scene.objects) or total < min_fraction * view_pixels:
            continue
        cols = directions[np.nonzero(instance == obj)[1]]
        where = int(np.bincount(cols, minlength=len(DIRECTIONS)).argmax())
        seen[where].append((total, obj))
    room = readable(room_type)
    parts = []
    for d, objs in enumerate(seen):
        names = []
        for _, obj in sorted(objs, reverse=True)[:per_direction]:
            o = scene.objects[obj]
            names.append(f"{_article(o.colour)} {o.colour} {readable(o.category)}")
        if names:
            parts.append(f"{_join(names)} {DIRECTIONS[d]}")
    if not parts:
        return f"an empty {room}"
    return f"{_article(room)} {room} with " + ", ".join(parts)


def render_caption_set(split: str, dataset: R2RDataConfig | None = None, num_frames: int = 1000, views: int = 4,
                       width: int = 32, height: int = 32, seed: int = 0, batch: int = 256,
                       device: str = "cpu", hfov_deg: float | None = None) -> CaptionSet:
    """`num_frames` panoramas of `split`'s scenes at random viewpoints and headings, with their captions;
    each view `hfov_deg` wide (None: 360 / views)."""
    if isinstance(num_frames, bool) or not isinstance(num_frames, int) or num_frames <= 0:
        raise ValueError(f"num_frames must be a positive int, got {num_frames!r}")
    render = R2RGraphConfig(views=views, width=width, height=height).render_config(hfov_deg)
    data = load_split(split, dataset or R2RDataConfig())
    renderer = Renderer(SceneTensors.from_scenes(data.scenes, device=device), render)
    rng = np.random.default_rng(seed)
    scene_idx = rng.integers(0, len(data.scenes), num_frames)
    vps = np.array([rng.integers(0, len(data.graphs[s])) for s in scene_idx])
    headings = rng.uniform(-math.pi, math.pi, num_frames)
    directions = column_directions(views, width, hfov_deg)
    rgb = torch.empty(num_frames, height, views * width, 3, dtype=torch.uint8)
    captions: list[str] = []
    for start in range(0, num_frames, batch):
        sl = slice(start, min(start + batch, num_frames))
        s = scene_idx[sl]
        xy = torch.tensor(np.stack([data.graphs[k].positions[v, :2] for k, v in zip(s, vps[sl], strict=True)]),
                          dtype=torch.float32, device=device)
        pose = panorama_poses(xy, torch.tensor(headings[sl], dtype=torch.float32, device=device), views)
        out = renderer.render(torch.tensor(s, device=device).repeat_interleave(views), pose,
                              outputs=("rgb", "instance"))
        rgb[sl] = stitch_panorama(out["rgb"], views).cpu()
        inst = stitch_panorama(out["instance"], views).cpu().numpy()
        for row, k, v in zip(inst, s, vps[sl], strict=True):
            scene, graph = data.scenes[k], data.graphs[k]
            room_id = graph.room_ids[v] if graph.room_ids else -1
            room_type = scene.room_type_of(room_id) if room_id >= 0 else "hallway"
            captions.append(caption_panorama(scene, room_type, row, directions, width * height))
    return CaptionSet(rgb, captions, [data.scenes[k].scene_id for k in scene_idx], split)
