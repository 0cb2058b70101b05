"""ALFRED-style household instruction following, batched: `vlarena/ALFRED-v0` (`AlfredVectorEnv`).

    env = gym.make_vec("vlarena/ALFRED-v0", num_envs=4, data_dir="data/alfred", split="valid_unseen")
    obs, info = env.reset(seed=0)          # without data_dir: num_episodes (8) generated in memory
    obs, reward, terminated, truncated, info = env.step(info["expert_action"])

Actions (Discrete(13)): 0 STOP, 1 MoveAhead, 2 RotateLeft, 3 RotateRight, 4 LookUp, 5 LookDown, then
ALFRED's interactions 6 PickupObject ... 12 SliceObject (household.world.INTERACTIONS). The agent and
its looks are household.navigate's; an interaction acts on household.appearance's target. A blocked
MoveAhead, a look past -30/60 degrees, or an interaction that fails is a failed action: it changes
nothing and counts; an episode ends at STOP (terminated), after `max_failures` (10) failed actions
or `max_steps` (1000) steps (truncated), as ALFRED's. Success: all goal conditions hold when it ends.

Observations: `rgb` (H, W, 3) uint8 and `depth` (H, W, 1) of the view, `instruction`: the goal
description followed by the step-by-step instructions of one of the episode's three annotations, `pose`
(5,) float32: the agent's pose relative to its start (metres ahead and to the left in the start's frame,
sin and cos of the turn since the start, the camera horizon in degrees / 60), as AI2-THOR's agent
metadata gives it and map-building ALFRED agents (FILM) use it; a policy reads it with `state_keys: [pose]`.
`progress` (16,) float32: one-hot of how many of the agent's interactions have worked this episode (15 and
more share the last slot): what an agent can count from AI2-THOR's `lastActionSuccess`, as FILM's and
MOCA's agents do to know which subgoal they are at; `policy.progress_key` lets it choose the instruction
words the map is read with. `last_action` (13,) float32: one-hot of the action taken before this frame, and
`last_action_failed` (1,) float32: 1 when it failed (AI2-THOR's `lastAction` and `lastActionSuccess`; ALFRED's
seq2seq agents feed the previous action back); zeros at an episode's first frame.
Reward (documented, for PPO): `goal_reward` per goal condition newly met (minus per one undone),
`success_reward` on a STOP with all conditions met, minus `step_penalty` a step and
`failure_penalty` a failed action.

Expert (`info["expert_action"]`): household.recover.PlanExpert, the fewest actions from the agent's pose to
the next interaction of the episode's plan (then STOP), wherever the agent has walked, as long as it has
done the plan's interactions in order and no other interaction that changed the world; after such an
interaction the expert has no answer (-1, and `info["expert_valid"]` False; DAgger leaves those steps out
of its loss). Following it from the start takes as many steps as the recorded `plan.low_actions`. With `replan`
= true the expert repairs the plan after such an interaction where it can (PlanExpert.replan: the same
interaction on another object of the type takes that object's place, or else the interaction is undone next) and
answers on; only where no repair reaches the goal does it give -1.
`info["expert_target_type"]` (B,) int64: the ALFRED object type (objects.TYPE_INDEX, the `semantic_map`
channel 2 + t) of the object of the plan's next interaction, the one the expert is heading for; -1 off the plan
and once its interactions are done (the label of DAgger's `agent.goal_coef`).
With `look_around` = n the expert first turns left n times (4: once around, so the objects are seen, and on
the `semantic_map`, before it walks: the look-around that map-building ALFRED agents start with).

Semantic map (`semantic_map` = S > 0): observation `semantic_map` (S, S, 2 + 49) uint8, the agent's
top-down map of what it has seen this episode around it (household.semantic_map: seen floor, walls, and
one channel per ALFRED object type, from its frames' depth and ground-truth segmentation; FILM's map).
With `map_collisions` = true a MoveAhead that fails marks the cell ahead as a wall on that map (the obstacle it
bumped into, which the frames may not show: FILM adds such collisions to its map).
Segmentation (`segmentation` = true): observation `segmentation` (H, W, 2) int16, each pixel's object type
(objects.OBJECT_TYPES index + 1) and instance (world slot + 1), 0 for floor, walls and nothing: ground-truth
instance masks, the setting of FILM's ablation with ground-truth perception.
Type view (`type_view` = true): observation `type_view` (49, 9 + 7) float32 (household.type_view), per object
type where its pixels are in a 3 x 3 grid of the view around the interaction window, and which of the 7
interactions would act on an object of that type now; ground truth as well (a policy reads it with
`policy.view_key`, through its planner's choice of object type).
Action mask (`action_mask` = true): observation `action_mask` (13,) int8, 0 on each action that failed since the
last action that worked. A failed action changes nothing, so in this deterministic world it would fail again;
the mask tells the agent no more than it has seen, and a policy built on the space never repeats such an action
(policies/action_mask.py). The expert never takes one.
Autoreset: NEXT_STEP.
Resetting an env rebuilds the per-env scene tensors of the batch (Python work per episode start).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from vlarena.datasets.alfred.objects import OBJECT_TYPES
from vlarena.datasets.alfred.scenes import generate_household
from vlarena.datasets.alfred.traj_data import SPLITS, read_traj, validate_traj
from vlarena.envs.episodic import EpisodicVectorEnv
from vlarena.envs.household.appearance import WINDOW, HouseholdLook
from vlarena.envs.household.generate import make_episode
from vlarena.envs.household.goals import TaskGoals, goal_conditions
from vlarena.envs.household.navigate import HORIZONS, STEP, Camera, blocked_table, pose_tensor
from vlarena.envs.household.recover import PlanExpert
from vlarena.envs.household.semantic_map import CHANNELS as MAP_CHANNELS
from vlarena.envs.household.semantic_map import SemanticMap
from vlarena.envs.household.type_view import GRID, type_view
from vlarena.envs.household.world import INTERACTIONS, HouseholdWorld
from vlarena.envs.motion import MotionConfig
from vlarena.envs.nav_env import INSTRUCTION_CHARSET, INSTRUCTION_MAX_LENGTH
from vlarena.envs.renderer import RenderConfig, Renderer
from vlarena.envs.scene_tensors import SceneTensors

ACTIONS: tuple[str, ...] = ("STOP", "MoveAhead", "RotateLeft", "RotateRight", "LookUp", "LookDown", *INTERACTIONS)
FIRST_INTERACTION = 6
NUM_TYPES = len(OBJECT_TYPES)
PROGRESS_SLOTS = 16  # the `progress` observation: one-hot of the interactions that worked so far, the last slot for 15+


@dataclass
class AlfredEnvConfig:
    split: str = "train"
    data_dir: str | None = None  # a `vlarena data alfred` folder; None: generate num_episodes in memory
    num_episodes: int | None = None  # None: all episodes of data_dir (8 when generating)
    width: int = 64
    height: int = 64
    hfov_deg: float = 90.0
    max_steps: int = 1000
    max_failures: int = 10
    goal_reward: float = 1.0
    success_reward: float = 5.0
    step_penalty: float = 0.01
    failure_penalty: float = 0.05
    semantic_map: int = 0  # > 0: a `semantic_map` observation, this many cells (odd) across; 0: none
    segmentation: bool = False  # a `segmentation` observation: each pixel's object type and instance (ground truth)
    look_around: int = 0  # the expert's first actions: this many RotateLeft (4: a full turn, to see the room first)
    map_collisions: bool = False  # with semantic_map: a failed MoveAhead marks the cell ahead as a wall (FILM's)
    type_view: bool = False  # a `type_view` observation: where each object type is in view, what interactions hit
    action_mask: bool = False  # an `action_mask` observation: 0 on the actions that failed since the last that worked
    replan: bool = False  # the expert repairs its plan after an interaction it did not ask for (PlanExpert.replan)
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ValueError(f"env.split must be one of {list(SPLITS)}, got {self.split!r}")
        if isinstance(self.look_around, bool) or not isinstance(self.look_around, int) or self.look_around < 0:
            raise ValueError(f"env.look_around must be an int >= 0 (RotateLefts before the plan), got "
                             f"{self.look_around!r}")
        for name in ("width", "height", "max_steps", "max_failures"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ValueError(f"env.{name} must be a positive int, got {v!r}")
        for name in ("segmentation", "map_collisions", "type_view", "action_mask", "replan"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"env.{name} must be true or false, got {getattr(self, name)!r}")
        m = self.semantic_map
        if isinstance(m, bool) or not isinstance(m, int) or m < 0 or (m and m % 2 == 0):
            raise ValueError(f"env.semantic_map must be 0 (no map) or an odd number of cells across, got {m!r}")


def load_episodes(config: AlfredEnvConfig) -> list[dict[str, Any]]:
    if config.data_dir is None:  # episodes whose scene holds no task the expert finishes are left out
        return [make_episode(config.split, k) or {} for k in range(config.num_episodes or 8)]
    folder = Path(config.data_dir) / config.split
    files = sorted(folder.glob("*/traj_data.json"))
    if not files:
        raise ValueError(f"no episodes in {folder}: write them with `vlarena data alfred --out {config.data_dir} "
                         f"--split {config.split}`")
    return [read_traj(f) for f in files[:config.num_episodes]]


class AlfredVectorEnv(EpisodicVectorEnv):
    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": ["rgb_array"]}
    action_meanings = ", ".join(f"{i} {a}" for i, a in enumerate(ACTIONS))

    def __init__(self, num_envs: int = 4, config: AlfredEnvConfig | None = None, **overrides: Any):
        config = config or AlfredEnvConfig(**overrides)
        self.config, self.num_envs = config, num_envs
        self.device = torch.device(config.device)
        self.camera = Camera(config.width, config.height, config.hfov_deg)
        self.episodes = [e for e in load_episodes(config) if e]
        self.episode_ids = [e["task_id"] for e in self.episodes]
        self.specs = [validate_traj(e) for e in self.episodes]
        self.num_slots = max(len(e["scene"]["objects"]) for e in self.episodes)
        self.single_observation_space = gym.spaces.Dict({
            "rgb": gym.spaces.Box(0, 255, (config.height, config.width, 3), np.uint8),
            "depth": gym.spaces.Box(0.0, 10.0, (config.height, config.width, 1), np.float32),
            "instruction": gym.spaces.Text(INSTRUCTION_MAX_LENGTH, min_length=1, charset=INSTRUCTION_CHARSET),
            "pose": gym.spaces.Box(-100.0, 100.0, (5,), np.float32),
            "progress": gym.spaces.Box(0.0, 1.0, (PROGRESS_SLOTS,), np.float32),
            "last_action": gym.spaces.Box(0.0, 1.0, (len(ACTIONS),), np.float32),
            "last_action_failed": gym.spaces.Box(0.0, 1.0, (1,), np.float32),
            **({"semantic_map": gym.spaces.Box(0, 1, (config.semantic_map, config.semantic_map, MAP_CHANNELS),
                                               np.uint8)} if config.semantic_map else {}),
            **({"segmentation": gym.spaces.Box(0, 32767, (config.height, config.width, 2), np.int16)}
               if config.segmentation else {}),
            **({"type_view": gym.spaces.Box(0.0, 1.0, (NUM_TYPES, GRID * GRID + len(INTERACTIONS)), np.float32)}
               if config.type_view else {}),
            **({"action_mask": gym.spaces.Box(0, 1, (len(ACTIONS),), np.int8)} if config.action_mask else {})})
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.single_action_space = gym.spaces.Discrete(len(ACTIONS))
        self.action_space = gym.spaces.MultiDiscrete(np.full(num_envs, len(ACTIONS)))
        self._rng = torch.Generator().manual_seed(config.seed)
        self._moves = torch.tensor(STEP, device=self.device)  # (di, dj) of MoveAhead per heading
        self._horizons = torch.tensor(HORIZONS, device=self.device)
        self._scenes: dict[tuple[int, str], tuple[Any, torch.Tensor, torch.Tensor]] = {}  # (home, free, blocked)
        self._experts: dict[int, PlanExpert] = {}  # each episode's expert of its recorded plan
        self._plan: list[PlanExpert | None] = [None] * num_envs  # each env's expert now (its episode's, or a repaired plan's)
        b, dev = num_envs, self.device
        self.ep = torch.zeros(b, dtype=torch.long, device=dev)
        self.pose = torch.zeros(b, 4, dtype=torch.long, device=dev)  # i, j, k, h
        self.start_pose = torch.zeros(b, 4, dtype=torch.long, device=dev)
        self.steps = torch.zeros(b, dtype=torch.long, device=dev)
        self.failures = torch.zeros(b, dtype=torch.long, device=dev)
        self.interactions = torch.zeros(b, dtype=torch.long, device=dev)  # interactions that worked, this episode
        self.plan_step = torch.zeros(b, dtype=torch.long, device=dev)  # the plan's interactions done, in order
        self.on_plan = torch.ones(b, dtype=torch.bool, device=dev)  # no other interaction changed the world
        self.satisfied = torch.zeros(b, dtype=torch.long, device=dev)
        self.last_action = torch.full((b,), -1, dtype=torch.long, device=dev)  # -1: none yet this episode
        self.last_failed = torch.zeros(b, dtype=torch.bool, device=dev)
        self.failed_since = torch.zeros(b, len(ACTIONS), dtype=torch.bool, device=dev)  # since the last that worked
        self._pending_reset = torch.zeros(b, dtype=torch.bool, device=dev)
        self.world: HouseholdWorld | None = None
        self.semantic_map = SemanticMap(b, 1, 1, self.camera, dev) if config.semantic_map else None
        self._instructions: tuple[str, ...] = ()

    # ---- episodes ------------------------------------------------------------------------------
    def _household(self, e: int) -> Any:
        """Episode e's household; homes and their motion tables are built once per scene, experts per episode."""
        home, free, blocked = self._scene(e)
        if e not in self._experts:
            self._experts[e] = PlanExpert(home, self.episodes[e]["plan"]["low_actions"], self.camera, free, blocked,
                                          start=self._start_pose(e), goals=TaskGoals.from_specs([self.specs[e]]))
        return home

    def _start_pose(self, e: int) -> tuple[int, int, int, int]:
        init = self.episodes[e]["scene"]["init_action"]
        return init["cell"][0], init["cell"][1], init["rotation"] // 90, HORIZONS.index(init["horizon"])

    def _scene(self, e: int) -> tuple[Any, torch.Tensor, torch.Tensor]:
        """(home, free, blocked) of episode e's scene, built the first time one of its episodes starts."""
        scene = self.episodes[e]["scene"]
        key = (scene["scene_num"], scene["room_type"])
        if key not in self._scenes:
            home = generate_household(scene["scene_num"], room_type=scene["room_type"])
            self._scenes[key] = (home, *blocked_table(SceneTensors.from_scenes([home.scene]), 0,
                                                      MotionConfig(turn_deg=90.0)))
        return self._scenes[key]

    def _blocked(self, e: int) -> torch.Tensor:
        return self._scene(e)[2]

    def _start(self, rows: torch.Tensor, ep: torch.Tensor) -> None:
        self.ep = torch.where(rows, ep, self.ep)
        eps = self.ep.tolist()
        homes = [self._household(e) for e in eps]
        old = self.world
        self.world = HouseholdWorld.from_types([[t for t, _ in h.slots()] for h in homes],
                                               [[p for _, p in h.slots()] for h in homes], self.device, self.num_slots)
        if old is not None:  # envs that go on keep their state
            for name, value in old.__dict__.items():
                getattr(self.world, name)[~rows] = value[~rows]
        self.look = HouseholdLook.build(homes, self.device, self.num_slots)
        self.renderer = Renderer(self.look.scene_tensors, RenderConfig(width=self.config.width,
                                 height=self.camera.render_height, hfov_deg=self.config.hfov_deg))
        self.look.update(self.world)  # the envs that go on are drawn as they are, not as they started
        self.renderer.refresh_objects()
        r = max(self._blocked(e).shape[0] for e in eps)
        c = max(self._blocked(e).shape[1] for e in eps)
        self.blocked = torch.ones(self.num_envs, r, c, 4, dtype=torch.bool)
        for i, e in enumerate(eps):
            t = self._blocked(e)
            self.blocked[i, :t.shape[0], :t.shape[1]] = t
        self.blocked = self.blocked.to(self.device)
        if self.semantic_map is not None:
            self.semantic_map.resize(r, c)
            self.semantic_map.reset(rows)
        self.goals = TaskGoals.from_specs([self.specs[e] for e in eps], self.device)
        start = torch.tensor([self._start_pose(e) for e in eps], dtype=torch.long, device=self.device)
        self.pose = torch.where(rows[:, None], start, self.pose)
        self.start_pose = torch.where(rows[:, None], start, self.start_pose)
        zero = torch.zeros_like(self.steps)
        self.steps, self.failures, self.plan_step, self.interactions = (
            torch.where(rows, zero, x) for x in (self.steps, self.failures, self.plan_step, self.interactions))
        self.on_plan = self.on_plan | rows
        self._plan = [self._experts[e] if new else plan
                      for e, new, plan in zip(eps, rows.tolist(), self._plan, strict=True)]
        self.last_action = torch.where(rows, -1, self.last_action)
        self.last_failed = self.last_failed & ~rows
        self.failed_since = self.failed_since & ~rows[:, None]
        self.satisfied = torch.where(rows, goal_conditions(self.world, self.goals)[0], self.satisfied)
        self._instructions = tuple(self._instruction(e) for e in eps)

    def _instruction(self, e: int) -> str:
        ann = self.episodes[e]["turk_annotations"]["anns"][e % len(self.episodes[e]["turk_annotations"]["anns"])]
        return " ".join([ann["task_desc"], *ann["high_descs"]])

    # ---- stepping ------------------------------------------------------------------------------
    def step(self, actions: Any):
        a = self._check_actions(actions)
        active = ~self._pending_reset
        if not bool(active.all()):
            self._start(~active, self._sample_episodes())
        i, j, k, h = self.pose.unbind(1)
        rows = torch.arange(self.num_envs, device=self.device)
        blocked = self.blocked[rows, i.clamp(0, self.blocked.shape[1] - 1), j.clamp(0, self.blocked.shape[2] - 1), k]
        move = (a == 1) & ~blocked
        step = self._moves[k]
        if self.semantic_map is not None and self.config.map_collisions:
            self.semantic_map.mark_wall(active & (a == 1) & blocked, i + step[:, 0], j + step[:, 1])
        i, j = i + step[:, 0] * move, j + step[:, 1] * move
        k = (k + (a == 2).long() - (a == 3).long()) % 4
        look_ok = ((a == 4) & (h > 0)) | ((a == 5) & (h < len(HORIZONS) - 1))
        h = h - ((a == 4) & look_ok).long() + ((a == 5) & look_ok).long()
        inter = a >= FIRST_INTERACTION
        ok = torch.zeros_like(inter)
        if bool((inter & active).any()):
            frame = self.renderer.render(rows, self._render_pose(), outputs=("depth", "instance"))
            act = (a - FIRST_INTERACTION).clamp(min=0)
            target = self.look.target(frame["instance"], frame["depth"], self.camera.centre_row(self.pose[:, 3]),
                                      self.world.allowed(act))
            ok = self.world.interact(act, torch.where(inter & active, target, torch.full_like(target, -1)))
            self._follow_plan(inter & active & ok, act, target)
        failed = active & (((a == 1) & blocked) | (((a == 4) | (a == 5)) & ~look_ok) | (inter & ~ok))
        self.pose = torch.where(active[:, None], torch.stack([i, j, k, h], 1), self.pose)
        self.steps += active.long()
        self.failures += failed.long()
        self.interactions += (inter & active & ok).long()
        self.last_action = torch.where(active, a.long(), self.last_action)
        self.last_failed = torch.where(active, failed, self.last_failed)
        tried = torch.nn.functional.one_hot(a.long(), len(ACTIONS)).bool()
        self.failed_since = torch.where((active & failed)[:, None], self.failed_since | tried,
                                        self.failed_since & ~active[:, None])
        satisfied, total = goal_conditions(self.world, self.goals)
        stop = active & (a == 0)
        success_now = satisfied == total
        reward = (self.config.goal_reward * (satisfied - self.satisfied) + self.config.success_reward * (stop &
                  success_now) - self.config.step_penalty - self.config.failure_penalty * failed)
        reward = torch.where(active, reward.float(), torch.zeros_like(reward, dtype=torch.float32))
        self.satisfied = satisfied
        terminated = stop
        truncated = active & ~stop & ((self.steps >= self.config.max_steps) |
                                      (self.failures >= self.config.max_failures))
        done = terminated | truncated
        info = self._info(done, success=done & success_now, failed=failed)
        self._pending_reset = done
        return self._observe(), reward, terminated, truncated, info

    def _render_pose(self) -> torch.Tensor:
        i, j, k, _ = self.pose.unbind(1)
        return pose_tensor(i, j, k, self.look.scene_tensors.cell_size)

    def _follow_plan(self, changed: torch.Tensor, act: torch.Tensor, target: torch.Tensor) -> None:
        """After interactions that changed the world: the plan's next one advances it; any other leaves it, or
        with `replan` continues a repaired plan where one reaches the goal."""
        for b in torch.nonzero(changed).flatten().tolist():
            expert, k, a, obj = self._plan[b], int(self.plan_step[b]), int(act[b]), int(target[b])
            if not self.on_plan[b]:
                continue
            expected = expert.expects(k, a, obj)
            steps = None if expected or not self.config.replan else expert.replan(k, a, obj)
            if steps is not None:  # this env's episode goes on with the repaired plan's expert (its own fields)
                self._plan[b] = expert.repaired(steps)
            on = expected or steps is not None
            self.plan_step[b] += int(on)
            self.on_plan[b] = on

    def _expert(self) -> torch.Tensor:
        out = [plan.action(tuple(pose), k) if on else -1 for plan, pose, k, on in
               zip(self._plan, self.pose.tolist(), self.plan_step.tolist(), self.on_plan.tolist(), strict=True)]
        out = torch.tensor(out, dtype=torch.long, device=self.device)
        first = (self.steps < self.config.look_around) & self.on_plan & (self.plan_step == 0)
        return torch.where(first, torch.full_like(out, ACTIONS.index("RotateLeft")), out)

    def _target_type(self) -> torch.Tensor:
        """(B,) the object type of the plan's next interaction's object (-1 off the plan or after its end)."""
        slots = [steps[k][1] if on and k < len(steps) else -1 for steps, k, on in
                 zip((plan.steps for plan in self._plan), self.plan_step.tolist(),
                     self.on_plan.tolist(), strict=True)]
        return self._types(torch.tensor(slots, dtype=torch.long, device=self.device)[:, None])[:, 0]

    def _observe(self) -> dict[str, Any]:
        self.look.update(self.world)
        self.renderer.refresh_objects()
        pose = self._render_pose()
        ids = ("semantic", "instance") if (self.semantic_map is not None or self.config.segmentation
                                           or self.config.type_view) else ()
        frame = self.renderer.render(torch.arange(self.num_envs, device=self.device), pose,
                                     outputs=("rgb", "depth", *ids))
        top = self.camera.centre_row(self.pose[:, 3]) - self.config.height // 2
        rows = top[:, None] + torch.arange(self.config.height, device=self.device)
        idx = torch.arange(self.num_envs, device=self.device)[:, None]
        view = {key: value[idx, rows] for key, value in frame.items()}
        progress = torch.nn.functional.one_hot(self.interactions.clamp(max=PROGRESS_SLOTS - 1), PROGRESS_SLOTS)
        obs = {"rgb": view["rgb"], "depth": view["depth"], "instruction": self._instructions,
               "pose": self._relative_pose(), "progress": progress.float(),
               "last_action": torch.nn.functional.one_hot(self.last_action + 1, len(ACTIONS) + 1)[:, 1:].float(),
               "last_action_failed": self.last_failed[:, None].float()}
        if self.config.segmentation:
            obs["segmentation"] = self._segmentation(view["instance"])
        if self.config.type_view:
            obs["type_view"] = self._type_view(view["instance"], frame)
        if self.config.action_mask:
            obs["action_mask"] = (~self.failed_since).to(torch.int8)
        if self.semantic_map is not None:
            self.semantic_map.update(pose, view["depth"], view["semantic"], view["instance"], self.world.otype,
                                     self.look.scene_tensors.cell_size, self.renderer.config.max_depth)
            i, j, k, _ = self.pose.unbind(1)
            obs["semantic_map"] = self.semantic_map.egocentric(i, j, k, self.config.semantic_map)
        return obs

    def _type_view(self, instance: torch.Tensor, frame: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, NUM_TYPES, 9 + 7) household.type_view of the view, with the target each interaction would act on
        (the rule `step` applies, on the same frame)."""
        row = self.camera.centre_row(self.pose[:, 3])
        slot = torch.stack([self.look.target(frame["instance"], frame["depth"], row, allowed)
                            for allowed in self.world.affordances()], 1)  # (B, A)
        return type_view(self._types(instance.long()), self._types(slot), NUM_TYPES, WINDOW)

    def _types(self, slot: torch.Tensor) -> torch.Tensor:
        """The object type (objects.TYPE_INDEX) of world slots (B, ...) int64, -1 for no object."""
        n = self.world.otype.shape[1]
        real = (slot >= 0) & (slot < n)
        types = torch.gather(self.world.otype, 1, slot.clamp(0, n - 1).flatten(1)).reshape_as(slot).long()
        return torch.where(real & (types >= 0), types, -1)

    def _segmentation(self, instance: torch.Tensor) -> torch.Tensor:
        """(B, H, W, 2) int16: each pixel's object type + 1 and world slot + 1 (0: floor, wall or nothing)."""
        slot = instance.long()
        types = self._types(slot)
        return torch.stack([types + 1, torch.where(types >= 0, slot + 1, 0)], -1).to(torch.int16)

    def _relative_pose(self) -> torch.Tensor:
        """(B, 5): metres ahead and left of the start in its frame, sin/cos of the turn since it, horizon / 60."""
        d = (self.pose[:, :2] - self.start_pose[:, :2]).float() * self.look.scene_tensors.cell_size
        k0 = self.start_pose[:, 2]
        ahead = (d * self._moves[k0].float()).sum(1)
        left = (d * self._moves[(k0 + 1) % 4].float()).sum(1)
        turn = (self.pose[:, 2] - k0).remainder(4).float() * (math.pi / 2)
        horizon = self._horizons[self.pose[:, 3]] / 60.0
        return torch.stack([ahead, left, turn.sin(), turn.cos(), horizon], 1)

    def render(self) -> tuple[np.ndarray, ...]:
        return tuple(self._observe()["rgb"].cpu().numpy())

    def _reset_info(self) -> dict[str, Any]:
        return self._info(torch.zeros_like(self._pending_reset))

    def _info(self, done: torch.Tensor, success: torch.Tensor | None = None,
              failed: torch.Tensor | None = None) -> dict[str, Any]:
        zeros = torch.zeros_like(done)
        satisfied, total = goal_conditions(self.world, self.goals)
        expert = self._expert()
        return {"success": zeros if success is None else success, "failed_action": zeros if failed is None else failed,
                "goal_conditions": satisfied, "total_goal_conditions": total, "failures": self.failures.clone(),
                "elapsed_steps": self.steps.clone(), "episode_index": self.ep.clone(), "done": done,
                "expert_action": expert, "expert_valid": expert >= 0, "expert_target_type": self._target_type()}
