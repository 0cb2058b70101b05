"""VLA policies: ViT + language backbone + fusion + memory + action/value heads (see policy.py).

    from vlarena.policies import PolicyConfig, VLAPolicy
    policy = VLAPolicy(PolicyConfig.preset("cpu"), env.single_observation_space, env.single_action_space)

The SB3 integration (features extractor, VecEnv adapter) is in `vlarena.policies.sb3`, imported
on demand so that this package does not import stable-baselines3.
"""

from vlarena.policies.checkpoint import CheckpointMismatchError
from vlarena.policies.config import (
    CandidateConfig,
    FusionConfig,
    LanguageConfig,
    MemoryConfig,
    PolicyConfig,
    VisionConfig,
)
from vlarena.policies.heads import (
    ActionHead,
    CategoricalHead,
    DiagGaussianHead,
    MultiCategoricalHead,
    ValueHead,
    build_action_head,
)
from vlarena.policies.language import InstructionTokenizer, LanguageEncoder, resolve_backbone
from vlarena.policies.policy import VLAPolicy
from vlarena.policies.vision import VisionEncoder, load_vision_weights, save_vision_weights

__all__ = [
    "ActionHead", "CandidateConfig", "CategoricalHead", "CheckpointMismatchError", "DiagGaussianHead", "FusionConfig",
    "InstructionTokenizer", "LanguageConfig", "LanguageEncoder", "MemoryConfig", "MultiCategoricalHead",
    "PolicyConfig", "VLAPolicy", "ValueHead", "VisionConfig", "VisionEncoder", "build_action_head",
    "load_vision_weights", "resolve_backbone", "save_vision_weights",
]
