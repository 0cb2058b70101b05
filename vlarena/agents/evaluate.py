"""Evaluate an agent on every episode of an R2R split, the way the official evaluations score it.

Episodes are assigned explicitly, a batch of `num_envs` at a time (`reset(options={"episode_id":
...})`), and run until each has ended; the trajectories are then scored by `vlarena.metrics`:

- graph env (`vlarena/R2R-v0`): the visited viewpoints, start included, against the R2R path with
  graph geodesics (`episode_metrics`, as Matterport3DSimulator's `tasks/R2R/eval.py`);
- continuous env (`vlarena/R2R-CE-v0`): the agent's positions after every step, start included,
  with grid geodesics to the goal and, for nDTW/SDTW/CLS, the dense ground-truth locations of the
  reference path (`vlnce_gt.follow_reference_path`, VLN-CE's `gt_locations`); success needs STOP.

Outputs (`write_results`, each file atomic): `summary.json` (aggregate metrics + what was run),
`episodes.jsonl` (one line of metrics per episode), and predictions: for the graph env R2R's
prediction format `[{"instr_id", "trajectory": [[viewpoint, heading, elevation], ...]}]`, for the
continuous env VLN-CE's leaderboard format `{episode_id: [{"position", "heading", "stop"}, ...]}`
(positions in the habitat frame, headings in R2R's convention).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium.vector import AutoresetMode
from tqdm import tqdm

from vlarena.datasets.geodesic import GridGraph
from vlarena.datasets.jsonio import write_json, write_jsonl
from vlarena.datasets.navigation import navigable_mask
from vlarena.datasets.r2r import heading_from_scene
from vlarena.datasets.vlnce import from_habitat, to_habitat
from vlarena.datasets.vlnce_gt import follow_reference_path
from vlarena.metrics import GraphDistances, aggregate, continuous_episode_metrics, episode_metrics

Act = Callable[[dict[str, Any], dict[str, Any]], torch.Tensor]
# info at an episode's end -> the metric it is reported as
INFO_KEYS = {"success": "success", "spl": "spl", "distance_to_goal": "nav_error", "path_length": "trajectory_length"}


def _is_graph(env: Any) -> bool:
    return hasattr(env, "tables")


def rollout(env: Any, act: Act, episode_ids: list[str] | None = None, progress: bool = True) -> list[dict]:
    """Run `act` on each episode once; per episode its id, index, stopped flag and the trajectory:
    `points` [T+1, 2] positions (continuous) or viewpoint indices (graph), `headings` [T+1] (scene frame)."""
    if env.metadata["autoreset_mode"] != AutoresetMode.NEXT_STEP:
        raise ValueError("evaluation needs the env's autoreset_mode='next_step' (the final state stays readable)")
    ids = list(episode_ids if episode_ids is not None else env.episode_ids)
    b, out = env.num_envs, []
    bar = tqdm(total=len(ids), desc="episodes", disable=not progress)
    for start in range(0, len(ids), b):
        chunk = ids[start:start + b]
        obs, info = env.reset(options={"episode_id": chunk + [chunk[-1]] * (b - len(chunk))})
        index = env.ep.tolist()  # rows that finish are reset to other episodes later: remember these
        points, headings = [_where(env)], [env.heading.clone() if _is_graph(env) else env.pose[:, 2].clone()]
        done = torch.zeros(b, dtype=torch.bool, device=env.device)
        length = torch.zeros(b, dtype=torch.long, device=env.device)
        stopped = torch.zeros(b, dtype=torch.bool, device=env.device)
        final = {k: torch.zeros(b, device=env.device) for k in INFO_KEYS if k in info}
        while not bool(done[: len(chunk)].all()):
            obs, _, terminated, truncated, info = env.step(act(obs, info))
            points.append(_where(env))
            headings.append(env.heading.clone() if _is_graph(env) else env.pose[:, 2].clone())
            length = torch.where(done, length, length + 1)
            ends = (terminated | truncated) & ~done
            stopped |= terminated & ~done
            done |= terminated | truncated
            for k in final:
                final[k] = torch.where(ends, info[k].float(), final[k])
        pts, hds = torch.stack(points, 1).cpu().numpy(), torch.stack(headings, 1).cpu().numpy()
        for k, eid in enumerate(chunk):
            n = int(length[k]) + 1
            out.append({"episode_id": eid, "index": index[k], "stopped": bool(stopped[k]),
                        "points": pts[k, :n], "headings": hds[k, :n],
                        "info": {key: float(v[k]) for key, v in final.items()}})
        bar.update(len(chunk))
    bar.close()
    return out


def _where(env: Any) -> torch.Tensor:
    return env.vp.clone() if _is_graph(env) else env.pose[:, :2].clone()


def score(env: Any, episodes: list[dict]) -> list[dict]:
    """Per-episode metrics (plus id and scan) of `rollout`'s episodes. Envs without R2R data (ObjectNav)
    are scored by their own info at the episode's end: success, spl, distance_to_goal, path_length."""
    if not hasattr(env, "data"):
        return [{"episode_id": ep["episode_id"], "steps": float(len(ep["points"]) - 1), **{
            INFO_KEYS[k]: v for k, v in ep["info"].items()}} for ep in episodes]
    return _score_graph(env, episodes) if _is_graph(env) else _score_continuous(env, episodes)


def _score_graph(env: Any, episodes: list[dict]) -> list[dict]:
    data, dists = env.data, {}
    rows = []
    for ep in episodes:
        s, ref = data.reference(ep["index"])
        graph = data.graphs[s]
        if s not in dists:
            dists[s] = GraphDistances(graph)
        pred = [graph.ids[v] for v in ep["points"]]
        m = episode_metrics(pred, [graph.ids[v] for v in ref], dists[s])
        rows.append({"episode_id": ep["episode_id"], "scan": graph.scan, **m})
    return rows


def _score_continuous(env: Any, episodes: list[dict]) -> list[dict]:
    data, grids, gt = env.data, {}, {}
    rows = []
    for ep in episodes:
        e = ep["index"]
        s, path = data.reference(e)
        p = data.path_of[e]
        if p not in gt:
            if s not in grids:
                grids[s] = GridGraph(navigable_mask(data.scenes[s]), data.scenes[s].cell_size)
            way = data.graphs[s].positions[path, :2]
            traj = follow_reference_path(data.scenes[s], way, data.paths[p].scene_heading, grids[s])
            gt[p] = np.array([from_habitat(q)[:2] for q in traj.locations])
        pos = np.asarray(ep["points"], dtype=np.float64)
        slot = env.episodes.field_slot[e].repeat(len(pos))
        geo = env.fields.distance(slot, torch.as_tensor(pos, dtype=torch.float32, device=env.device)).cpu().numpy()
        lookup = {tuple(q): float(d) for q, d in zip(pos, geo, strict=True)}
        goal = env.goal_xy[e].cpu().numpy().astype(np.float64)
        m = continuous_episode_metrics(pos, goal, gt[p], lambda a, _goal, table=lookup: table[tuple(a)],
                                       success_distance=env.config.success_distance,
                                       shortest_path_length=float(env.episodes.start_distance[e]),
                                       stopped=ep["stopped"])
        rows.append({"episode_id": ep["episode_id"], "scan": data.scenes[s].scene_id, **m})
    return rows


def predictions(env: Any, episodes: list[dict]) -> Any:
    """Trajectories in R2R's prediction format (graph) or VLN-CE's leaderboard format (continuous);
    None for envs without R2R data."""
    if not hasattr(env, "data"):
        return None
    if _is_graph(env):
        out = []
        for ep in episodes:
            graph = env.data.graphs[env.data.scene_of[ep["index"]]]
            out.append({"instr_id": ep["episode_id"], "trajectory": [
                [graph.ids[v], heading_from_scene(float(h)), 0.0] for v, h in zip(ep["points"], ep["headings"],
                                                                               strict=True)]})
        return out
    return {ep["episode_id"]: [
        {"position": list(to_habitat((float(x), float(y), 0.0))), "heading": heading_from_scene(float(h)),
         "stop": bool(ep["stopped"] and t == len(ep["points"]) - 1)}
        for t, ((x, y), h) in enumerate(zip(ep["points"], ep["headings"], strict=True))] for ep in episodes}


def evaluate(env: Any, act: Act, out_dir: str | Path | None = None, meta: dict | None = None,
             progress: bool = True, episode_ids: list[str] | None = None) -> dict[str, Any]:
    """Roll out (every episode of the env's split, or `episode_ids`), score, and (with `out_dir`) write
    summary.json, episodes.jsonl and predictions.json."""
    episodes = rollout(env, act, episode_ids, progress=progress)
    rows = score(env, episodes)
    summary = {**aggregate(rows), **(meta or {})}
    if out_dir is not None:
        write_outputs(out_dir, summary, rows, predictions(env, episodes))
    return summary


def write_outputs(out_dir: str | Path, summary: dict[str, Any], rows: list[dict], preds: Any = None) -> None:
    """episodes.jsonl, predictions.json (when given) and summary.json (last), each written atomically."""
    out = Path(out_dir)
    write_jsonl(out / "episodes.jsonl", rows)
    if preds is not None:
        write_json(out / "predictions.json", preds)
    write_json(out / "summary.json", summary, indent=1)
