"""ALFRED's evaluation metrics (pure functions), as alfred/models/eval/eval_task.py computes them.

Per episode, with t the number of actions the agent took (failed ones included), L* the expert's
number of low-level actions (`len(plan.low_actions)`), s in {0, 1} success and (c, n) the completed
and total goal conditions:

    weight        = min(1, L* / (t + eps))          (a stop at step 0 gives weight 1)
    success_spl   = s * weight                      goal_condition_spl = (c / n) * weight

Over a split of N episodes (ALFRED's get_metrics):

    success_rate                 = sum(s) / N
    goal_condition_success       = sum(c) / sum(n)                   (micro-averaged over the split)
    plw_success_rate             = sum(success_spl * L*) / sum(L*)
    plw_goal_condition_success   = sum(goal_condition_spl * L*) / sum(L*)

`summarize` reports these with `num_episodes`, and the same per task type under `per_task_type`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from typing import Any

EPISODE_KEYS = ("success", "completed_goal_conditions", "total_goal_conditions", "num_actions", "expert_actions",
                "task_type")


def episode_row(success: bool, completed: int, total: int, num_actions: int, expert_actions: int,
                task_type: str) -> dict[str, Any]:
    """One episode's entry (ALFRED's log entry fields), checked."""
    if total <= 0 or not 0 <= completed <= total:
        raise ValueError(f"goal conditions must satisfy 0 <= completed <= total and total > 0, got {completed}/{total}")
    if num_actions < 0 or expert_actions <= 0:
        raise ValueError(f"num_actions must be >= 0 and expert_actions > 0, got {num_actions} and {expert_actions}")
    if success and completed != total:
        raise ValueError(f"a successful episode completes all goal conditions, got {completed}/{total}")
    weight = min(1.0, expert_actions / (float(num_actions) + sys.float_info.epsilon))
    gc = completed / total
    return {"success": float(bool(success)), "completed_goal_conditions": int(completed),
            "total_goal_conditions": int(total), "goal_condition_success": gc, "num_actions": int(num_actions),
            "expert_actions": int(expert_actions), "path_len_weight": int(expert_actions),
            "success_spl": float(bool(success)) * weight, "goal_condition_spl": gc * weight, "task_type": task_type}


def _aggregate(rows: list[Mapping[str, Any]]) -> dict[str, float]:
    n = len(rows)
    weights = sum(r["path_len_weight"] for r in rows)
    return {
        "success_rate": sum(r["success"] for r in rows) / n,
        "goal_condition_success": sum(r["completed_goal_conditions"] for r in rows)
        / sum(r["total_goal_conditions"] for r in rows),
        "plw_success_rate": sum(r["success_spl"] * r["path_len_weight"] for r in rows) / weights,
        "plw_goal_condition_success": sum(r["goal_condition_spl"] * r["path_len_weight"] for r in rows) / weights,
        "num_episodes": n,
    }


def summarize(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The split's metrics and the same per task type (`per_task_type`)."""
    rows = list(rows)
    if not rows:
        raise ValueError("summarize needs at least one episode")
    out: dict[str, Any] = _aggregate(rows)
    kinds = sorted({r["task_type"] for r in rows})
    out["per_task_type"] = {k: _aggregate([r for r in rows if r["task_type"] == k]) for k in kinds}
    return out
