"""`vlarena/ObjectNav-v0`: "go to the <colour> <object> in the <room>".

Success: the agent calls STOP with its centre within `success_distance` (1.0 m) of the footprint
of any object matching the description (Euclidean, `<=`). Episodes end on STOP or after
`max_episode_steps`. Scenes come from the split's seed range (train, val, test never overlap).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from vlarena.datasets.generate import generate_scene
from vlarena.datasets.objectnav import GoalFields, generate_episodes
from vlarena.datasets.scene import Scene
from vlarena.envs.motion import object_distance
from vlarena.envs.nav_env import EpisodeTable, NavEnvConfig, NavVectorEnv

SPLIT_SEED_BASE = {"train": 0, "val": 100_000, "test": 200_000}


def split_scenes(split: str, num_scenes: int, seed: int) -> list[Scene]:
    """The scenes of a split: seeds SPLIT_SEED_BASE[split] + 1000 * seed + k, k < num_scenes."""
    if split not in SPLIT_SEED_BASE:
        raise ValueError(f"split must be one of {list(SPLIT_SEED_BASE)}, got {split!r}")
    if num_scenes > 1000:
        raise ValueError(f"num_scenes must be at most 1000, got {num_scenes}")
    base = SPLIT_SEED_BASE[split] + 1000 * seed
    return [generate_scene(base + k) for k in range(num_scenes)]


class ObjectNavVectorEnv(NavVectorEnv):
    """Native batched ObjectNav env (see NavVectorEnv for the step/reset contract)."""

    def __init__(self, num_envs: int = 8, config: NavEnvConfig | None = None, success_distance: float = 1.0,
                 **overrides: Any):
        if not success_distance > 0:
            raise ValueError(f"success_distance must be positive (metres), got {success_distance}")
        self.success_distance = float(success_distance)
        super().__init__(num_envs, config, **overrides)

    def _make_scenes(self) -> list[Scene]:
        return split_scenes(self.config.split, self.config.num_scenes, self.config.seed)

    def _build(self) -> EpisodeTable:
        ids, texts, scene_idx, poses, slots, dists, goals = [], [], [], [], [], [], []
        k = self.scene_tensors.max_objects
        for si, scene in enumerate(self.scenes):
            fields = GoalFields(scene)
            for ep in generate_episodes(scene, self.config.episodes_per_scene, self.config.seed, fields=fields):
                ids.append(ep.episode_id)
                texts.append(ep.instruction)
                scene_idx.append(si)
                poses.append((*ep.start_position, ep.start_heading))
                slots.append(self.fields.add((si, ep.goal_object_ids), fields.field(ep.goal_object_ids), scene=si))
                dists.append(ep.geodesic_distance)
                mask = np.zeros(k, dtype=bool)
                mask[list(ep.goal_object_ids)] = True
                goals.append(mask)
        dev = self.device
        self.goal_objects = torch.from_numpy(np.stack(goals)).to(dev)  # bool [E, K]
        return EpisodeTable(
            ids=ids, instructions=texts,
            scene_idx=torch.tensor(scene_idx, dtype=torch.long, device=dev),
            start_pose=torch.tensor(poses, dtype=torch.float32, device=dev),
            field_slot=torch.tensor(slots, dtype=torch.long, device=dev),
            start_distance=torch.tensor(dists, dtype=torch.float32, device=dev),
        )

    def goal_object_distance(self) -> torch.Tensor:
        """Euclidean metres [B] from each agent to the nearest matching goal object's footprint."""
        d = object_distance(self.scene_tensors, self.scene_idx, self.pose[:, :2])
        return torch.where(self.goal_objects[self.ep], d, torch.full_like(d, float("inf"))).min(dim=1).values

    def _stop_success(self, margin: float = 0.0) -> torch.Tensor:
        return self.goal_object_distance() <= self.success_distance - margin
