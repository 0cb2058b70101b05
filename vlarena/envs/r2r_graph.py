"""`vlarena/R2R-v0`: R2R on the navigation graph (Matterport3DSimulator's panoramic action space).

Observation (Dict):
- `rgb` (H, K*W, 3) uint8 and `depth` (H, K*W, 1) float32: a 360° panorama of K views (each of
  horizontal FOV 360/K degrees) taken at the viewpoint, centred on the agent's heading, left to
  right (the left edge looks backwards over the left shoulder). Default K = 4, 64x64 views.
- `instruction`: Text.
- `candidates` (C, 3) float32: for each neighbouring viewpoint, (sin, cos) of its direction
  relative to the heading (counter-clockwise positive, so a candidate on the left has sin > 0) and
  its distance in metres; rows are sorted by that angle from the right (-pi) to the left (+pi)
  and padded with zeros. `candidate_mask` (C,) int8: 1 for real candidates.
- `last_move` (3,) float32: the candidate features of the move that brought the agent here, taken
  before it (the turn it made and the edge's length); zeros at an episode's first step and after
  a STOP or an invalid action (the previous-action input of R2R follower agents).
- With `room_features=True` (privileged, for ablations: what perfect room recognition would give a policy),
  `room` (R + 1,) float32, the one-hot room type of the viewpoint (`catalog.ROOM_TYPES`, last: a door), and
  `candidates` gets the same one-hot of each candidate's viewpoint: (C, 3 + R + 1).
- With `object_features=True` (privileged, for ablations: what perfect object recognition would give a policy),
  `objects` (K,) float32, the object categories (`catalog.CATEGORY_NAMES`) within 1.5 m of the viewpoint in its
  room (the landmarks an instruction may name there), and `candidates` gets the same of each candidate's
  viewpoint after any room one-hot: (C, 3 [+ R + 1] + K).
- With `landmark_labels=True`, labels for a policy's landmark heads (policies/landmarks.py), in `info`, not in
  the observation: `candidate_landmarks` (B, C, K) float, the categories within 1.5 m of each candidate's
  viewpoint (as `objects`), and `instruction_landmarks` (B, K) float, the categories the instruction names (any
  of the generator's words for it, `instructions.OBJECT_WORDS`, as a whole word).

Action: Discrete(1 + C): 0 STOP, c >= 1 moves to candidate c - 1 and turns the agent to face
the direction it moved (R2R's panoramic action). Choosing a padded (masked) candidate leaves the
agent where it is and sets `info["invalid_action"]`. An episode ends on STOP or after
`max_episode_steps` moves (default 20, as R2R panoramic agents' action budget is 15-20).
Success, as the official R2R evaluation: the final viewpoint's graph distance to the goal
`< success_distance` (3.0 m); like the R2R evaluation it is judged on the final viewpoint whether
or not the agent called STOP. `info["expert_action"]` follows the graph shortest path to the goal
and stops on it (SPL 1.0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from vlarena.datasets.instructions import named_categories
from vlarena.datasets.navgraph_build import MAX_EDGE
from vlarena.envs.episodic import EpisodicVectorEnv
from vlarena.envs.nav_env import AUTORESET_MODES, INSTRUCTION_CHARSET, INSTRUCTION_MAX_LENGTH
from vlarena.envs.r2r_data import R2RDataConfig, load_split
from vlarena.envs.r2r_graph_tables import OBJECT_CLASSES, ROOM_CLASSES, GraphTables
from vlarena.envs.renderer import RenderConfig, Renderer
from vlarena.envs.scene_tensors import SceneTensors


@dataclass
class R2RGraphConfig:
    split: str = "train"
    dataset: R2RDataConfig = field(default_factory=R2RDataConfig)
    views: int = 4  # K panorama views
    width: int = 64  # of one view
    height: int = 64
    camera_height: float = 1.5  # Matterport camera height above the floor
    max_depth: float = 10.0
    max_candidates: int = 12
    max_episode_steps: int = 20
    success_distance: float = 3.0
    success_reward: float = 2.5
    slack_penalty: float = 0.01
    device: str = "cpu"
    compile: bool = False
    autoreset_mode: str = "next_step"
    expert: bool = True
    room_features: bool = False  # privileged room-type inputs (module doc)
    object_features: bool = False  # privileged nearby-object inputs (module doc)
    landmark_labels: bool = False  # training labels in info: objects near each candidate, objects named (module doc)

    def __post_init__(self) -> None:
        if isinstance(self.dataset, dict):
            self.dataset = R2RDataConfig(**self.dataset)
        for name in ("views", "width", "height", "max_candidates", "max_episode_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"env.{name} must be a positive int, got {value!r}")
        if self.autoreset_mode not in AUTORESET_MODES:
            raise ValueError(f"env.autoreset_mode must be one of {sorted(AUTORESET_MODES)}, got {self.autoreset_mode!r}")

    def render_config(self, hfov_deg: float | None = None) -> RenderConfig:
        """Each view `hfov_deg` wide (None: 360 / views, a panorama)."""
        return RenderConfig(width=self.width, height=self.height, hfov_deg=360.0 / self.views if hfov_deg is None else hfov_deg,
                            camera_height=self.camera_height, max_depth=self.max_depth, compile=self.compile)


def panorama_poses(xy: torch.Tensor, heading: torch.Tensor, views: int) -> torch.Tensor:
    """Render poses (B * K, 3) of K views around each (x, y) (B, 2), centred on `heading` (B,), left to right."""
    b, k = xy.shape[0], views
    offsets = (k / 2 - 0.5 - torch.arange(k, device=xy.device)) * (2 * math.pi / k)
    pose = torch.cat([xy[:, None, :].expand(b, k, 2), (heading[:, None] + offsets)[..., None]], dim=-1)
    return pose.reshape(b * k, 3)


def stitch_panorama(views: torch.Tensor, k: int) -> torch.Tensor:
    """K renders per agent (B * K, H, W, ...) -> one strip (B, H, K * W, ...), left to right."""
    bk, h, w = views.shape[:3]
    rest = views.shape[3:]
    return views.view(bk // k, k, h, w, *rest).transpose(1, 2).reshape(bk // k, h, k * w, *rest)


class R2RGraphVectorEnv(EpisodicVectorEnv):
    """Native batched R2R graph env: torch tensors on `config.device`, B episodes at once."""

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": ["rgb_array"]}
    action_meanings = "0 STOP, c >= 1 moves to candidate c - 1"

    def __init__(self, num_envs: int = 8, config: R2RGraphConfig | None = None, **overrides: Any):
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs <= 0:
            raise ValueError(f"num_envs must be a positive int (the batch size), got {num_envs!r}")
        config = config or R2RGraphConfig()
        if overrides:
            config = R2RGraphConfig(**{**config.__dict__, **overrides})
        self.config, self.num_envs = config, num_envs
        self.device = torch.device(config.device)
        self.metadata = {**type(self).metadata, "autoreset_mode": AUTORESET_MODES[config.autoreset_mode]}
        self.data = load_split(config.split, config.dataset)
        self.tables = GraphTables(self.data, config.max_candidates, self.device,
                                  config.object_features or config.landmark_labels)
        self.scene_tensors = SceneTensors.from_scenes(self.data.scenes, device=self.device)
        self.renderer = Renderer(self.scene_tensors, config.render_config())
        k, h, w, c = config.views, config.height, config.width, config.max_candidates
        rooms = ROOM_CLASSES if config.room_features else 0
        objects = OBJECT_CLASSES if config.object_features else 0
        self.single_observation_space = gym.spaces.Dict({
            "rgb": gym.spaces.Box(0, 255, (h, k * w, 3), np.uint8),
            "depth": gym.spaces.Box(0.0, config.max_depth, (h, k * w, 1), np.float32),
            "instruction": gym.spaces.Text(max_length=INSTRUCTION_MAX_LENGTH, min_length=1, charset=INSTRUCTION_CHARSET),
            "candidates": gym.spaces.Box(-1.0, max(1.0, MAX_EDGE), (c, 3 + rooms + objects), np.float32),
            "candidate_mask": gym.spaces.Box(0, 1, (c,), np.int8),
            "last_move": gym.spaces.Box(-1.0, max(1.0, MAX_EDGE), (3,), np.float32),
            **({"room": gym.spaces.Box(0.0, 1.0, (rooms,), np.float32)} if rooms else {}),
            **({"objects": gym.spaces.Box(0.0, 1.0, (objects,), np.float32)} if objects else {}),
        })
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.single_action_space = gym.spaces.Discrete(1 + c)
        self.action_space = gym.spaces.MultiDiscrete(np.full(num_envs, 1 + c))
        self.episode_ids = self.data.episode_ids
        self._rng = torch.Generator().manual_seed(config.dataset.seed)
        b, dev = num_envs, self.device
        self.ep = torch.zeros(b, dtype=torch.long, device=dev)
        self.vp = torch.zeros(b, dtype=torch.long, device=dev)
        self.heading = torch.zeros(b, device=dev)
        self.last_move = torch.zeros(b, 3, device=dev)
        self.steps = torch.zeros(b, dtype=torch.long, device=dev)
        self.path_length = torch.zeros(b, device=dev)
        self.trajectory = torch.zeros(b, config.max_episode_steps + 1, dtype=torch.long, device=dev)
        self._pending_reset = torch.zeros(b, dtype=torch.bool, device=dev)
        self._instructions: tuple[str, ...] = ()
        self._named = torch.zeros(b, OBJECT_CLASSES if config.landmark_labels else 0, device=dev)

    # ---- gymnasium API -----------------------------------------------------------------------
    @property
    def scene_idx(self) -> torch.Tensor:
        return self.tables.ep_scene[self.ep]

    def step(self, actions: Any):
        actions = self._check_actions(actions)
        active = ~self._pending_reset
        if not bool(active.all()):
            self._start(~active, self._sample_episodes())
        t = self.tables
        s = self.scene_idx
        stop = (actions == 0) & active
        slot = (actions - 1).clamp(min=0)
        target = self._cand.gather(1, slot[:, None]).squeeze(1)
        move = (actions > 0) & active
        invalid = move & (target < 0)
        move &= target >= 0
        chosen = self._cand_feats.gather(1, slot[:, None, None].expand(-1, 1, 3)).squeeze(1)
        self.last_move = torch.where(move[:, None], chosen, torch.zeros_like(chosen))
        new_vp = torch.where(move, target, self.vp)
        delta = t.positions[s, new_vp, :2] - t.positions[s, self.vp, :2]
        self.path_length += torch.where(move, delta.norm(dim=-1), torch.zeros_like(self.path_length))
        self.heading = torch.where(move, torch.atan2(delta[:, 1], delta[:, 0]), self.heading)
        before = self._distance()
        self.vp = new_vp
        self.steps += active.long()
        self.trajectory.scatter_(1, self.steps[:, None].clamp(max=self.config.max_episode_steps), self.vp[:, None])
        after = self._distance()
        self._refresh_candidates()
        truncated = active & ~stop & (self.steps >= self.config.max_episode_steps)
        done = stop | truncated
        success = done & (after < self.config.success_distance)
        reward = (before - after) + self.config.success_reward * success - self.config.slack_penalty
        reward = torch.where(active, reward, torch.zeros_like(reward))
        info = self._info(done, success, invalid)
        if self.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP:
            self._pending_reset = done
        elif bool(done.any()):
            final_obs = self._observe()
            self._start(done, self._sample_episodes())
            zero = torch.zeros_like(done)
            info = {**self._info(zero, zero, zero), "final_obs": final_obs, "_final_obs": done, "final_info": info}
        return self._observe(), reward, stop, truncated, info

    def render(self) -> tuple[np.ndarray, ...]:
        return tuple(self._observe()["rgb"].cpu().numpy())

    # ---- helpers -----------------------------------------------------------------------------
    def _reset_info(self) -> dict[str, Any]:
        done = torch.zeros_like(self._pending_reset)
        return self._info(done, done, done)

    def _start(self, rows: torch.Tensor, ep: torch.Tensor) -> None:
        t = self.tables
        self.ep = torch.where(rows, ep, self.ep)
        self.vp = torch.where(rows, t.ep_start[self.ep], self.vp)
        self.heading = torch.where(rows, t.ep_heading[self.ep], self.heading)
        self.last_move = torch.where(rows[:, None], torch.zeros_like(self.last_move), self.last_move)
        self.steps = torch.where(rows, torch.zeros_like(self.steps), self.steps)
        self.path_length = torch.where(rows, torch.zeros_like(self.path_length), self.path_length)
        self.trajectory = torch.where(rows[:, None], self.vp[:, None], self.trajectory)
        self._instructions = tuple(self.data.instructions[e] for e in self.ep.tolist())
        if self.config.landmark_labels:
            started = torch.nonzero(rows).flatten().tolist()
            self._named[started] = torch.tensor([named_categories(self._instructions[r]) for r in started],
                                                device=self.device).view(len(started), -1)
        self._refresh_candidates()

    def _distance(self) -> torch.Tensor:
        t = self.tables
        return t.distances[self.scene_idx, self.vp, t.ep_goal[self.ep]]

    def _refresh_candidates(self) -> None:
        """Candidates of the current viewpoints sorted by relative angle, right (-pi) to left (+pi):
        `_cand` [B, C] viewpoint indices (-1 padding) and `_cand_feats` [B, C, 3]."""
        t, s = self.tables, self.scene_idx
        nb = t.neighbours[s, self.vp]  # [B, C]
        delta = t.positions[s[:, None], nb.clamp(min=0), :2] - t.positions[s, self.vp, None, :2]
        rel = torch.atan2(delta[..., 1], delta[..., 0]) - self.heading[:, None]
        rel = torch.remainder(rel + math.pi, 2 * math.pi) - math.pi
        order = torch.where(nb >= 0, rel, torch.full_like(rel, 10.0)).argsort(dim=1)
        nb, rel, dist = nb.gather(1, order), rel.gather(1, order), delta.norm(dim=-1).gather(1, order)
        feats = torch.stack([torch.sin(rel), torch.cos(rel), dist], dim=-1)
        if self.config.room_features:
            rooms = t.room_type[s[:, None], nb.clamp(min=0)]
            feats = torch.cat([feats, F.one_hot(rooms, ROOM_CLASSES).to(feats.dtype)], dim=-1)
        if self.config.object_features:
            feats = torch.cat([feats, t.objects[s[:, None], nb.clamp(min=0)]], dim=-1)
        self._cand = nb
        self._cand_feats = torch.where((nb >= 0)[..., None], feats, torch.zeros_like(feats))

    def candidate_viewpoints(self) -> torch.Tensor:
        """Viewpoint indices [B, C] of the candidates in observation order (-1 padding)."""
        return self._cand.clone()

    def _observe(self) -> dict[str, Any]:
        k = self.config.views
        t, s = self.tables, self.scene_idx
        pose = panorama_poses(t.positions[s, self.vp, :2], self.heading, k)
        out = self.renderer.render(s.repeat_interleave(k), pose, outputs=("rgb", "depth"))
        rgb, depth = stitch_panorama(out["rgb"], k), stitch_panorama(out["depth"], k)
        obs = {"rgb": rgb, "depth": depth, "instruction": self._instructions, "candidates": self._cand_feats.clone(),
               "candidate_mask": (self._cand >= 0).to(torch.int8), "last_move": self.last_move.clone()}
        if self.config.room_features:
            obs["room"] = F.one_hot(t.room_type[s, self.vp], ROOM_CLASSES).float()
        if self.config.object_features:
            obs["objects"] = t.objects[s, self.vp].clone()
        return obs

    def expert_action(self) -> torch.Tensor:
        """0 (STOP) at the goal, else 1 + the candidate on the graph shortest path to it."""
        t, s = self.tables, self.scene_idx
        nxt = t.next_hop[s, self.vp, t.ep_goal[self.ep]]
        slot = (self._cand == nxt[:, None]).long().argmax(dim=1)
        return torch.where(self.vp == t.ep_goal[self.ep], torch.zeros_like(slot), slot + 1)

    def _info(self, done: torch.Tensor, success: torch.Tensor, invalid: torch.Tensor) -> dict[str, Any]:
        sp = self.tables.ep_shortest[self.ep]
        spl = success * sp / torch.maximum(sp, self.path_length).clamp(min=1e-6)
        info = {
            "success": success,
            "distance_to_goal": self._distance(),
            "path_length": self.path_length.clone(),
            "spl": torch.where(done, spl, torch.zeros_like(spl)),
            "invalid_action": invalid,
            "viewpoint": self.vp.clone(),
            "episode_index": self.ep.clone(),
            "elapsed_steps": self.steps.clone(),
            "done": done,
        }
        if self.config.expert:
            info["expert_action"] = self.expert_action()
        if self.config.landmark_labels:
            t, s, nb = self.tables, self.scene_idx, self._cand
            near = t.objects[s[:, None], nb.clamp(min=0)]
            info["candidate_landmarks"] = torch.where((nb >= 0)[..., None], near, torch.zeros_like(near))
            info["instruction_landmarks"] = self._named.clone()
        return info
