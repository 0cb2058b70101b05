"""Simulator throughput: frames/s of step+render for vlarena against MiniGrid and MiniWorld.

    python benchmarks/sim_throughput.py                      # CPU table, peers included
    python benchmarks/sim_throughput.py --device cuda --batches 1 16 256 1024 4096

"frame" = one agent's step (random FORWARD/TURN actions with collisions) plus its RGB+depth(+semantic)
render. Rows:
- `vlarena sim`: the simulator core (motion + render), torch.compile'd stages unless --eager.
- `vlarena env`: the full `ObjectNavVectorEnv.step` (task, reward, autoreset, observation dict),
  with `info["expert_action"]` off and on.
- MiniGrid BabyAI-GoToLocal-v0 with RGB observations (RGBImgPartialObsWrapper, 56x56), one env.
- MiniWorld ThreeRooms at the same resolutions, one env (software OpenGL), if installed.
Ratios are vlarena frames/s over the peer's, measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch
from timing import timed


def bench_sim(batch: int, res: int, device: str, compile: bool, num_scenes: int, min_time: float) -> float:
    from vlarena.datasets.generate import generate_scene
    from vlarena.datasets.navigation import navigable_mask
    from vlarena.envs.motion import MotionConfig, apply_actions, compiled_apply_actions
    from vlarena.envs.renderer import RenderConfig, Renderer
    from vlarena.envs.scene_tensors import SceneTensors

    scenes = [generate_scene(1000 + k) for k in range(num_scenes)]
    st = SceneTensors.from_scenes(scenes, device=device)
    renderer = Renderer(st, RenderConfig(width=res, height=res, compile=compile))
    g = torch.Generator().manual_seed(0)
    scene_idx = torch.randint(num_scenes, (batch,), generator=g)
    starts = []
    for s in scene_idx.tolist():
        cells = torch.from_numpy(navigable_mask(scenes[s])).nonzero()
        i, j = cells[torch.randint(len(cells), (1,), generator=g)][0].tolist()
        starts.append(((j + 0.5) * st.cell_size, (i + 0.5) * st.cell_size, 0.0))
    scene_idx = scene_idx.to(device)
    pose = torch.tensor(starts, device=device)
    motion = MotionConfig()
    move = compiled_apply_actions() if compile else apply_actions
    state = {"pose": pose}

    def step():
        actions = torch.randint(1, 4, (batch,), device=device)
        state["pose"], _ = move(st, scene_idx, state["pose"], actions, motion)
        out = renderer.render(scene_idx, state["pose"])
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return out

    for _ in range(3):  # compile / warm up
        step()
    seconds = timed(step, min_time)
    return batch / seconds


def bench_env(batch: int, res: int, device: str, compile: bool, expert: bool, min_time: float) -> float:
    from vlarena.envs.objectnav import ObjectNavVectorEnv

    env = ObjectNavVectorEnv(num_envs=batch, num_scenes=8, episodes_per_scene=32, width=res, height=res,
                             device=device, compile=compile, expert=expert)
    env.reset(seed=0)

    def step():
        env.step(torch.randint(1, 4, (batch,), device=device))
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    for _ in range(3):
        step()
    seconds = timed(step, min_time)
    return batch / seconds


def bench_minigrid(min_time: float) -> float | None:
    try:
        import gymnasium as gym
        import minigrid  # noqa: F401
        from minigrid.wrappers import RGBImgPartialObsWrapper
    except ImportError:
        return None
    env = RGBImgPartialObsWrapper(gym.make("BabyAI-GoToLocal-v0"))  # 7x7 view, tile 8 -> 56x56 RGB
    env.reset(seed=0)

    def step():
        _, _, term, trunc, _ = env.step(env.action_space.sample())
        if term or trunc:
            env.reset()

    seconds = timed(step, min_time, min_iters=50)
    return 1.0 / seconds


def bench_miniworld(res: int, min_time: float) -> float | None:
    try:
        import pyglet

        pyglet.options["headless"] = True
        import gymnasium as gym
        import miniworld  # noqa: F401
    except Exception:
        return None
    try:
        env = gym.make("MiniWorld-ThreeRooms-v0", obs_width=res, obs_height=res)
        env.reset(seed=0)
    except Exception as e:  # no OpenGL context on this machine
        print(f"MiniWorld unavailable: {e}")
        return None

    def step():
        _, _, term, trunc, _ = env.step(env.action_space.sample())
        if term or trunc:
            env.reset()

    seconds = timed(step, min_time, min_iters=20)
    env.close()
    return 1.0 / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16, 256, 1024])
    parser.add_argument("--resolutions", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--eager", action="store_true", help="no torch.compile")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    parser.add_argument("--num-scenes", type=int, default=8)
    parser.add_argument("--min-time", type=float, default=2.0, help="seconds timed per row")
    parser.add_argument("--env-batch", type=int, default=256, help="batch of the full-env rows (0: skip)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    compile = not args.eager
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
          f"torch {torch.__version__}, device {args.device}, compile={compile}")
    peers = {"minigrid": bench_minigrid(args.min_time)}
    for res in args.resolutions:
        peers[f"miniworld{res}"] = bench_miniworld(res, args.min_time)
    rows = []
    bench_sim(args.batches[0], args.resolutions[0], args.device, compile, args.num_scenes, 0.5)  # one-time warm-up
    for res in args.resolutions:
        for batch in args.batches:
            t0 = time.perf_counter()
            fps = bench_sim(batch, res, args.device, compile, args.num_scenes, args.min_time)
            rows.append({"what": "vlarena sim", "batch": batch, "res": res, "fps": fps,
                         "seconds": time.perf_counter() - t0})
        if args.env_batch:
            for expert in (False, True):
                fps = bench_env(args.env_batch, res, args.device, compile, expert, args.min_time)
                rows.append({"what": f"vlarena env{' +expert' if expert else ''}", "batch": args.env_batch,
                             "res": res, "fps": fps})
    header = f"| {'what':<20} | batch | res | frames/s | x MiniWorld | x MiniGrid |"
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    mg = peers["minigrid"]
    def ratio(fps: float, peer: float | None) -> str:
        return f"{fps / peer:,.1f}" if peer else "n/a"

    for r in rows:
        mw = peers.get(f"miniworld{r['res']}")
        print(f"| {r['what']:<20} | {r['batch']:>5} | {r['res']:>3} | {r['fps']:>8,.0f} | "
              f"{ratio(r['fps'], mw):>11} | {ratio(r['fps'], mg):>10} |")
    for name, fps in peers.items():
        res = "56" if name == "minigrid" else name[len("miniworld"):]
        shown = f"{fps:,.0f}" if fps else "n/a"
        print(f"| {name:<20} |     1 | {res:>3} | {shown:>8} |             |            |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "peers": peers, "torch": torch.__version__, "device": args.device}, f, indent=1)


if __name__ == "__main__":
    main()
