"""A GIF of a few episodes of an agent, one row per episode: the frame it saw (e.g. R2R's panorama strip), the
instruction, and each step's action; a finished row holds its last frame with its outcome (success or not)."""

from __future__ import annotations

import io
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import imageio.v2 as imageio
import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from vlarena.datasets.jsonio import write_bytes_atomic

CAPTION_LINES = 3
LINE_PX = 12


def _rows(value: Any) -> np.ndarray:
    return value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)


def _tile(view: np.ndarray, instruction: str, status: str, scale: int) -> Image.Image:
    img = Image.fromarray(view).resize((view.shape[1] * scale, view.shape[0] * scale), Image.NEAREST)
    chars = max(20, img.width // 6)
    lines = textwrap.wrap(instruction, chars)[:CAPTION_LINES] + [status]
    tile = Image.new("RGB", (img.width, img.height + LINE_PX * len(lines) + 6), (255, 255, 255))
    tile.paste(img, (0, 0))
    draw, font = ImageDraw.Draw(tile), ImageFont.load_default()
    for i, line in enumerate(lines):
        draw.text((3, img.height + 3 + i * LINE_PX), line, fill=(0, 0, 0) if i < len(lines) - 1 else (160, 0, 0),
                  font=font)
    return tile


def record_episodes(env: Any, act: Callable[[Any, Any], Any], episode_ids: Sequence[str], path: str | Path,
                    scale: int = 3, frame_seconds: float = 0.6, max_steps: int = 1000) -> Path:
    """Run `act` on `episode_ids` (an env of `len(episode_ids)` rows, reset to them) and write the GIF `path`
    atomically. Returns the path."""
    if env.num_envs != len(episode_ids):
        raise ValueError(f"record_episodes needs one env row per episode: {env.num_envs} rows, "
                         f"{len(episode_ids)} episode ids")
    obs, info = env.reset(options={"episode_id": list(episode_ids)})
    instructions = list(obs.get("instruction", [""] * env.num_envs))
    done = np.zeros(env.num_envs, dtype=bool)
    tiles = [None] * env.num_envs
    frames = []
    for step in range(max_steps + 1):
        action = act(obs, info)
        rgb, acts = _rows(obs["rgb"]), _rows(action)
        for i in np.flatnonzero(~done):
            tiles[i] = _tile(rgb[i], instructions[i], f"step {step}: action {int(acts[i])}", scale)
        frames.append(_stack(tiles))
        obs, _, terminated, truncated, info = env.step(action)
        ended = (_rows(terminated) | _rows(truncated)) & ~done
        for i in np.flatnonzero(ended):
            success = bool(_rows(info["success"])[i]) if "success" in info else None
            outcome = "" if success is None else (" success" if success else " failure")
            tiles[i] = _tile(rgb[i], instructions[i], f"stopped after {step + 1} steps:{outcome}", scale)
        done |= ended
        if done.all():
            break
    frames += [_stack(tiles)] * 3  # hold the outcomes
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    imageio.mimsave(buffer, frames, format="GIF", duration=frame_seconds, loop=0)
    write_bytes_atomic(path, buffer.getvalue())
    return path


def _stack(tiles: list[Image.Image]) -> np.ndarray:
    width = max(t.width for t in tiles)
    canvas = Image.new("RGB", (width, sum(t.height for t in tiles) + 4 * (len(tiles) - 1)), (200, 200, 200))
    y = 0
    for t in tiles:
        canvas.paste(t, (0, y))
        y += t.height + 4
    return np.asarray(canvas)
