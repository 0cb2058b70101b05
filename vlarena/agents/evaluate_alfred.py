"""Evaluate an agent on ALFRED-style episodes and score them as ALFRED's eval_task.py does.

    summary = evaluate_alfred(env, act, "out/", {"agent": "oracle"})   # env: envs.alfred_env.AlfredVectorEnv

Episodes are assigned explicitly, `num_envs` at a time, and run until each has ended. Per episode:
success, goal conditions (completed, total) at the end, the number of actions t (failed ones
included, the final STOP not: ALFRED's loop stops before counting it) and the expert's L* =
len(plan.low_actions). `vlarena.metrics_household.summarize` gives `summary.json` (success_rate,
goal_condition_success, plw_success_rate, plw_goal_condition_success, num_episodes, per_task_type);
`episodes.jsonl` holds the rows. Both are written atomically.

Fixed agents: `oracle_act` (the env's expert), `random_act` (a uniformly random action among the 12
that are not STOP, STOP with probability `stop_prob`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from vlarena.datasets.jsonio import write_json, write_jsonl
from vlarena.metrics_household import episode_row, summarize

Act = Callable[[dict[str, Any], dict[str, Any]], torch.Tensor]


def oracle_act(obs: dict[str, Any], info: dict[str, Any]) -> torch.Tensor:
    return info["expert_action"]


def random_act(seed: int = 0, stop_prob: float = 0.01, num_actions: int = 13) -> Act:
    gen = torch.Generator().manual_seed(seed)

    def act(obs: dict[str, Any], info: dict[str, Any]) -> torch.Tensor:
        b = obs["rgb"].shape[0]
        move = torch.randint(1, num_actions, (b,), generator=gen)
        return torch.where(torch.rand(b, generator=gen) < stop_prob, torch.zeros_like(move), move)

    return act


def fixed_alfred_agent(name: str, seed: int = 0) -> Act:
    """`oracle` or `random` for the ALFRED-style env (the R2R agents' `forward` has no meaning here)."""
    if name == "oracle":
        return oracle_act
    if name == "random":
        return random_act(seed)
    raise ValueError(f"agent={name} cannot run on ALFRED: accepted are oracle, random or checkpoint=<policy>")


def evaluate_alfred(env: Any, act: Act, out_dir: str | Path, meta: dict[str, Any],
                    episode_ids: list[str] | None = None) -> dict[str, Any]:
    ids = list(episode_ids if episode_ids is not None else env.episode_ids)
    b, rows = env.num_envs, []
    for start in range(0, len(ids), b):
        chunk = ids[start:start + b]
        obs, info = env.reset(options={"episode_id": chunk + [chunk[-1]] * (b - len(chunk))})
        index = env.ep.tolist()
        ended: dict[int, dict[str, Any]] = {}
        while len(ended) < len(chunk):
            obs, _, terminated, _, info = env.step(act(obs, info).to(env.device))
            for k in range(len(chunk)):
                if k not in ended and bool(info["done"][k]):
                    e = env.episodes[index[k]]
                    ended[k] = episode_row(
                        bool(info["success"][k]), int(info["goal_conditions"][k]),
                        int(info["total_goal_conditions"][k]),
                        int(info["elapsed_steps"][k]) - int(terminated[k]), len(e["plan"]["low_actions"]),
                        e["task_type"]) | {"episode_id": e["task_id"]}
        rows += [ended[k] for k in range(len(chunk))]  # in episode order
    summary = {**summarize(rows), **meta, "split": env.config.split}
    out = Path(out_dir)
    write_json(out / "summary.json", summary, indent=1)
    write_jsonl(out / "episodes.jsonl", rows)
    return summary
