"""Top-down maps of scenes with agent paths and goals (numpy + PIL, for pictures, not for speed)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from vlarena.datasets.catalog import COLOURS, DOOR_RGB, ROOM_STYLES
from vlarena.datasets.scene import FLOOR, WALL, Scene

WALL_RGB = (60, 60, 60)
OUTSIDE_RGB = (255, 255, 255)


def draw_map(scene: Scene, path: Sequence[tuple[float, float]] = (), heading: float | None = None,
             goal_objects: Sequence[int] = (), goal_points: Sequence[tuple[float, float]] = (),
             pixels_per_cell: int = 6) -> Image.Image:
    """The scene from above (north up): rooms in their floor colour, objects in theirs, the path in
    red from a green start, goal objects outlined in magenta, the agent as a red triangle."""
    rows, cols = scene.shape
    rgb = np.empty((rows, cols, 3), dtype=np.uint8)
    rgb[:] = OUTSIDE_RGB
    rgb[scene.cells == WALL] = WALL_RGB
    floor = scene.cells == FLOOR
    rgb[floor & (scene.room_ids < 0)] = DOOR_RGB
    for room in scene.rooms:
        rgb[floor & (scene.room_ids == room.id)] = ROOM_STYLES[room.type].floor_rgb
    k = pixels_per_cell
    img = Image.fromarray(np.repeat(np.repeat(rgb[::-1], k, axis=0), k, axis=1))
    draw = ImageDraw.Draw(img)
    scale = k / scene.cell_size
    height_px = rows * k

    def px(x: float, y: float) -> tuple[float, float]:
        return x * scale, height_px - y * scale

    for o in scene.objects:
        (cx, cy), (hx, hy) = o.center, o.half_extents
        x0, y0 = px(cx - hx, cy + hy)
        x1, y1 = px(cx + hx, cy - hy)
        outline = (255, 0, 255) if o.id in goal_objects else (0, 0, 0)
        width = 3 if o.id in goal_objects else 1
        if o.shape == "cylinder":
            draw.ellipse([x0, y0, x1, y1], fill=COLOURS[o.colour], outline=outline, width=width)
        else:
            draw.rectangle([x0, y0, x1, y1], fill=COLOURS[o.colour], outline=outline, width=width)
    for gx, gy in goal_points:
        x, y = px(gx, gy)
        draw.ellipse([x - 5, y - 5, x + 5, y + 5], outline=(255, 0, 255), width=3)
    if path:
        pts = [px(x, y) for x, y in path]
        if len(pts) > 1:
            draw.line(pts, fill=(220, 0, 0), width=2)
        sx, sy = pts[0]
        draw.ellipse([sx - 4, sy - 4, sx + 4, sy + 4], fill=(0, 170, 0))
        if heading is not None:
            ax, ay = pts[-1]
            tip = (ax + 9 * np.cos(heading), ay - 9 * np.sin(heading))
            left = (ax + 6 * np.cos(heading + 2.5), ay - 6 * np.sin(heading + 2.5))
            right = (ax + 6 * np.cos(heading - 2.5), ay - 6 * np.sin(heading - 2.5))
            draw.polygon([tip, left, right], fill=(220, 0, 0))
    return img
