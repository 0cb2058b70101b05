"""Policy cost against the renderer: frames/s of the VLA policy's parts and of a full `act`.

    python benchmarks/policy_throughput.py                       # cpu + gpu presets, ViT size sweep, batch 1 64 256
    python benchmarks/policy_throughput.py --device cuda --presets gpu --batches 64 256 1024   # bf16 autocast

Rows (frames/s = batch / seconds per call, inference mode, after warm-up):
- `vision`: the ViT forward of raw uint8 frames (normalise + resize + encoder);
- `language`: the backbone on B distinct instructions (uncached; with the cache, steady state costs
  only a dict lookup per row, shown as `language cached`);
- `fusion+heads`: fusion, GRU and heads on precomputed tokens;
- `act`: the whole `VLAPolicy.act` with a warm instruction cache (what a rollout pays per step).
The renderer (step + RGB/depth render of the same scenes, batch 256 at the preset's env resolution,
torch.compile'd unless --eager, and eager) is timed in the same run; `x renderer` is the renderer's
frames/s over the row's, i.e. how many times more the policy costs than simulating the frame.
MFLOPs/frame are counted with torch.utils.flop_counter on the vision encoder.
"""

from __future__ import annotations

import argparse
import contextlib
import platform

import gymnasium as gym
import numpy as np
import torch
from timing import timed

SWEEP = {  # candidate CPU encoders: (patch, width, depth, mlp_ratio) at 64x64
    "vit16-w128-d2": dict(patch_size=16, width=128, depth=2, heads=4, mlp_ratio=2.0),
    "vit16-w128-d3": dict(patch_size=16, width=128, depth=3, heads=4, mlp_ratio=2.0),
    "vit16-w192-d4": dict(patch_size=16, width=192, depth=4, heads=4, mlp_ratio=4.0),
    "vit8-w192-d4": dict(patch_size=8, width=192, depth=4, heads=4, mlp_ratio=4.0),
}


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def renderer_fps(batch: int, res: int, device: str, compile: bool, min_time: float) -> float:
    from vlarena.datasets.generate import generate_scene
    from vlarena.datasets.navigation import navigable_mask
    from vlarena.envs.motion import MotionConfig, apply_actions
    from vlarena.envs.renderer import RenderConfig, Renderer
    from vlarena.envs.scene_tensors import SceneTensors

    scenes = [generate_scene(1000 + k) for k in range(8)]
    st = SceneTensors.from_scenes(scenes, device=device)
    renderer = Renderer(st, RenderConfig(width=res, height=res, compile=compile))
    g = torch.Generator().manual_seed(0)
    scene_idx = torch.randint(len(scenes), (batch,), generator=g)
    starts = []
    for s in scene_idx.tolist():
        cells = torch.from_numpy(navigable_mask(scenes[s])).nonzero()
        i, j = cells[torch.randint(len(cells), (1,), generator=g)][0].tolist()
        starts.append(((j + 0.5) * st.cell_size, (i + 0.5) * st.cell_size, 0.0))
    scene_idx, state = scene_idx.to(device), {"pose": torch.tensor(starts, device=device)}
    motion = MotionConfig()

    def step():
        actions = torch.randint(1, 4, (batch,), device=device)
        state["pose"], _ = apply_actions(st, scene_idx, state["pose"], actions, motion)
        renderer.render(scene_idx, state["pose"], outputs=("rgb", "depth"))
        sync(device)

    for _ in range(2):
        step()
    return batch / timed(step, min_time)


def instructions(n: int) -> list[str]:
    from vlarena.datasets.catalog import CATEGORY_NAMES, COLOUR_NAMES, ROOM_TYPES, readable
    from vlarena.datasets.objectnav import TEMPLATES

    rng = np.random.default_rng(0)
    return [TEMPLATES[k % len(TEMPLATES)].format(colour=rng.choice(COLOUR_NAMES), object=readable(rng.choice(CATEGORY_NAMES)),
                                                 room=readable(rng.choice(ROOM_TYPES))) + f" ({k})" for k in range(n)]


def vision_mflops(policy) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    res = policy.config.vision.image_size
    rgb = torch.zeros(1, res, res, 3, dtype=torch.uint8, device=policy.device)
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        policy.vision(rgb)
    return counter.get_total_flops() / 1e6


def bench_policy(name: str, config, batch: int, device: str, min_time: float) -> list[dict]:
    from vlarena.policies import VLAPolicy

    res = config.vision.image_size
    obs_space = gym.spaces.Dict({"rgb": gym.spaces.Box(0, 255, (res, res, 3), np.uint8),
                                 "instruction": gym.spaces.Text(512)})
    policy = VLAPolicy(config, obs_space, gym.spaces.Discrete(4)).to(device).eval()
    g = torch.Generator().manual_seed(0)
    rgb = torch.randint(0, 256, (batch, res, res, 3), dtype=torch.uint8, generator=g).to(device)
    texts = tuple(instructions(batch))
    obs = {"rgb": rgb, "instruction": texts}
    state = policy.initial_state(batch)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.startswith("cuda") else contextlib.nullcontext()
    ids, mask = policy.tokenize(texts, 32)
    ids, mask = ids.to(device), mask.to(device)
    rows = []

    def row(what: str, fn) -> None:
        def call():
            with torch.inference_mode(), autocast:
                fn()
            sync(device)
        seconds = timed(call, min_time)
        rows.append({"preset": name, "what": what, "batch": batch, "ms": 1000 * seconds / batch, "fps": batch / seconds})

    row("vision", lambda: policy.vision(rgb))
    row("language", lambda: policy.language._run(ids, mask))
    policy.act(obs, state)  # fills the instruction cache
    row("language cached", lambda: policy.language(texts=texts))
    with torch.inference_mode():
        vis = policy.vision(rgb)[0]
        tok, tmask, pooled = policy.language(texts=texts)

    def heads():
        out, _ = policy.memory.step(policy.fusion(vis, tok, tmask, pooled), state)
        policy.action_head.act(out)
        policy.value_head(out)

    row("fusion+heads", heads)
    row("act", lambda: policy.act(obs, state))
    mflops = vision_mflops(policy)
    for r in rows:
        r["mflops"] = mflops if r["what"] == "vision" else None
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--presets", nargs="+", default=["cpu", "gpu"])
    parser.add_argument("--sweep", nargs="*", default=list(SWEEP), help=f"extra CPU ViT sizes: {list(SWEEP)}")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 64, 256])
    parser.add_argument("--language", default="bert_random", help="language backbone (auto, minilm, bert_random)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--min-time", type=float, default=1.0)
    parser.add_argument("--render-batch", type=int, default=256)
    parser.add_argument("--eager", action="store_true", help="renderer without torch.compile only")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from vlarena.policies import PolicyConfig

    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
          f"torch {torch.__version__}, device {args.device}")
    configs = {p: PolicyConfig.preset(p, language={"backbone": args.language}) for p in args.presets}
    for s in args.sweep:
        configs[s] = PolicyConfig.preset("cpu", language={"backbone": args.language}, vision=SWEEP[s])
    render = {}
    for res in sorted({c.vision.image_size for c in configs.values()}):
        render[res] = {"eager": renderer_fps(args.render_batch, res, args.device, False, args.min_time)}
        if not args.eager:
            render[res]["compiled"] = renderer_fps(args.render_batch, res, args.device, True, args.min_time)
    rows = []
    for name, config in configs.items():
        for batch in args.batches:
            rows += bench_policy(name, config, batch, args.device, args.min_time)
    kinds = ["eager"] if args.eager else ["compiled", "eager"]
    header = (f"| {'config':<14} | {'what':<16} | batch | MFLOPs/frame | ms/frame | {'frames/s':>9} | "
              + " | ".join(f"x renderer ({k})" for k in kinds) + " |")
    print(header)
    print("|" + "|".join("-" * len(c) for c in header.split("|")[1:-1]) + "|")
    for r in rows:
        rr = render[configs[r["preset"]].vision.image_size]
        mf = f"{r['mflops']:,.1f}" if r["mflops"] else ""
        ratios = " | ".join(f"{rr[k] / r['fps']:>{len(k) + 13}.1f}" for k in kinds)
        print(f"| {r['preset']:<14} | {r['what']:<16} | {r['batch']:>5} | {mf:>12} | {r['ms']:>8.3f} | "
              f"{r['fps']:>9,.0f} | {ratios} |")
    for res, v in render.items():
        shown = ", ".join(f"{k} {fps:,.0f} frames/s" for k, fps in v.items())
        print(f"renderer+step {res}x{res}, batch {args.render_batch}: {shown}")


if __name__ == "__main__":
    main()
