"""`vlarena demo`: one expert episode rendered to a GIF (egocentric view beside the top-down map,
instruction as caption) plus a PNG of the whole path on the map."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from vlarena.envs import check_task
from vlarena.envs.motion import ACTION_NAMES
from vlarena.envs.objectnav import ObjectNavVectorEnv
from vlarena.envs.topdown import draw_map

VIEW_PX = 256


@dataclass
class DemoResult:
    gif: Path
    map_png: Path
    instruction: str
    steps: int
    success: bool
    spl: float


def _frame(view: np.ndarray, map_img: Image.Image, caption: str, status: str) -> np.ndarray:
    view_img = Image.fromarray(view).resize((VIEW_PX, VIEW_PX), Image.NEAREST)
    scale = VIEW_PX / map_img.height
    map_img = map_img.resize((max(1, round(map_img.width * scale)), VIEW_PX), Image.NEAREST)
    font = ImageFont.load_default()
    canvas = Image.new("RGB", (VIEW_PX + map_img.width + 8, VIEW_PX + 40), (255, 255, 255))
    canvas.paste(view_img, (0, 0))
    canvas.paste(map_img, (VIEW_PX + 8, 0))
    draw = ImageDraw.Draw(canvas)
    draw.text((4, VIEW_PX + 4), caption, fill=(0, 0, 0), font=font)
    draw.text((4, VIEW_PX + 22), status, fill=(90, 90, 90), font=font)
    return np.asarray(canvas)


def run_demo(task: str = "ObjectNav", out_dir: str | Path = "vlarena_demo", episode: int = 0, resolution: int = 128,
             seed: int = 0, split: str = "val", device: str = "cpu") -> DemoResult:
    """Run the shortest-path expert on one episode and write `demo.gif` and `map.png` to `out_dir`."""
    check_task(task)
    if not isinstance(resolution, int) or resolution <= 0:
        raise ValueError(f"resolution must be a positive int, got {resolution!r}")
    env = ObjectNavVectorEnv(num_envs=1, split=split, num_scenes=1, episodes_per_scene=max(1, episode + 1),
                             seed=seed, width=resolution, height=resolution, device=device)
    obs, info = env.reset(options={"episode_id": [episode]})
    scene = env.scenes[int(env.scene_idx[0])]
    goal_ids = [int(k) for k in env.goal_objects[env.ep[0]].nonzero().flatten()]
    instruction = obs["instruction"][0]
    path = [tuple(env.pose[0, :2].tolist())]
    frames, steps, success, spl = [], 0, False, 0.0
    while True:
        action = info["expert_action"]
        pose = env.pose[0].tolist()
        status = f"step {steps}  expert: {ACTION_NAMES[int(action[0])]}"
        map_img = draw_map(scene, path, heading=pose[2], goal_objects=goal_ids)
        frames.append(_frame(obs["rgb"][0].cpu().numpy(), map_img, instruction, status))
        obs, _, terminated, truncated, info = env.step(action)
        steps += 1
        if bool(terminated[0] or truncated[0]):
            success, spl = bool(info["success"][0]), float(info["spl"][0])
            break
        path.append(tuple(env.pose[0, :2].tolist()))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    end = "success" if success else "failure"
    frames.append(_frame(frames[-1][:VIEW_PX, :VIEW_PX], draw_map(scene, path, heading=env.pose[0, 2].item(),
                                                                   goal_objects=goal_ids),
                         instruction, f"STOP after {steps} steps: {end}, SPL {spl:.2f}"))
    gif = out / "demo.gif"
    imageio.mimsave(gif, frames, duration=0.1, loop=0)
    map_png = out / "map.png"
    draw_map(scene, path, heading=env.pose[0, 2].item(), goal_objects=goal_ids, pixels_per_cell=8).save(map_png)
    return DemoResult(gif, map_png, instruction, steps, success, spl if math.isfinite(spl) else 0.0)


