"""ALFRED-style splits on disk: one `traj_data.json` per episode, every one solved by the expert.

    paths = generate_split("valid_unseen", num_episodes=20, out_dir="data/alfred")
    # data/alfred/valid_unseen/trial_valid_unseen_00000/traj_data.json, ...

Splits are scene seeds: train and valid_seen draw from the same 200 scenes (0..199; valid_seen with
other tasks and starts), valid_unseen from 100000.., test from 200000.. (held-out scenes, as ALFRED's
unseen floor plans). Episode k of a split uses scene `first + k % scenes`, with the room type cycling
through the four; its task type is drawn among those the scene allows, its start is a random free
cell, heading and ALFRED's 30-degree horizon (`scene.init_action`). A task the expert cannot finish
(expert.expert_trajectory raises) is redrawn, up to 8 times, then the episode moves to the next scene.
Each episode has three annotations (the generated wording with three seeds). Files are written
atomically; a split folder holds only complete episodes.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from vlarena.datasets.alfred.instructions import describe
from vlarena.datasets.alfred.planner import high_level_plan
from vlarena.datasets.alfred.sample import feasible_task_types, sample_task
from vlarena.datasets.alfred.scenes import ROOM_TYPES, generate_household
from vlarena.datasets.alfred.traj_data import SPLITS, build_traj, write_traj
from vlarena.envs.household.expert import expert_trajectory
from vlarena.envs.household.navigate import HORIZONS, START_HORIZON, blocked_table
from vlarena.envs.motion import MotionConfig
from vlarena.envs.scene_tensors import SceneTensors

SCENE_SEEDS: dict[str, tuple[int, int]] = {  # (first seed, number of scenes)
    "train": (0, 200), "valid_seen": (0, 200), "valid_unseen": (100_000, 50), "test": (200_000, 50)}
SPLIT_SALT = {"train": 0, "valid_seen": 1, "valid_unseen": 2, "test": 3}
TASK_TRIES = 8


def make_episode(split: str, k: int, scene_offset: int = 0) -> dict | None:
    """Episode k of `split` (a traj_data dict), from scene k + scene_offset; None if no task of that scene
    was finished by the expert."""
    first, count = SCENE_SEEDS[split]
    scene_seed = first + (k + scene_offset) % count
    hs = generate_household(scene_seed, room_type=ROOM_TYPES[scene_seed % len(ROOM_TYPES)])
    rng = np.random.default_rng([scene_seed, k, SPLIT_SALT[split]])
    free, _ = blocked_table(SceneTensors.from_scenes([hs.scene]), 0, MotionConfig(turn_deg=90.0))
    cells = free.nonzero()
    kinds = feasible_task_types(hs)
    for _ in range(TASK_TRIES if kinds else 0):
        spec = sample_task(hs, rng, kinds[int(rng.integers(len(kinds)))])
        c = cells[int(rng.integers(len(cells)))]
        start = (int(c[0]), int(c[1]), int(rng.integers(4)), START_HORIZON)
        try:
            traj = expert_trajectory(hs, spec, start)
        except RuntimeError:
            continue
        plan = high_level_plan(spec, hs.slots())
        anns = [describe(spec, plan, hs.slots(), random.Random(int(rng.integers(2**31)))) for _ in range(3)]
        out = build_traj(f"trial_{split}_{k:05d}", spec, split, hs.scene.scene_id, scene_seed, scene_seed,
                         hs.slots(), plan, traj.low_actions(), anns)
        cs = hs.scene.cell_size
        out["scene"]["init_action"] = {"action": "TeleportFull", "cell": [start[0], start[1]],
                                       "x": (start[1] + 0.5) * cs, "y": (start[0] + 0.5) * cs,
                                       "rotation": 90 * start[2], "horizon": HORIZONS[start[3]]}
        out["scene"]["room_type"] = hs.room_type
        return out
    return None


def generate_split(split: str, num_episodes: int, out_dir: str | Path, start: int = 0) -> list[Path]:
    """Write episodes start .. start + num_episodes - 1 of `split` under out_dir/split/; returns their paths.

    Episode k does not depend on the others, so disjoint ranges can be written by parallel processes into one
    folder (`vlarena data alfred --start`)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
    if isinstance(num_episodes, bool) or not isinstance(num_episodes, int) or num_episodes <= 0:
        raise ValueError(f"num_episodes must be a positive int, got {num_episodes!r}")
    if isinstance(start, bool) or not isinstance(start, int) or start < 0:
        raise ValueError(f"start must be an int >= 0, got {start!r}")
    paths: list[Path] = []
    for k in range(start, start + num_episodes):
        offset, traj = 0, make_episode(split, k)
        while traj is None:  # this scene holds no task the expert finishes: the next scene
            offset += 1
            if offset > SCENE_SEEDS[split][1]:
                raise RuntimeError(f"no scene of split {split} holds a task the expert finishes")
            traj = make_episode(split, k, offset)
        paths.append(write_traj(Path(out_dir) / split / traj["task_id"] / "traj_data.json", traj))
    return paths
