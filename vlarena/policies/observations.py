"""What a VLA policy reads from an observation dict, and the checks with errors that name the key.

Observation (a dict of torch tensors, batch B first):
- `rgb`: uint8 (B, H, W, 3), any H, W of the aspect ratio of `vision.image_size` (resized to it; a
  panorama strip (H, K * W) needs a non-square `image_size` [h, w]);
- `depth`: float32 (B, H, W, 1), metres; required when `vision.use_depth`;
- the instruction, either `instruction`: B python strings (as the native vector env gives), or
  `instruction_ids`: int64 (B, L) + `instruction_mask`: (B, L) bool/int, 1 on real tokens (as SB3 and
  other array-only consumers give; ids from `VLAPolicy.tokenize`);
- optional `vision_tokens`: float (B, N, width), the output of `VLAPolicy.encode_vision`; when
  present, rgb/depth are not read (the feature cache of a frozen encoder);
- `candidates` float (B, C, F) + `candidate_mask` (B, C): required when the observation space has
  them (the candidate-action contract, candidates.py);
- `action_mask` (B, n): required when the observation space has it (action_mask.py).
Other keys are ignored. For `evaluate_actions`, tensors may be (T, B, ...) or (T * B, ...) (time
major: row t * B + b) and the instruction strings T lists of B or one flat list of T * B.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from vlarena.policies.config import VisionConfig
from vlarena.policies.vision import check_frame_size

# the dims of one step's tensor of each key (batch included); (T, B, ...) has one more
TENSOR_DIMS = {"rgb": 4, "depth": 4, "vision_tokens": 3, "instruction_ids": 2, "instruction_mask": 2,
               "candidates": 3, "candidate_mask": 2, "action_mask": 2}


def check_observation_space(space: gym.Space, vision: VisionConfig) -> None:
    """The observation space must hold rgb (of the aspect ratio of vision.image_size), (depth,) and an
    instruction as text or token ids."""
    use_depth = vision.use_depth
    if not isinstance(space, gym.spaces.Dict):
        raise ValueError(f"observation_space must be a gymnasium.spaces.Dict with keys 'rgb' and 'instruction' "
                         f"(or 'instruction_ids' + 'instruction_mask'), got {space}")
    rgb = space.spaces.get("rgb")
    if not isinstance(rgb, gym.spaces.Box) or len(rgb.shape) != 3 or rgb.shape[-1] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"observation_space['rgb'] must be a uint8 Box of shape (H, W, 3), got {rgb} "
                         f"(keys: {sorted(space.spaces)})")
    check_frame_size(rgb.shape[:2], vision, f"observation_space['rgb'] {rgb.shape}")
    if use_depth:
        depth = space.spaces.get("depth")
        if not isinstance(depth, gym.spaces.Box) or depth.shape != (*rgb.shape[:2], 1):
            raise ValueError(f"observation_space['depth'] must be a Box of shape {(*rgb.shape[:2], 1)} because "
                             f"vision.use_depth is True, got {depth}")
    has_text = "instruction" in space.spaces
    has_ids = "instruction_ids" in space.spaces and "instruction_mask" in space.spaces
    if not (has_text or has_ids):
        raise ValueError(f"observation_space has no instruction: accepted are 'instruction' (Text) or "
                         f"'instruction_ids' + 'instruction_mask' (Box), got keys {sorted(space.spaces)}")


def check_state_space(space: gym.Space, keys: Sequence[str], what: str = "policy.state_keys") -> int:
    """The summed size of the `state_keys` (each a 1-D float Box of the observation space); errors name `what`."""
    size = 0
    for key in keys:
        sub = getattr(space, "spaces", {}).get(key)
        if not isinstance(sub, gym.spaces.Box) or len(sub.shape) != 1 or not np.issubdtype(sub.dtype, np.floating):
            raise ValueError(f"{what} names {key!r}, which must be a 1-D float Box of the observation "
                             f"space; got {sub} (keys: {sorted(getattr(space, 'spaces', {}))})")
        size += sub.shape[0]
    return size


def state_input(obs: Mapping[str, Any], keys: Sequence[str], size: int, what: str = "a policy.state_keys entry") -> torch.Tensor:
    """The state keys of an observation concatenated, float (N, size); errors name a missing or bad key."""
    parts = []
    for key in keys:
        value = obs.get(key)
        if not isinstance(value, torch.Tensor) or value.dim() != 2:
            raise ValueError(f"observation {key!r} ({what}) must be a float tensor (B, D), got "
                             f"{tuple(getattr(value, 'shape', ())) or type(value).__name__}; keys {sorted(obs)}")
        parts.append(value.float())
    out = torch.cat(parts, dim=1)
    if out.shape[1] != size:
        raise ValueError(f"the state keys {list(keys)} hold {out.shape[1]} values per row, the policy was built "
                         f"for {size}")
    return out


def check_obs(obs: Mapping[str, Any], use_depth: bool) -> None:
    if not isinstance(obs, Mapping):
        raise ValueError(f"obs must be a dict of tensors, got {type(obs).__name__}")
    if "vision_tokens" not in obs:
        if "rgb" not in obs:
            raise ValueError(f"observation key 'rgb' is missing (uint8 (B, H, W, 3)); got keys {sorted(obs)}")
        if use_depth and "depth" not in obs:
            raise ValueError(f"observation key 'depth' is missing (float32 (B, H, W, 1), metres; "
                             f"vision.use_depth=True); got keys {sorted(obs)}")
    if "instruction" in obs:
        text = obs["instruction"]
        if isinstance(text, str) or not isinstance(text, Sequence) or not all(isinstance(t, str) for t in text):
            raise ValueError(f"observation 'instruction' must be a tuple/list of B strings, got {type(text).__name__}")
    elif "instruction_ids" in obs:
        ids, mask = obs["instruction_ids"], obs.get("instruction_mask")
        if not isinstance(ids, torch.Tensor) or ids.dim() != 2 or ids.is_floating_point():
            raise ValueError(f"observation 'instruction_ids' must be an int64 tensor (B, L), got "
                             f"{getattr(ids, 'dtype', type(ids).__name__)} {tuple(getattr(ids, 'shape', ()))}")
        if not isinstance(mask, torch.Tensor) or mask.shape != ids.shape:
            raise ValueError(f"observation 'instruction_mask' must be a tensor of the shape of 'instruction_ids' "
                             f"{tuple(ids.shape)}, got {None if mask is None else tuple(mask.shape)}")
    else:
        raise ValueError(f"observation has no instruction: give 'instruction' (B strings) or 'instruction_ids' + "
                         f"'instruction_mask'; got keys {sorted(obs)}")


def flatten_time(obs: Mapping[str, Any], t: int, b: int, state_keys: Sequence[str] = (),
                 map_keys: Sequence[str] = (), view_keys: Sequence[str] = ()) -> dict[str, Any]:
    """(T, B, ...) tensors and nested instruction lists -> (T * B, ...) / flat lists; others as they are."""
    out: dict[str, Any] = {}
    dims = {**TENSOR_DIMS, **{k: 2 for k in state_keys}, **{k: 4 for k in map_keys}, **{k: 3 for k in view_keys}}
    for key, value in obs.items():
        if isinstance(value, torch.Tensor) and key in dims and value.dim() == dims[key] + 1:
            if tuple(value.shape[:2]) != (t, b):
                raise ValueError(f"observation {key!r} has shape {tuple(value.shape)}: expected leading dims (T, B) = "
                                 f"{(t, b)} (from masks) or a flat T * B = {t * b}")
            value = value.reshape(t * b, *value.shape[2:])
        elif key == "instruction" and len(value) and not isinstance(value[0], str):
            value = [s for row in value for s in row]
        n = value.shape[0] if isinstance(value, torch.Tensor) else len(value) if key == "instruction" else None
        if key in (*dims, "instruction") and n != t * b:
            raise ValueError(f"observation {key!r} holds {n} rows: expected T * B = {t * b} (masks are {(t, b)})")
        out[key] = value
    return out
