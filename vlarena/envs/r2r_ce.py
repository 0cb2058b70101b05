"""`vlarena/R2R-CE-v0`: R2R instructions in continuous environments (VLN-CE).

Actions STOP, FORWARD 0.25 m, TURN_LEFT 15°, TURN_RIGHT 15° (`vlarena.envs.motion`); at most
`max_episode_steps` = 500 steps. The goal is the last viewpoint of the R2R path (its floor point).
Success, as VLN-CE's `Success` measure: the agent called STOP with geodesic distance to the goal
`< success_distance` (3.0 m, strict). The geodesic is the grid geodesic of the scene's navigable
grid (`vlarena.envs.geodesic.FieldPool`), as VLN-CE measures habitat's navmesh geodesic, not the
graph distance of R2R. SPL's shortest path is the geodesic from the start.

The shortest-path expert (`info["expert_action"]`) walks the geodesic to the goal point and stops
within `expert_stop_distance` (0.5 m) of it, as VLN-CE's `ShortestPathFollower` teacher does.
Episode ids are R2R's `instr_id`s, `f"{path_id}_{k}"` (see `vlarena.envs.r2r_data`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from vlarena.datasets.geodesic import GridGraph
from vlarena.datasets.navigation import navigable_mask
from vlarena.datasets.scene import Scene
from vlarena.envs.nav_env import EpisodeTable, NavEnvConfig, NavVectorEnv
from vlarena.envs.r2r_data import R2RDataConfig, load_split


@dataclass
class R2RCEConfig(NavEnvConfig):
    """NavEnvConfig plus the R2R data; `num_scenes` and `episodes_per_scene` are not used here."""

    dataset: R2RDataConfig = field(default_factory=R2RDataConfig)
    success_distance: float = 3.0
    expert_stop_distance: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.dataset, dict):
            self.dataset = R2RDataConfig(**self.dataset)
        if not 0 < self.expert_stop_distance < self.success_distance:
            raise ValueError(f"env.expert_stop_distance must be in (0, success_distance={self.success_distance}), "
                             f"got {self.expert_stop_distance}")


class R2RCEVectorEnv(NavVectorEnv):
    """Native batched VLN-CE env (see NavVectorEnv for the step/reset contract)."""

    config_class = R2RCEConfig
    config: R2RCEConfig

    def _make_scenes(self) -> list[Scene]:
        self.data = load_split(self.config.split, self.config.dataset)
        return self.data.scenes

    def _build(self) -> EpisodeTable:
        data, cs = self.data, self.scene_tensors.cell_size
        grids = [GridGraph(navigable_mask(scene), scene.cell_size) for scene in data.scenes]
        poses, slots, dists, goals, refs = [], [], [], [], []
        fields: dict[tuple[int, int], np.ndarray] = {}
        for e in range(len(data.episode_ids)):
            s, path = data.reference(e)
            graph = data.graphs[s]
            xy = graph.positions[path, :2]
            cells = np.floor(xy / cs).astype(np.int64)[:, ::-1]  # (row, col) of each viewpoint
            key = (s, path[-1])
            if key not in fields:
                goal = np.zeros(grids[s].shape, dtype=bool)
                goal[tuple(cells[-1])] = True
                fields[key] = grids[s].distance_field(goal)
                self.fields.add(key, fields[key], scene=s)
            slots.append(self.fields.keys[key])
            dists.append(float(fields[key][tuple(cells[0])]))
            poses.append((*xy[0], data.paths[data.path_of[e]].scene_heading))
            goals.append(xy[-1])
            refs.append(xy)
        dev = self.device
        self.goal_xy = torch.tensor(np.array(goals), dtype=torch.float32, device=dev)  # [E, 2]
        self.reference_xy = refs  # per episode [R, 2] numpy, the viewpoints of the R2R path
        return EpisodeTable(
            ids=list(data.episode_ids), instructions=list(data.instructions),
            scene_idx=torch.tensor(data.scene_of, dtype=torch.long, device=dev),
            start_pose=torch.tensor(poses, dtype=torch.float32, device=dev),
            field_slot=torch.tensor(slots, dtype=torch.long, device=dev),
            start_distance=torch.tensor(dists, dtype=torch.float32, device=dev),
        )

    def _stop_success(self, margin: float = 0.0) -> torch.Tensor:
        return self._distance() < self.config.success_distance - margin

    def _expert_stop(self) -> torch.Tensor:
        return self._distance() <= self.config.expert_stop_distance
