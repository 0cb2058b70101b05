"""ALFRED's `traj_data.json`: build, validate, read and write (format version 1 of vlarena's ALFRED-style data).

The fields vlarena writes and reads, in ALFRED's shape:

    {"format_version": 1, "task_id": "trial_00042", "task_type": "pick_heat_then_place_in_recep",
     "split": "train",
     "scene": {"floor_plan": "<scene id>", "scene_num": 7, "random_seed": 42, "objects": [{"objectType": "Potato",
               "parent": 0}, ...]},
     "pddl_params": {"object_target": "Potato", "parent_target": "CounterTop", "toggle_target": "",
                     "mrecep_target": "", "object_sliced": false},
     "plan": {"high_pddl": [{"high_idx": 0, "discrete_action": {"action": "GotoLocation", "args": ["countertop"]},
                             "planner_action": {...}}, ...],
              "low_actions": [{"high_idx": 0, "api_action": {"action": "MoveAhead"},
                               "discrete_action": {"action": "MoveAhead_25", "args": {}}}, ...]},
     "turk_annotations": {"anns": [{"task_desc": "...", "high_descs": ["...", ...], "votes": [1, 1, 1]}]}}

`scene.objects` lists the task-relevant objects in slot order with their starting receptacle (ALFRED
stores AI2-THOR object poses there instead); interaction low actions carry `api_action.objectId`, the
slot they act on. Validation errors name the file and the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vlarena.datasets.alfred.objects import object_type
from vlarena.datasets.alfred.planner import HIGH_LEVEL_ACTIONS, Subgoal
from vlarena.datasets.alfred.tasks import TaskSpec
from vlarena.datasets.jsonio import read_json, write_json

TRAJ_FORMAT_VERSION = 1
SPLITS = ("train", "valid_seen", "valid_unseen", "test")


def build_traj(task_id: str, spec: TaskSpec, split: str, scene_id: str, scene_num: int, seed: int,
               objects: list[tuple[str, int]], plan: list[Subgoal], low_actions: list[dict[str, Any]],
               anns: list[tuple[str, list[str]]]) -> dict[str, Any]:
    traj = {
        "format_version": TRAJ_FORMAT_VERSION, "task_id": task_id, "task_type": spec.task_type, "split": split,
        "scene": {"floor_plan": scene_id, "scene_num": scene_num, "random_seed": seed,
                  "objects": [{"objectType": t, "parent": p} for t, p in objects]},
        "pddl_params": spec.pddl_params(),
        "plan": {"high_pddl": [s.to_high_pddl(i) for i, s in enumerate(plan)], "low_actions": low_actions},
        "turk_annotations": {"anns": [{"task_desc": d, "high_descs": list(h), "votes": [1, 1, 1]} for d, h in anns]},
    }
    validate_traj(traj)
    return traj


def _need(obj: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise ValueError(f"{where}: missing field {key!r}")
    if not isinstance(obj[key], kind) or (kind is int and isinstance(obj[key], bool)):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ValueError(f"{where}.{key} must be {names}, got {type(obj[key]).__name__}")
    return obj[key]


def validate_traj(traj: Any, source: str = "traj_data") -> TaskSpec:
    """Check the fields vlarena uses; returns the task. Errors name `source` and the field."""
    version = _need(traj, "format_version", int, source)
    if version != TRAJ_FORMAT_VERSION:
        raise ValueError(f"{source}.format_version must be {TRAJ_FORMAT_VERSION}, got {version}")
    _need(traj, "task_id", str, source)
    split = _need(traj, "split", str, source)
    if split not in SPLITS:
        raise ValueError(f"{source}.split must be one of {list(SPLITS)}, got {split!r}")
    params = _need(traj, "pddl_params", dict, source)
    try:
        spec = TaskSpec.from_pddl(_need(traj, "task_type", str, source), params)
    except ValueError as exc:
        raise ValueError(f"{source}.pddl_params: {exc}") from None
    scene = _need(traj, "scene", dict, source)
    for key, kind in (("floor_plan", str), ("scene_num", int), ("random_seed", int)):
        _need(scene, key, kind, f"{source}.scene")
    objects = _need(scene, "objects", list, f"{source}.scene")
    for i, o in enumerate(objects):
        where = f"{source}.scene.objects[{i}]"
        try:
            object_type(_need(o, "objectType", str, where))
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
        parent = _need(o, "parent", int, where)
        if not -1 <= parent < len(objects) or parent == i:
            raise ValueError(f"{where}.parent must be -1 or another object's index (< {len(objects)}), got {parent}")
    plan = _need(traj, "plan", dict, source)
    high = _need(plan, "high_pddl", list, f"{source}.plan")
    for i, h in enumerate(high):
        where = f"{source}.plan.high_pddl[{i}]"
        if _need(h, "high_idx", int, where) != i:
            raise ValueError(f"{where}.high_idx must be {i}, got {h['high_idx']}")
        action = _need(_need(h, "discrete_action", dict, where), "action", str, f"{where}.discrete_action")
        if action not in HIGH_LEVEL_ACTIONS:
            raise ValueError(f"{where}.discrete_action.action must be one of {list(HIGH_LEVEL_ACTIONS)}, got {action!r}")
    for i, low in enumerate(_need(plan, "low_actions", list, f"{source}.plan")):
        where = f"{source}.plan.low_actions[{i}]"
        idx = _need(low, "high_idx", int, where)
        if not 0 <= idx < len(high):
            raise ValueError(f"{where}.high_idx must index plan.high_pddl (< {len(high)}), got {idx}")
        _need(_need(low, "api_action", dict, where), "action", str, f"{where}.api_action")
    anns = _need(_need(traj, "turk_annotations", dict, source), "anns", list, f"{source}.turk_annotations")
    if not anns:
        raise ValueError(f"{source}.turk_annotations.anns must hold at least one annotation")
    steps = sum(1 for h in high if h["discrete_action"]["action"] != "NoOp")
    for i, ann in enumerate(anns):
        where = f"{source}.turk_annotations.anns[{i}]"
        _need(ann, "task_desc", str, where)
        descs = _need(ann, "high_descs", list, where)
        if len(descs) != steps or not all(isinstance(d, str) for d in descs):
            raise ValueError(f"{where}.high_descs must hold {steps} strings (one per subgoal but NoOp), got "
                             f"{len(descs)}")
    return spec


def write_traj(path: str | Path, traj: dict[str, Any]) -> Path:
    """Validate, then write atomically."""
    validate_traj(traj, str(path))
    return write_json(path, traj, indent=1)


def read_traj(path: str | Path) -> dict[str, Any]:
    traj = read_json(path, "ALFRED-style traj_data.json")
    validate_traj(traj, str(path))
    return traj
