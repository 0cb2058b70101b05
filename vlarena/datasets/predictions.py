"""R2R prediction files and their scoring, as Matterport3DSimulator's `tasks/R2R/eval.py`.

Format (the R2R leaderboard's; no version field): a JSON list of

    {"instr_id": "<path_id>_<k>", "trajectory": [[viewpoint_id, heading, elevation], ...]}

with the trajectory starting at the path's start viewpoint. As in the official evaluation, every
instruction of the episode file must be predicted (`instr_id` = path_id and the instruction's
index), consecutive viewpoints must be equal or neighbours in the scan's graph, and extra
records (instr_ids not in the episode file) are an error. Metrics: `vlarena.metrics.episode_metrics`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vlarena.datasets.jsonio import Records, read_json, short
from vlarena.datasets.navgraph import NavGraph
from vlarena.datasets.r2r import R2REpisode
from vlarena.metrics import GraphDistances, aggregate, episode_metrics


def parse_predictions(data: Any, source: str) -> dict[str, list[str]]:
    """instr_id -> visited viewpoint ids, validated for shape (errors name file, record and field)."""
    if not isinstance(data, list):
        raise ValueError(f"{source}: a prediction file must hold a JSON list of {{instr_id, trajectory}} records, "
                         f"got {type(data).__name__}")
    r = Records(source, "instr_id")
    out: dict[str, list[str]] = {}
    for k, rec in enumerate(data):
        rec = r.record(k, rec)
        iid = r.string(k, rec, "instr_id")
        if iid in out:
            r.fail(k, rec, "instr_id", f"repeats instr_id {iid!r}")
        traj = r.get(k, rec, "trajectory")
        if not isinstance(traj, list) or not traj:
            r.fail(k, rec, "trajectory", f"must be a non-empty list of [viewpoint, heading, elevation], got {short(traj)}")
        vps = []
        for m, step in enumerate(traj):
            if not isinstance(step, (list, tuple)) or not step or not isinstance(step[0], str):
                r.fail(k, rec, f"trajectory[{m}]", f"must be [viewpoint_id, heading, elevation], got {short(step)}")
            vps.append(step[0])
        out[iid] = vps
    return out


def score_predictions(predictions: Mapping[str, Sequence[str]], episodes: Sequence[R2REpisode],
                      graphs: Mapping[str, NavGraph], source: str = "<predictions>") -> list[dict[str, Any]]:
    """Per-instruction metrics of `predictions` against `episodes` (the official eval's checks)."""
    dists: dict[str, GraphDistances] = {}
    r = Records(source, "instr_id")
    wanted = {f"{e.path_id}_{k}": e for e in episodes for k in range(len(e.instructions))}
    extra = sorted(set(predictions) - set(wanted))
    if extra:
        raise ValueError(f"{source}: instr_id {extra[0]!r} (and {len(extra) - 1} more) is not in the episode file; "
                         f"accepted: '<path_id>_<k>' of its episodes")
    missing = sorted(set(wanted) - set(predictions))
    if missing:
        raise ValueError(f"{source}: no trajectory for instr_id {missing[0]!r} ({len(missing)} missing); the official "
                         f"evaluation needs one for every instruction of the episode file")
    rows = []
    for k, (iid, ep) in enumerate(wanted.items()):
        if ep.scan not in graphs:
            raise ValueError(f"{source}: instr_id {iid!r} is in scan {ep.scan!r}, which has no connectivity graph")
        dist = dists.setdefault(ep.scan, GraphDistances(graphs[ep.scan]))
        pred = list(predictions[iid])
        rec = {"instr_id": iid}
        for m, vp in enumerate(pred):
            if vp not in dist:
                r.fail(k, rec, f"trajectory[{m}]", f"names viewpoint {vp!r}, which is not in scan {ep.scan!r}")
            if m and vp != pred[m - 1] and not dist.adjacent(pred[m - 1], vp):
                r.fail(k, rec, f"trajectory[{m}]", f"moves from {pred[m - 1]!r} to {vp!r}, which are not adjacent in "
                                                  f"scan {ep.scan!r}")
        if pred[0] != ep.path[0]:
            r.fail(k, rec, "trajectory[0]", f"starts at {pred[0]!r}, not at the path's start {ep.path[0]!r}")
        rows.append({"episode_id": iid, "scan": ep.scan, **episode_metrics(pred, ep.path, dist)})
    return rows


def score_prediction_file(path: str | Path, episodes: Sequence[R2REpisode],
                          graphs: Mapping[str, NavGraph]) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """(summary, per-episode rows) of an R2R prediction file."""
    preds = parse_predictions(read_json(path, "an R2R prediction file (a JSON list)"), str(path))
    rows = score_predictions(preds, episodes, graphs, str(path))
    return aggregate(rows), rows
