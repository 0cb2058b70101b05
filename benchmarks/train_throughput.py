"""PPO training throughput, end to end: vlarena's PPO against stable-baselines3's PPO, same env, same run.

    python benchmarks/train_throughput.py                                  # num_envs 16, num_steps 32, 3 timed updates
    python benchmarks/train_throughput.py --memory none --json out.json    # only the like-for-like row (feedforward)
    python benchmarks/train_throughput.py --device cuda --num-envs 256 --num-steps 64

Env: `vlarena/R2R-CE-v0`, train split (the default generated dataset: $VLARENA_DATA_DIR or --data-dir),
`expert=False` (PPO does not read the expert action). Policy: the default VLA policy
(`PolicyConfig.preset("cpu")`: ViT + language backbone, frozen, + cross-attention fusion), at
`--resolution` (env frames and ViT input).

Rows (each timed after `--warmup` updates, over `--total-steps` env steps, i.e. whole updates of
num_steps x num_envs; wall clock of rollout collection + PPO epochs + what each trainer does between
updates, not of building the env or the policy):
- `vlarena PPO (gru|none)`: `PPOTrainer` (vlarena/agents/ppo.py) on the native batched env
  (`gym.make_vec`, torch tensors, NEXT_STEP autoreset), memory from `--memory`;
- `SB3 PPO`: `stable_baselines3.PPO("MultiInputPolicy", VlarenaVecEnv(...))` with
  `VLAFeaturesExtractor` (the same PolicyConfig; SB3's policy is feedforward) and linear action/value
  heads (`net_arch=[]`, as ours), on the same env with same-step autoreset (SB3's contract).
Both use the same n_steps, num_envs, epochs, minibatch count (SB3's batch_size = n_steps * num_envs /
num_minibatches), clip range (policy and value), coefficients, learning rate and seed.

`env steps/s` counts every env.step row (num_steps x num_envs per update); `transitions/s` counts
only those that enter the loss: with NEXT_STEP autoreset the step after an episode's end is a reset
step whose action is ignored (masked out, vlarena/agents/rollout.py); SB3's same-step autoreset has
none. `rollout s` / `update s` split each update into collection (policy + env) and PPO epochs.
`x SB3` is the row's env steps/s over SB3's. Each configuration is timed `--rounds` times in
alternating order (other processes on a shared machine then disturb all alike); the table shows each
one's best round and the range over rounds (`--json` keeps every round's figure).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch

ENV_ID = "vlarena/R2R-CE-v0"


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import stable_baselines3

    return {"platform": platform.platform(), "cpu": cpu, "cpu_count": os.cpu_count(),
            "python": platform.python_version(), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "stable_baselines3": stable_baselines3.__version__,
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def env_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    dataset: dict[str, Any] = {"max_episodes": args.max_episodes}
    if args.data_dir:
        dataset["data_dir"] = args.data_dir
    return dict(split=args.split, dataset=dataset, width=args.resolution, height=args.resolution,
                device=args.device, expert=args.expert, compile=args.compile)


def policy_config(args: argparse.Namespace, memory: str):
    from vlarena.policies import PolicyConfig

    data = PolicyConfig.preset("cpu").to_dict()
    data["vision"]["image_size"] = args.resolution
    data["language"].update(backbone=args.language, freeze=True, cache_size=args.cache_size)
    data["memory"]["kind"] = memory
    data["freeze_vision"] = args.freeze_vision
    return PolicyConfig.from_dict(data)


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def spread(row: dict[str, Any]) -> str:
    values = row["rounds_env_steps_per_s"]
    return f"{min(values):,.0f}-{max(values):,.0f}"


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


# ---- vlarena ----------------------------------------------------------------------------------
def run_vlarena(args: argparse.Namespace, env: Any, memory: str, updates: int, profile: int = 0) -> dict[str, Any]:
    from vlarena.agents.ppo import PPOConfig, PPOTrainer
    from vlarena.policies import VLAPolicy

    class TimedPPOTrainer(PPOTrainer):
        """PPOTrainer that notes when each update starts, ends its rollout and ends, and its valid transitions."""

        marks: list[tuple[float, float, float]]
        valid: list[float]

        def iteration(self) -> dict[str, float]:
            t0 = time.perf_counter()
            rollout = self.collect()
            sync(args.device)
            t1 = time.perf_counter()
            learn = self.learn()
            sync(args.device)
            self.marks.append((t0, t1, time.perf_counter()))
            self.valid.append(float(self.storage.valid.sum()))
            return {**rollout, **learn}

    torch.manual_seed(args.seed)
    policy = VLAPolicy(policy_config(args, memory), env.single_observation_space, env.single_action_space)
    batch = args.num_steps * args.num_envs
    cfg = PPOConfig(total_steps=(args.warmup + updates) * batch, num_steps=args.num_steps, lr=args.lr,
                    update_epochs=args.epochs, num_minibatches=args.num_minibatches, seed=args.seed,
                    checkpoint_every=0, tensorboard=False, progress=False, amp=args.amp)
    with tempfile.TemporaryDirectory(prefix="vlarena-bench-") as run_dir:
        trainer = TimedPPOTrainer(policy, env, cfg, run_dir)
        trainer.marks, trainer.valid = [], []
        trainer.train()  # the final checkpoint (after the last update) is outside the timed window
        timed = trainer.marks[args.warmup:]
        result = {
            "what": f"vlarena PPO ({memory})", "memory": memory, "updates": len(timed), "env_steps": len(timed) * batch,
            "seconds": timed[-1][2] - timed[0][0], "rollout_s": [m[1] - m[0] for m in timed],
            "update_s": [m[2] - m[1] for m in timed], "transitions": sum(trainer.valid[args.warmup:]),
            "params_trainable": sum(p.numel() for p in policy.parameters() if p.requires_grad)}
        if profile:
            result["profile"] = profiled(trainer.iteration, profile)
    return result


def profiled(fn, top: int) -> str:
    """cProfile of `fn()`: the `top` entries by own time and by cumulative time."""
    import cProfile
    import io
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    fn()
    prof.disable()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return out.getvalue()


# ---- stable-baselines3 ---------------------------------------------------------------------------
def make_sb3_env(args: argparse.Namespace) -> Any:
    from vlarena.policies.sb3 import VlarenaVecEnv

    env = gym.make_vec(ENV_ID, num_envs=args.num_envs, autoreset_mode="same_step", **env_kwargs(args))
    return VlarenaVecEnv(env, policy_config(args, "none").language, max_length=args.max_length)


def run_sb3(args: argparse.Namespace, venv: Any, updates: int, profile: int = 0) -> dict[str, Any]:
    from stable_baselines3 import PPO

    from vlarena.policies.sb3 import sb3_policy_kwargs

    batch = args.num_steps * args.num_envs
    phases: dict[str, list[float]] = {"rollout": [], "update": []}
    torch.manual_seed(args.seed)
    model = PPO("MultiInputPolicy", venv, n_steps=args.num_steps, batch_size=batch // args.num_minibatches,
                n_epochs=args.epochs, learning_rate=args.lr, gamma=0.99, gae_lambda=0.95, clip_range=0.2,
                clip_range_vf=0.2, ent_coef=0.01, vf_coef=0.5, max_grad_norm=0.5, seed=args.seed,
                device=args.device, verbose=0,
                # ortho_init=False (sb3_policy_kwargs): SB3's orthogonal re-init would reach into every Linear of
                # the features extractor, the frozen pretrained language backbone included
                policy_kwargs=sb3_policy_kwargs(policy_config(args, "none"), net_arch=[]))

    def timed(name: str, fn):
        def wrapper(*a, **kw):
            t0 = time.perf_counter()
            out = fn(*a, **kw)
            sync(args.device)
            phases[name].append(time.perf_counter() - t0)
            return out
        return wrapper

    model.collect_rollouts = timed("rollout", model.collect_rollouts)
    model.train = timed("update", model.train)
    model.learn(args.warmup * batch)
    del phases["rollout"][:], phases["update"][:]
    start = time.perf_counter()
    model.learn(updates * batch, reset_num_timesteps=False)
    sync(args.device)
    seconds = time.perf_counter() - start
    n = len(phases["update"])
    result = {"what": "SB3 PPO", "memory": "none (feedforward)", "updates": n, "env_steps": n * batch,
              "seconds": seconds, "rollout_s": phases["rollout"], "update_s": phases["update"], "transitions": n * batch,
              "params_trainable": sum(p.numel() for p in model.policy.parameters() if p.requires_grad)}
    if profile:
        result["profile"] = profiled(lambda: model.learn(batch, reset_num_timesteps=False), profile)
    return result


# ---- main -------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-envs", type=int, default=16)
    parser.add_argument("--num-steps", type=int, default=32, help="rollout length per env and update (SB3 n_steps)")
    parser.add_argument("--total-steps", type=int, default=None,
                        help="env steps timed (rounded up to whole updates); default 3 updates")
    parser.add_argument("--warmup", type=int, default=1, help="updates run before timing")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--num-minibatches", type=int, default=4)
    parser.add_argument("--lr", type=float, default=2.5e-4)
    parser.add_argument("--memory", nargs="+", choices=["gru", "none"], default=["gru", "none"],
                        help="vlarena policy memory (one row each); SB3's policy is always feedforward")
    parser.add_argument("--rounds", type=int, default=2,
                        help="times each configuration is timed (alternating the order); the best is reported")
    parser.add_argument("--no-sb3", action="store_true", help="time vlarena only")
    parser.add_argument("--language", default="auto", help="language backbone: auto, minilm, bert_random")
    parser.add_argument("--cache-size", type=int, default=4096,
                        help="instruction embeddings the policy caches (policy.language.cache_size; both trainers)")
    parser.add_argument("--freeze-vision", action="store_true", help="frozen ViT too (ours then caches its tokens)")
    parser.add_argument("--resolution", type=int, default=64, help="env frame and ViT input size (multiple of 16)")
    parser.add_argument("--max-length", type=int, default=64, help="instruction tokens handed to SB3")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--amp", action=argparse.BooleanOptionalAction, default=False,
                        help="bf16 autocast in vlarena's PPO on CUDA (SB3 runs fp32)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the env's renderer")
    parser.add_argument("--expert", action="store_true", help="compute info['expert_action'] every step (unused)")
    parser.add_argument("--split", default="train")
    parser.add_argument("--data-dir", default=os.environ.get("VLARENA_DATA_DIR"),
                        help="generated R2R data (default $VLARENA_DATA_DIR, else the env's default)")
    parser.add_argument("--max-episodes", type=int, default=0, help="first N episodes of the split (0: all)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="cProfile one extra update of each trainer after timing (untimed); print the top N entries")
    parser.add_argument("--json", default=None, help="write the results to this file ('-': stdout)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if (args.num_steps * args.num_envs) % args.num_minibatches or args.num_minibatches > args.num_envs:
        parser.error("--num-minibatches must divide num_steps * num_envs and be at most --num-envs")
    batch = args.num_steps * args.num_envs
    updates = max(1, -(-(args.total_steps or 3 * batch) // batch))
    import vlarena.envs  # noqa: F401  (registers the envs)
    from vlarena.policies.language import resolve_backbone

    args.language_resolved = resolve_backbone(policy_config(args, "none").language)
    info = machine()
    settings = {k: v for k, v in vars(args).items() if k not in ("json", "profile")}
    settings.update(env=ENV_ID, timed_updates=updates, batch=batch, sb3_batch_size=batch // args.num_minibatches)
    print(f"machine: {info['cpu']} ({info['platform']}), {info['torch_threads']} torch threads, torch {info['torch']}, "
          f"stable-baselines3 {info['stable_baselines3']}, device {args.device}")
    print(f"settings: {ENV_ID} {args.split}, num_envs {args.num_envs}, num_steps {args.num_steps}, {args.epochs} epochs "
          f"x {args.num_minibatches} minibatches (SB3 batch_size {batch // args.num_minibatches}), {args.warmup} warm-up "
          f"+ {updates} timed updates ({updates * batch} env steps), {args.resolution}x{args.resolution}, language "
          f"{args.language_resolved} (frozen), vision {'frozen' if args.freeze_vision else 'trained'}, "
          f"expert {'on' if args.expert else 'off'}", flush=True)

    t = time.perf_counter()
    env = gym.make_vec(ENV_ID, num_envs=args.num_envs, **env_kwargs(args))
    venv = None if args.no_sb3 else make_sb3_env(args)
    print(f"envs built in {time.perf_counter() - t:.1f} s ({len(env.data.episode_ids)} episodes)", flush=True)
    configs = [f"vlarena PPO ({m})" for m in dict.fromkeys(args.memory)] + ([] if args.no_sb3 else ["SB3 PPO"])
    runs: dict[str, list[dict[str, Any]]] = {c: [] for c in configs}
    for k in range(args.rounds):  # alternate the order: load from other processes hits every config alike
        for c in configs if k % 2 == 0 else configs[::-1]:
            profile = args.profile if k == args.rounds - 1 else 0
            r = run_sb3(args, venv, updates, profile) if c == "SB3 PPO" else \
                run_vlarena(args, env, c.split("(")[1][:-1], updates, profile)
            r["env_steps_per_s"] = r["env_steps"] / r["seconds"]
            r["transitions_per_s"] = r["transitions"] / r["seconds"]
            runs[c].append(r)
            print(f"  round {k + 1}: {c}: {r['env_steps_per_s']:,.0f} env steps/s", flush=True)
    env.close()
    if venv is not None:
        venv.close()
    rows = []
    for c in configs:  # the best round of each (least disturbed), with every round's figure kept
        best = dict(max(runs[c], key=lambda r: r["env_steps_per_s"]))
        best["rounds_env_steps_per_s"] = [r["env_steps_per_s"] for r in runs[c]]
        best["profile"] = runs[c][-1].get("profile")
        rows.append(best)
    sb3 = rows[-1] if not args.no_sb3 else None
    for r in rows:
        r["x_sb3"] = r["env_steps_per_s"] / sb3["env_steps_per_s"] if sb3 else None
        r["x_sb3_transitions"] = r["transitions_per_s"] / sb3["transitions_per_s"] if sb3 else None

    header = (f"| {'what':<20} | memory | trainable params | env steps | seconds | rollout s | update s | "
              f"env steps/s | transitions/s | rounds min-max | x SB3 |")
    print()
    print(header)
    print("|" + "|".join("-" * len(c) for c in header.split("|")[1:-1]) + "|")
    for r in rows:
        ratio = f"{r['x_sb3']:.2f}" if r["x_sb3"] is not None else ""
        print(f"| {r['what']:<20} | {r['memory'].split()[0]:<6} | {r['params_trainable']:>16,} | {r['env_steps']:>9,} | "
              f"{r['seconds']:>7.1f} | {mean(r['rollout_s']):>9.2f} | {mean(r['update_s']):>8.2f} | "
              f"{r['env_steps_per_s']:>11,.0f} | {r['transitions_per_s']:>13,.0f} | {spread(r):>12} | {ratio:>5} |")
    for r in rows:
        if r["profile"]:
            print(f"\ncProfile of one extra update, {r['what']}:\n{r['profile']}")
    if args.json:
        out = {"benchmark": "train_throughput", "machine": info, "settings": settings,
               "rows": [{k: v for k, v in r.items() if k != "profile"} for r in rows]}
        text = json.dumps(out, indent=2)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n")
            print(f"wrote {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
