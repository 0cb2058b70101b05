"""Evaluate an agent on held-out seeds of a gymnasium env that has no episode ids (BabyAI through the adapter).

    env = gym.make_vec("vlarena/BabyAI-GoToLocal-v0", num_envs=32)           # SyncVectorEnv, numpy
    summary = evaluate_seeds(env, PolicyAgent(policy).act, range(1_000_000, 1_000_500), out_dir="runs/x/eval_val")

Such envs make an episode from the seed of `reset`, so a split is a range of seeds (vlarena/configs/env/babyai.yaml:
training from seed 0, evaluation from 1_000_000, disjoint). Every seed is run once: a batch of `num_envs` seeds at
a time, each sub-env reset with its own seed (`reset(seed=[...])`; a short last batch repeats its last seed in the
spare rows, which are not scored), stepped until each has ended; what the sub-envs do after their episode ends
(the vector env's autoreset) is ignored, so the result does not depend on autoreset timing.

The agent is `act(obs, info) -> actions` (evaluate.py's interface) on torch tensors: observations and infos are
converted (`runner.numpy_to_torch`) and `info["elapsed_steps"]` (0 at an episode's first observation) is added,
which is how `PolicyAgent` knows where to reset its recurrent state.

Per episode (episodes.jsonl): seed, instruction, success (`info["success"]` at the episode's end when the env
reports it, else terminated with reward > 0, MiniGrid's rule), return, steps. summary.json: success_rate, steps
(mean length), return (mean), num_episodes, the seeds' range, plus `meta`. Both are written atomically.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium.vector import AutoresetMode
from tqdm import tqdm

from vlarena.agents.runner import numpy_to_torch
from vlarena.datasets.jsonio import write_json, write_jsonl
from vlarena.metrics import aggregate

Act = Callable[[dict[str, Any], dict[str, Any]], torch.Tensor]


def _success(info: dict[str, Any], reward: np.ndarray, terminated: np.ndarray) -> np.ndarray:
    if "success" in info:
        reported = np.asarray(info["success"], dtype=bool)
        present = np.asarray(info.get("_success", np.ones_like(reported)), dtype=bool)
        return np.where(present, reported, terminated & (reward > 0))
    return terminated & (reward > 0)


def rollout_seeds(env: Any, act: Act, seeds: Iterable[int], device: torch.device | str = "cpu",
                  progress: bool = True) -> list[dict[str, Any]]:
    """Run `act` on one episode per seed; returns one dict per seed, in order (see the module doc)."""
    if env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP) != AutoresetMode.NEXT_STEP:
        raise ValueError("evaluate_seeds needs a vector env with autoreset_mode NEXT_STEP (gymnasium's default)")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("evaluate_seeds got no seeds; accepted: a non-empty sequence of ints")
    if len(set(seeds)) != len(seeds):
        raise ValueError("evaluate_seeds got repeated seeds: each held-out seed is one episode")
    b, out = env.num_envs, []
    bar = tqdm(total=len(seeds), desc="episodes", disable=not progress)
    for start in range(0, len(seeds), b):
        chunk = seeds[start:start + b]
        obs, info = env.reset(seed=chunk + [chunk[-1]] * (b - len(chunk)))
        instructions = [str(s) for s in obs["instruction"]] if "instruction" in obs else [""] * b
        elapsed = np.zeros(b, dtype=np.int64)
        done = np.zeros(b, dtype=bool)
        success = np.zeros(b, dtype=bool)
        ret, length = np.zeros(b), np.zeros(b, dtype=np.int64)
        while not done[: len(chunk)].all():
            info_t = {**numpy_to_torch(info, device), "elapsed_steps": torch.as_tensor(elapsed, device=device)}
            action = act(numpy_to_torch(obs, device), info_t)
            obs, reward, terminated, truncated, info = env.step(action.detach().cpu().numpy())
            reward, terminated, truncated = np.asarray(reward, float), np.asarray(terminated), np.asarray(truncated)
            live, ended = ~done, terminated | truncated
            ret += np.where(live, reward, 0.0)
            length += live
            success = np.where(live & ended, _success(info, reward, terminated), success)
            done |= ended
            elapsed = np.where(ended, 0, elapsed + 1)  # NEXT_STEP: the step after an end is a reset (unscored)
        for k, seed in enumerate(chunk):
            out.append({"seed": seed, "instruction": instructions[k], "success": float(success[k]),
                        "return": float(ret[k]), "steps": float(length[k])})
        bar.update(len(chunk))
    bar.close()
    return out


def evaluate_seeds(env: Any, act: Act, seeds: Iterable[int], out_dir: str | Path | None = None,
                   meta: dict[str, Any] | None = None, device: torch.device | str = "cpu",
                   progress: bool = True) -> dict[str, Any]:
    """Roll out one episode per seed, aggregate, and (with `out_dir`) write summary.json and episodes.jsonl."""
    rows = rollout_seeds(env, act, seeds, device, progress)
    summary = {**aggregate(rows), "return": float(np.mean([r["return"] for r in rows])),
               "seeds": [min(r["seed"] for r in rows), max(r["seed"] for r in rows)], **(meta or {})}
    if out_dir is not None:
        out = Path(out_dir)
        write_jsonl(out / "episodes.jsonl", rows)
        write_json(out / "summary.json", summary, indent=1)  # last: its presence means the evaluation is complete
    return summary
