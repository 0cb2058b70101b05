"""Auxiliary losses added to PPO's (`agent.aux: none | cpca | mae`, weight `agent.aux_coef`).

- cpca: CPC|A-k (perception/cpca.py): from the policy's belief (the GRU output) at t, roll a small GRU
  over the actions taken and pick out the pooled ViT embedding of frame t + j (j = 1..aux_steps) among
  every frame of the minibatch. Shapes the belief and the ViT; needs Discrete actions.
- mae: masked autoencoding (75% of the patches) of the minibatch's frames through the policy's ViT, with
  its own small decoder (agents/pretrain_objectives.MAEObjective).

The auxiliary module's weights train with the policy's optimizer and are saved in the checkpoint's
`extra["aux"]`, so a resumed run continues them. A frozen ViT (`policy.freeze_vision`) is refused:
the auxiliary loss would have nothing to shape but the CPC|A head.
"""

from __future__ import annotations

import gymnasium as gym
import torch
from torch import nn

from vlarena.agents.pretrain_objectives import mae_decoder, masked_autoencoding
from vlarena.agents.rollout import Minibatch
from vlarena.perception.cpca import CPCA

AUX_KINDS = ("none", "cpca", "mae")


class CPCAAux(nn.Module):
    needs_features = True

    def __init__(self, policy: nn.Module, steps: int):
        super().__init__()
        space = policy.action_space
        if not isinstance(space, gym.spaces.Discrete):
            raise ValueError(f"agent.aux=cpca needs a Discrete action space (it embeds the actions taken), got {space}")
        if getattr(policy, "candidate_spec", None) is not None:
            raise ValueError("agent.aux=cpca needs actions that mean the same move at every step; candidate actions "
                             "(R2R-v0's: action c is whichever neighbour is listed c-th) do not: use agent.aux=mae")
        self.cpca = CPCA(policy.memory.out_dim, policy.vision.out_dim, int(space.n), steps)

    def forward(self, mb: Minibatch, features: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.cpca(features["belief"].float(), features["vision"].float(), mb.actions, mb.masks, mb.valid)


class MAEAux(nn.Module):
    needs_features = False

    def __init__(self, policy: nn.Module, mask_ratio: float = 0.75):
        super().__init__()
        self._vision = [policy.vision]  # a list, not a submodule: the ViT's weights belong to the policy
        self.mask_ratio = mask_ratio
        self.decoder = mae_decoder(policy.vision, 64, 1)

    def forward(self, mb: Minibatch, features: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        vision = self._vision[0]
        rgb = mb.obs["rgb"]
        depth = mb.obs.get("depth") if vision.config.use_depth else None
        pixels = vision.preprocess(rgb.reshape(-1, *rgb.shape[2:]),
                                   None if depth is None else depth.reshape(-1, *depth.shape[2:]))
        return masked_autoencoding(vision, self.decoder, pixels[mb.valid.reshape(-1).bool()], self.mask_ratio)


def build_aux(kind: str, policy: nn.Module, steps: int = 4) -> nn.Module | None:
    if kind not in AUX_KINDS:
        raise ValueError(f"agent.aux must be one of {list(AUX_KINDS)}, got {kind!r}")
    if kind == "none":
        return None
    if not all(hasattr(policy, name) for name in ("vision", "memory", "action_space")):
        raise ValueError(f"agent.aux={kind} needs a VLAPolicy (its ViT and recurrent memory), got {type(policy).__name__}")
    if getattr(getattr(policy, "config", None), "freeze_vision", False):
        raise ValueError(f"agent.aux={kind} needs a trainable ViT: policy.freeze_vision is true")
    return CPCAAux(policy, steps) if kind == "cpca" else MAEAux(policy)
