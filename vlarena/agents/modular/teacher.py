"""The modular agent as the imitation teacher of `vlarena/ALFRED-v0` (`agent.teacher=modular`).

    env = ModularTeacher(gym.make_vec("vlarena/ALFRED-v0", num_envs=16, segmentation=True, semantic_map=31))
    obs, info = env.reset()          # info["expert_action"]: the modular agent's action (the true tasks, parsed)

The env's own expert (household.recover.PlanExpert) knows the whole scene: it walks straight to the closed
fridge that holds the apple, which nothing a policy sees can tell it. The modular agent decides from what its
frames have shown (the map, the view), so what it does can be learnt from the policy's inputs: it explores,
looks over the surfaces and opens what can be opened until it finds what the task needs. This wrapper runs it
on every step and writes its action into `info["expert_action"]` (always labelled) and the object type it heads
for into `info["expert_target_type"]` (-1: exploring, or several types). It reads the true task (the agent's
ground-truth-language setting), a `semantic_map` of `MIN_MAP` cells across that it crops itself from the env's
map, and the `segmentation` observation, which it takes out of what the policy sees.

The executors learn from the actions that ran (`ModularAgent.executed`), so a DAgger student may drive the
moves; run the interactions as the teacher decides (`agent.expert_decides=[6,...,12]`), since an interaction it
did not choose changes the world in a way its task steps do not follow.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import torch

from vlarena.agents.modular.agent import MIN_MAP, ModularAgent, true_parser


class ModularTeacher(gym.vector.VectorWrapper):
    def __init__(self, env: Any):
        super().__init__(env)
        base = env.unwrapped
        if getattr(base, "semantic_map", None) is None or "segmentation" not in env.single_observation_space.spaces:
            raise ValueError("agent.teacher=modular needs vlarena/ALFRED-v0 made with semantic_map > 0 and "
                             "segmentation=true (env.kwargs.semantic_map, env.kwargs.segmentation)")
        self.base, self.device = base, base.device
        self.teacher = ModularAgent(true_parser(base))
        spaces = {k: v for k, v in env.single_observation_space.spaces.items() if k != "segmentation"}
        self.single_observation_space = gym.spaces.Dict(spaces)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, self.num_envs)

    def reset(self, *, seed: Any = None, options: dict | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        return self._label(obs, info)

    def step(self, actions: Any) -> tuple[dict[str, Any], Any, Any, Any, dict[str, Any]]:
        self.teacher.executed(torch.as_tensor(actions).cpu())
        obs, reward, terminated, truncated, info = self.env.step(actions)
        obs, info = self._label(obs, info)
        return obs, reward, terminated, truncated, info

    def _label(self, obs: dict[str, Any], info: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        i, j, k, _ = self.base.pose.unbind(1)
        seen = {**obs, "semantic_map": self.base.semantic_map.egocentric(i, j, k, MIN_MAP)}
        action = self.teacher.act(seen, info).to(info["expert_action"].device)
        info = {**info, "expert_action": action, "expert_valid": torch.ones_like(action, dtype=torch.bool),
                "expert_target_type": self.teacher.headings().to(action.device)}
        return {k: v for k, v in obs.items() if k != "segmentation"}, info
