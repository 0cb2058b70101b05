"""A trained policy as an `act(obs, info) -> actions` agent, the interface of evaluate.py and fixed.py.

    agent = PolicyAgent(VLAPolicy.from_pretrained("runs/bc/checkpoints/step_200000"), deterministic=True)
    summary = evaluate(env, agent.act, out_dir="runs/bc/eval_val_unseen")

The agent keeps the recurrent state between calls. Episode starts are read from the env's info:
`info["elapsed_steps"] == 0` marks the first observation of an episode (after `reset()`, including
the explicit `reset(options={"episode_id": ...})` evaluation does per batch, and after a NEXT_STEP
autoreset), where the state is zeroed (mask 0). Without `elapsed_steps` in the info, only a change of
batch size resets the state; call `reset()` before each new batch of episodes then.
"""

from __future__ import annotations

from typing import Any

import torch


class PolicyAgent:
    def __init__(self, policy: Any, deterministic: bool = True):
        self.policy = policy.eval()
        self.deterministic = deterministic
        self.state: torch.Tensor | None = None

    def reset(self) -> None:
        self.state = None

    @torch.no_grad()
    def act(self, obs: dict[str, Any], info: dict[str, Any]) -> torch.Tensor:
        rgb = obs["rgb"] if "rgb" in obs else obs["vision_tokens"]
        b = rgb.shape[0]
        if self.state is None or self.state.shape[0] != b:
            self.state = self.policy.initial_state(b)
        steps = info.get("elapsed_steps")
        masks = None if steps is None else (torch.as_tensor(steps, device=self.policy.device) != 0).float()
        action, _, _, self.state = self.policy.act(obs, self.state, deterministic=self.deterministic, masks=masks)
        device = rgb.device if isinstance(rgb, torch.Tensor) else self.policy.device
        return action.to(device)
