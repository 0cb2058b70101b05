"""Adapters that present third-party gymnasium envs in the vlarena observation contract.

- `InstructionEnvAdapter`: any env whose observations hold an image and an instruction string.
- `make_babyai`: BabyAI (MiniGrid) with `BabyAIBot` as `info["expert_action"]` (needs `vlarena[babyai]`;
  registered as `vlarena/BabyAI-GoToLocal-v0` and `vlarena/BabyAI-v0`, minigrid imported only on make).
- `InstructionTokens` / `VectorInstructionTokens`: instruction text -> token ids + mask (for SB3).
"""

from vlarena.envs.adapters.babyai import BabyAIBotExpert, make_babyai, make_babyai_gotolocal
from vlarena.envs.adapters.instruction_env import (
    Expert,
    FunctionExpert,
    InstructionEnvAdapter,
    ObservationKeyError,
    resize_image,
    sanitize_instruction,
    success_on_positive_reward,
)
from vlarena.envs.adapters.tokens import InstructionEncoder, InstructionTokens, VectorInstructionTokens

__all__ = [
    "BabyAIBotExpert",
    "Expert",
    "FunctionExpert",
    "InstructionEncoder",
    "InstructionEnvAdapter",
    "InstructionTokens",
    "ObservationKeyError",
    "VectorInstructionTokens",
    "make_babyai",
    "make_babyai_gotolocal",
    "resize_image",
    "sanitize_instruction",
    "success_on_positive_reward",
]
