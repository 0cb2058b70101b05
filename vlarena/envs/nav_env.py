"""The native batched navigation env: B agents in a pool of scenes, torch tensors on one device.

Tasks subclass `NavVectorEnv` and supply episodes (start pose, goal cells, instruction) and the
success test for STOP. Everything per step is a tensor operation over the batch; the only Python
work per episode is refreshing the tuple of instruction strings when some env resets.

Autoreset (`metadata["autoreset_mode"]`, gymnasium 1.x semantics):
- NEXT_STEP (default): an env that ended at step t is reset at step t+1; that step ignores its
  action and returns the first observation of the new episode with reward 0 and no termination.
- SAME_STEP: an env that ends is reset at once; the observation of its last step is in
  `info["final_obs"]` (rows where `info["_final_obs"]` is True) and its info in `info["final_info"]`.
Evaluation never relies on either: `reset(options={"episode_id": [...]})` assigns episodes.

Reward (documented, habitat-lab ObjectNav style): decrease of the geodesic distance to the goal
(metres) + `success_reward` on a successful STOP - `slack_penalty` every step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from vlarena.datasets.scene import Scene
from vlarena.envs.episodic import EpisodicVectorEnv
from vlarena.envs.geodesic import FieldPool, ShortestPathExpert
from vlarena.envs.motion import ACTION_NAMES, STOP, MotionConfig, apply_actions, compiled_apply_actions
from vlarena.envs.renderer import RenderConfig, Renderer
from vlarena.envs.scene_tensors import SceneTensors

INSTRUCTION_CHARSET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:'!?-()"
INSTRUCTION_MAX_LENGTH = 512
AUTORESET_MODES = {"next_step": AutoresetMode.NEXT_STEP, "same_step": AutoresetMode.SAME_STEP}


@dataclass
class NavEnvConfig:
    """Settings shared by the navigation tasks (names as in the hydra `env` group)."""

    split: str = "train"
    num_scenes: int = 8
    episodes_per_scene: int = 32
    seed: int = 0  # dataset seed: scenes and episodes
    width: int = 64
    height: int = 64
    hfov_deg: float = 90.0
    camera_height: float = 1.25
    max_depth: float = 10.0
    max_episode_steps: int = 500
    device: str = "cpu"
    compile: bool = False
    autoreset_mode: str = "next_step"
    expert: bool = True  # compute info["expert_action"] every step
    success_reward: float = 2.5
    slack_penalty: float = 0.01
    motion: MotionConfig = field(default_factory=MotionConfig)

    def __post_init__(self) -> None:
        if isinstance(self.motion, dict):
            self.motion = MotionConfig(**self.motion)
        for name in ("num_scenes", "episodes_per_scene", "width", "height", "max_episode_steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"env.{name} must be a positive int, got {value!r}")
        if self.autoreset_mode not in AUTORESET_MODES:
            raise ValueError(f"env.autoreset_mode must be one of {sorted(AUTORESET_MODES)}, got {self.autoreset_mode!r}")
        if not 0 < self.hfov_deg < 180:
            raise ValueError(f"env.hfov_deg must be in (0, 180), got {self.hfov_deg}")

    def render_config(self) -> RenderConfig:
        return RenderConfig(width=self.width, height=self.height, hfov_deg=self.hfov_deg,
                            camera_height=self.camera_height, max_depth=self.max_depth, compile=self.compile)


@dataclass
class EpisodeTable:
    """All episodes of an env as tensors (E rows) plus their ids and instructions."""

    ids: list[str]
    instructions: list[str]
    scene_idx: torch.Tensor  # int64 [E]
    start_pose: torch.Tensor  # float32 [E, 3]
    field_slot: torch.Tensor  # int64 [E]
    start_distance: torch.Tensor  # float32 [E], geodesic metres


def single_observation_space(config: NavEnvConfig) -> gym.spaces.Dict:
    h, w = config.height, config.width
    return gym.spaces.Dict({
        "rgb": gym.spaces.Box(0, 255, (h, w, 3), np.uint8),
        "depth": gym.spaces.Box(0.0, config.max_depth, (h, w, 1), np.float32),
        "instruction": gym.spaces.Text(max_length=INSTRUCTION_MAX_LENGTH, min_length=1, charset=INSTRUCTION_CHARSET),
    })


class NavVectorEnv(EpisodicVectorEnv):
    """Base class of the batched navigation tasks. Subclasses implement `_build` and `_stop_success`."""

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": ["rgb_array"]}
    config_class: type[NavEnvConfig] = NavEnvConfig
    action_meanings = "0 STOP, 1 FORWARD, 2 TURN_LEFT, 3 TURN_RIGHT"

    def __init__(self, num_envs: int = 8, config: NavEnvConfig | None = None, **overrides: Any):
        if not isinstance(num_envs, int) or isinstance(num_envs, bool) or num_envs <= 0:
            raise ValueError(f"num_envs must be a positive int (the batch size), got {num_envs!r}")
        config = config or self.config_class()
        if overrides:
            config = type(config)(**{**config.__dict__, **overrides})
        self.config = config
        self.num_envs = num_envs
        self.device = torch.device(config.device)
        self.metadata = {**type(self).metadata, "autoreset_mode": AUTORESET_MODES[config.autoreset_mode]}
        self.single_observation_space = single_observation_space(config)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.single_action_space = gym.spaces.Discrete(len(ACTION_NAMES))
        self.action_space = gym.spaces.MultiDiscrete(np.full(num_envs, len(ACTION_NAMES)))
        self.scenes: list[Scene] = self._make_scenes()
        self.scene_tensors = SceneTensors.from_scenes(self.scenes, device=self.device)
        self.renderer = Renderer(self.scene_tensors, config.render_config())
        self.fields = FieldPool(self.scene_tensors, self.scenes)
        self.expert = ShortestPathExpert(self.scene_tensors, self.fields, config.motion)
        self._apply_actions = compiled_apply_actions() if config.compile else apply_actions
        self.episodes = self._build()
        self.episode_ids = self.episodes.ids
        self._rng = torch.Generator(device="cpu")
        self._rng.manual_seed(config.seed)
        b = num_envs
        self.ep = torch.zeros(b, dtype=torch.long, device=self.device)
        self.pose = torch.zeros(b, 3, device=self.device)
        self.steps = torch.zeros(b, dtype=torch.long, device=self.device)
        self.path_length = torch.zeros(b, device=self.device)
        self.prev_distance = torch.zeros(b, device=self.device)
        self._pending_reset = torch.zeros(b, dtype=torch.bool, device=self.device)
        self._instructions: tuple[str, ...] = ()

    # ---- for subclasses ------------------------------------------------------------------
    def _make_scenes(self) -> list[Scene]:
        raise NotImplementedError

    def _build(self) -> EpisodeTable:
        raise NotImplementedError

    def _stop_success(self, margin: float = 0.0) -> torch.Tensor:
        """True [B] where calling STOP at the current pose succeeds (with `margin` metres to spare)."""
        raise NotImplementedError

    def _expert_stop(self) -> torch.Tensor:
        """True [B] where the expert calls STOP."""
        return self._stop_success(margin=0.05)

    # ---- gymnasium API -------------------------------------------------------------------
    @property
    def scene_idx(self) -> torch.Tensor:
        return self.episodes.scene_idx[self.ep]

    @property
    def field_slot(self) -> torch.Tensor:
        return self.episodes.field_slot[self.ep]

    def step(self, actions: Any):
        actions = self._check_actions(actions)
        active = ~self._pending_reset
        if not bool(active.all()):  # NEXT_STEP autoreset: these envs ignore their action and restart
            self._start(~active, self._sample_episodes())
        stop = (actions == STOP) & active
        success = stop & self._stop_success()
        pose, collided = self._apply_actions(self.scene_tensors, self.scene_idx, self.pose, actions, self.config.motion)
        moved = (pose[:, :2] - self.pose[:, :2]).norm(dim=-1)
        self.pose = torch.where(active[:, None], pose, self.pose)
        self.path_length += moved * active
        self.steps += active.long()
        distance = self._distance()
        progress = torch.where(torch.isfinite(distance) & torch.isfinite(self.prev_distance),
                               self.prev_distance - distance, torch.zeros_like(distance))
        reward = progress + self.config.success_reward * success - self.config.slack_penalty
        reward = torch.where(active, reward, torch.zeros_like(reward))
        self.prev_distance = torch.where(torch.isfinite(distance), distance, self.prev_distance)
        terminated = stop
        truncated = active & ~stop & (self.steps >= self.config.max_episode_steps)
        done = terminated | truncated
        info = self._info(done, success=success, collided=collided & active)
        if self.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP:
            self._pending_reset = done
        elif bool(done.any()):  # SAME_STEP
            final_obs = self._observe(rows=done)
            self._start(done, self._sample_episodes())
            info = {**self._info(torch.zeros_like(done)), "final_obs": final_obs, "_final_obs": done,
                    "final_info": info}
        return self._observe(), reward, terminated, truncated, info

    def render(self) -> tuple[np.ndarray, ...]:
        frames = self.renderer.render(self.scene_idx, self.pose, outputs=("rgb",))["rgb"]
        return tuple(frames.cpu().numpy())

    # ---- helpers ---------------------------------------------------------------------------
    def _reset_info(self) -> dict[str, Any]:
        return self._info(torch.zeros_like(self._pending_reset))

    def _start(self, rows: torch.Tensor, ep: torch.Tensor) -> None:
        """Begin episodes `ep` in the envs where `rows` is True."""
        self.ep = torch.where(rows, ep, self.ep)
        self.pose = torch.where(rows[:, None], self.episodes.start_pose[self.ep], self.pose)
        self.steps = torch.where(rows, torch.zeros_like(self.steps), self.steps)
        self.path_length = torch.where(rows, torch.zeros_like(self.path_length), self.path_length)
        self.prev_distance = torch.where(rows, self._distance(), self.prev_distance)
        self._instructions = tuple(self.episodes.instructions[e] for e in self.ep.tolist())

    def _distance(self) -> torch.Tensor:
        return self.fields.distance(self.field_slot, self.pose[:, :2])

    def _observe(self, rows: torch.Tensor | None = None) -> dict[str, Any]:
        if rows is None:
            out = self.renderer.render(self.scene_idx, self.pose, outputs=("rgb", "depth"))
            return {"rgb": out["rgb"], "depth": out["depth"], "instruction": self._instructions}
        idx = rows.nonzero().squeeze(1)
        out = self.renderer.render(self.scene_idx[idx], self.pose[idx], outputs=("rgb", "depth"))
        rgb = torch.zeros((self.num_envs, *out["rgb"].shape[1:]), dtype=torch.uint8, device=self.device)
        depth = torch.zeros((self.num_envs, *out["depth"].shape[1:]), device=self.device)
        rgb[idx], depth[idx] = out["rgb"], out["depth"]
        return {"rgb": rgb, "depth": depth, "instruction": self._instructions}

    def _info(self, done: torch.Tensor, success: torch.Tensor | None = None,
              collided: torch.Tensor | None = None) -> dict[str, Any]:
        zeros = torch.zeros_like(done)
        success = zeros if success is None else success
        d0 = self.episodes.start_distance[self.ep]
        spl = success * d0 / torch.maximum(d0, self.path_length).clamp(min=1e-6)
        info = {
            "success": success,
            "distance_to_goal": self.prev_distance.clone(),
            "collided": zeros if collided is None else collided,
            "path_length": self.path_length.clone(),
            "spl": torch.where(done, spl, torch.zeros_like(spl)),
            "episode_index": self.ep.clone(),
            "elapsed_steps": self.steps.clone(),
            "done": done,
        }
        if self.config.expert:
            info["expert_action"] = self.expert.act(self.scene_idx, self.pose, self.field_slot, self._expert_stop())
        return info

