"""Present any gymnasium env with an image and an instruction as a vlarena env.

`InstructionEnvAdapter` reads the image (and optional depth) and the instruction string from the
wrapped env's observation under configurable keys and returns the vlarena observation contract
(DESIGN.md §3):

- `rgb`: (H, W, 3) uint8. Source images may be (H, W), (H, W, 1|3|4) or channels-first
  (`channels="chw"`); grey images are repeated to 3 channels, alpha is dropped, `channel_order="bgr"`
  flips BGR to RGB. Float images are accepted only when their space bounds lie in [0, 1] (scaled by
  255 and rounded). `size=(H, W)` resamples with "area" (box average; the default) or "nearest".
  `image_key="render"` takes the image from `env.render()` (the env needs `render_mode="rgb_array"`
  and `size` must be given, since no space describes the rendered frame).
- `depth` (optional, `depth_key`): (H, W, 1) float32, resampled by nearest neighbour.
- `instruction`: `Text(max_length=INSTRUCTION_MAX_LENGTH, min_length=0, charset=INSTRUCTION_CHARSET)`.
  The string comes from `instruction_key` or is the fixed `instruction=` text. Characters outside
  the charset follow one documented rule (`sanitize_instruction`): accents are stripped (NFKD),
  whitespace becomes a space, a letter whose other case is in the charset takes that case, anything
  else becomes `replacement` (a space); strings longer than the maximum are cut. Each kind of change
  warns once per adapter. `on_invalid="error"` raises instead.
- `extra_keys` are passed through unchanged (e.g. MiniGrid's `direction`).

Actions pass through (`Discrete`, `MultiDiscrete` or `Box`). `info` passes through, plus
`expert_action` when an expert is given and `success` when `success_fn` is given.
"""

from __future__ import annotations

import unicodedata
import warnings
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F

from vlarena.envs.nav_env import INSTRUCTION_CHARSET, INSTRUCTION_MAX_LENGTH

ACTION_SPACES = (gym.spaces.Discrete, gym.spaces.MultiDiscrete, gym.spaces.Box)
RESAMPLE_MODES = ("area", "nearest")
RENDER = "render"


class ObservationKeyError(KeyError):
    """A configured observation key is missing; the message names the key and the keys present."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


# ----------------------------------------------------------------------------------------------- instructions
def sanitize_instruction(text: str, charset: str = INSTRUCTION_CHARSET, max_length: int = INSTRUCTION_MAX_LENGTH,
                         replacement: str = " ") -> tuple[str, set[str], bool]:
    """Map `text` into `charset` and `max_length`; returns (clean text, replaced characters, was cut).

    Rule, per character not in `charset`: strip accents (Unicode NFKD, combining marks dropped);
    whitespace becomes a space; a letter whose lower- or upper-case form is in the charset takes it;
    anything else becomes `replacement`. Then the string is cut to `max_length` characters.
    """
    allowed = set(charset)
    replaced: set[str] = set()
    out = []
    for ch in text:
        if ch in allowed:
            out.append(ch)
            continue
        replaced.add(ch)
        base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
        for cand in (base, base.lower(), base.upper()):
            if cand and all(c in allowed for c in cand):
                out.append(cand)
                break
        else:
            out.append(" " if ch.isspace() and " " in allowed else replacement)
    clean = "".join(out)
    return clean[:max_length], replaced, len(clean) > max_length


# ----------------------------------------------------------------------------------------------- images
def resize_image(img: np.ndarray, size: tuple[int, int], mode: str = "area") -> np.ndarray:
    """Resample an (H, W, C) array to `size` = (H', W'), keeping its dtype.

    "nearest" picks the source pixel under each target pixel centre; "area" averages the source box
    each target pixel covers (exact block mean for integer factors; adaptive average pooling
    otherwise), rounding back to integers for integer dtypes.
    """
    if mode not in RESAMPLE_MODES:
        raise ValueError(f"resample must be one of {RESAMPLE_MODES}, got {mode!r}")
    h, w = img.shape[:2]
    th, tw = size
    if (h, w) == (th, tw):
        return img
    if mode == "nearest":
        rows = np.minimum(((np.arange(th) + 0.5) * h / th).astype(np.int64), h - 1)
        cols = np.minimum(((np.arange(tw) + 0.5) * w / tw).astype(np.int64), w - 1)
        return img[rows][:, cols]
    if h % th == 0 and w % tw == 0:
        out = img.reshape(th, h // th, tw, w // tw, -1).mean(axis=(1, 3), dtype=np.float64)
    else:
        t = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32)).permute(2, 0, 1)[None]
        out = F.adaptive_avg_pool2d(t, (th, tw))[0].permute(1, 2, 0).numpy()
    if np.issubdtype(img.dtype, np.integer):
        info = np.iinfo(img.dtype)
        out = np.clip(np.rint(out), info.min, info.max)
    return out.astype(img.dtype)


def check_size(size: Any) -> tuple[int, int] | None:
    """`size` as an (H, W) tuple of positive ints (None stays None), or a clear error."""
    if size is None:
        return None
    if (not isinstance(size, Sequence) or len(size) != 2
            or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size)):
        raise ValueError(f"size must be a pair of positive ints (H, W), got {size!r}")
    return int(size[0]), int(size[1])


def _image_layout(shape: tuple[int, ...], channels: str, what: str) -> tuple[int, int, int]:
    """(H, W, C) of a source image of `shape`, or a clear error."""
    if channels not in ("hwc", "chw"):
        raise ValueError(f"channels must be 'hwc' or 'chw', got {channels!r}")
    if len(shape) == 2:
        return shape[0], shape[1], 1
    if len(shape) == 3:
        h, w, c = shape if channels == "hwc" else (shape[1], shape[2], shape[0])
        if c in (1, 3, 4):
            return h, w, c
    raise ValueError(f"{what} has shape {shape}; accepted are (H, W), (H, W, C) with C in (1, 3, 4), "
                     f"or (C, H, W) with channels='chw'")


# ----------------------------------------------------------------------------------------------- experts
@runtime_checkable
class Expert(Protocol):
    """A (possibly stateful) expert: `reset` after every env reset, `step` after every env step."""

    def reset(self, env: gym.Env) -> Any:
        """The expert action for the first observation of a new episode."""

    def step(self, env: gym.Env, action: Any) -> Any:
        """The expert action after `action` (the one actually taken) was applied."""


class FunctionExpert:
    """A stateless expert from `expert_fn(env) -> action`."""

    def __init__(self, fn: Callable[[gym.Env], Any]):
        self.fn = fn

    def reset(self, env: gym.Env) -> Any:
        return self.fn(env)

    def step(self, env: gym.Env, action: Any) -> Any:
        return self.fn(env)


def success_on_positive_reward(reward: float, terminated: bool, truncated: bool, info: dict[str, Any]) -> bool:
    """MiniGrid/BabyAI convention: the episode succeeded when it terminates with reward > 0."""
    return bool(terminated and reward > 0)


# ----------------------------------------------------------------------------------------------- adapter
class InstructionEnvAdapter(gym.Env):
    """Wrap an env with image + instruction observations into the vlarena contract (see module doc).

    The adapter is a `gym.Env` holding the wrapped env as `self.env` rather than a `gym.Wrapper`, so
    `env.unwrapped` and `check_env` see the env in the vlarena contract, and `gym.make` can recreate
    it from its spec even when the wrapped stack holds wrappers gymnasium cannot recreate (such as
    MiniGrid's RGB wrappers). Rendering and closing are forwarded to the wrapped env.
    """

    def __init__(self, env: gym.Env, image_key: str | None = "image", instruction_key: str | None = "instruction",
                 *, instruction: str | None = None, depth_key: str | None = None,
                 size: tuple[int, int] | None = None, resample: str = "area", channels: str = "hwc",
                 channel_order: str = "rgb", extra_keys: Sequence[str] = (),
                 expert: Expert | Callable[[gym.Env], Any] | None = None,
                 success_fn: Callable[[float, bool, bool, dict[str, Any]], bool] | None = None,
                 charset: str = INSTRUCTION_CHARSET, max_length: int = INSTRUCTION_MAX_LENGTH,
                 on_invalid: str = "replace", replacement: str = " "):
        if not isinstance(env, gym.Env):
            raise ValueError(f"env must be a gymnasium.Env, got {type(env).__name__}")
        self._check_action_space(env.action_space)
        self.env = env
        self.metadata = dict(getattr(env, "metadata", {}))
        self.render_mode = getattr(env, "render_mode", None)
        if resample not in RESAMPLE_MODES:
            raise ValueError(f"resample must be one of {RESAMPLE_MODES}, got {resample!r}")
        if channel_order not in ("rgb", "bgr"):
            raise ValueError(f"channel_order must be 'rgb' or 'bgr', got {channel_order!r}")
        if on_invalid not in ("replace", "error"):
            raise ValueError(f"on_invalid must be 'replace' or 'error', got {on_invalid!r}")
        if not (isinstance(replacement, str) and len(replacement) == 1 and replacement in charset):
            raise ValueError(f"replacement must be one character of the charset, got {replacement!r}")
        if (instruction_key is None) == (instruction is None):
            raise ValueError("give exactly one of instruction_key (read the instruction from the observation) "
                             f"or instruction (a fixed text); got instruction_key={instruction_key!r}, "
                             f"instruction={instruction!r}")
        size = check_size(size)
        self.image_key, self.instruction_key, self.depth_key = image_key, instruction_key, depth_key
        self.fixed_instruction = instruction
        self.size, self.resample, self.channels, self.channel_order = size, resample, channels, channel_order
        self.extra_keys = tuple(extra_keys)
        self.charset, self.max_length, self.on_invalid, self.replacement = charset, max_length, on_invalid, replacement
        self.success_fn = success_fn
        if expert is not None and not isinstance(expert, Expert):
            if not callable(expert):
                raise ValueError(f"expert must be an Expert (reset/step methods) or a callable env -> action, "
                                 f"got {type(expert).__name__}")
            expert = FunctionExpert(expert)
        self.expert: Expert | None = expert
        self._warned: set[str] = set()

        keys = [k for k in (image_key, instruction_key, depth_key, *self.extra_keys) if k not in (None, RENDER)]
        for key in keys:
            self._space_of(key)  # raises naming the key and the keys present
        spaces: dict[str, gym.Space] = {}
        if image_key == RENDER:
            if size is None:
                raise ValueError("image_key='render' needs size=(H, W): no space describes env.render()'s frames")
            if getattr(env, "render_mode", None) != "rgb_array":
                raise ValueError(f"image_key='render' needs an env made with render_mode='rgb_array', "
                                 f"got render_mode={getattr(env, 'render_mode', None)!r}")
            self._image_src: tuple[int, int, int] | None = None
            self._image_float = False
            out_hw = size
        else:
            img_space = self._space_of(image_key)
            if not isinstance(img_space, gym.spaces.Box):
                raise ValueError(f"image {self._name(image_key)} must be a Box space, got {img_space}")
            self._image_src = _image_layout(img_space.shape, channels, f"image {self._name(image_key)}")
            self._image_float = self._check_image_dtype(img_space)
            out_hw = size or self._image_src[:2]
        spaces["rgb"] = gym.spaces.Box(0, 255, (*out_hw, 3), np.uint8)
        if depth_key is not None:
            dspace = self._space_of(depth_key)
            if not isinstance(dspace, gym.spaces.Box) or not (
                    len(dspace.shape) == 2 or (len(dspace.shape) == 3 and dspace.shape[2] == 1)):
                raise ValueError(f"depth {depth_key!r} must be a Box of shape (H, W) or (H, W, 1), got {dspace}")
            self._depth_src = dspace.shape[:2]
            low, high = float(np.min(dspace.low)), float(np.max(dspace.high))
            spaces["depth"] = gym.spaces.Box(low, high, (*out_hw, 1), np.float32)
        spaces["instruction"] = gym.spaces.Text(max_length=max_length, min_length=0, charset=charset)
        for key in self.extra_keys:
            if key in spaces:
                raise ValueError(f"extra key {key!r} clashes with a key of the vlarena observation")
            spaces[key] = self._space_of(key)
        self.observation_space = gym.spaces.Dict(spaces)
        self.action_space = env.action_space

    # -- checks
    @staticmethod
    def _check_action_space(space: gym.Space) -> None:
        if not isinstance(space, ACTION_SPACES):
            raise ValueError(f"action space {space} ({type(space).__name__}) is not supported; accepted are "
                             f"Discrete, MultiDiscrete and Box")

    @staticmethod
    def _name(key: str | None) -> str:
        return "(the whole observation)" if key is None else repr(key)

    def _space_of(self, key: str | None) -> gym.Space:
        src = self.env.observation_space
        if key is None:
            return src
        if not isinstance(src, gym.spaces.Dict):
            raise ValueError(f"observation key {key!r} was configured but the env's observation space is {src}, "
                             f"not a Dict")
        if key not in src.spaces:
            raise ObservationKeyError(f"observation key {key!r} not found; the env's observation keys are "
                                      f"{list(src.spaces)}")
        return src.spaces[key]

    def _check_image_dtype(self, space: gym.spaces.Box) -> bool:
        if space.dtype == np.uint8:
            return False
        if np.issubdtype(space.dtype, np.floating):
            if np.all(space.low >= 0) and np.all(space.high <= 1):
                return True
            raise ValueError(f"float image {self._name(self.image_key)} has bounds "
                             f"[{np.min(space.low)}, {np.max(space.high)}]; accepted are uint8 images or float "
                             f"images within [0, 1]")
        raise ValueError(f"image {self._name(self.image_key)} has dtype {space.dtype}; accepted are uint8 or float "
                         f"within [0, 1]")

    def _warn_once(self, kind: str, message: str) -> None:
        if kind not in self._warned:
            self._warned.add(kind)
            warnings.warn(message, stacklevel=3)

    # -- observation conversion
    def _get(self, obs: Any, key: str | None) -> Any:
        if key is None:
            return obs
        if not isinstance(obs, dict) or key not in obs:
            present = list(obs) if isinstance(obs, dict) else type(obs).__name__
            raise ObservationKeyError(f"observation key {key!r} missing from the observation; present: {present}")
        return obs[key]

    def _rgb(self, obs: Any) -> np.ndarray:
        if self.image_key == RENDER:
            img = self.env.render()
            if img is None:
                raise ValueError("env.render() returned None; make the env with render_mode='rgb_array'")
            img = np.asarray(img)
            h, w, _ = _image_layout(img.shape, self.channels, "rendered frame")
            is_float = np.issubdtype(img.dtype, np.floating)
            if not (img.dtype == np.uint8 or is_float):
                raise ValueError(f"rendered frame has dtype {img.dtype}; accepted are uint8 or float within [0, 1]")
        else:
            img = np.asarray(self._get(obs, self.image_key))
            h, w, _ = self._image_src
            expect = self.env.observation_space if self.image_key is None else self._space_of(self.image_key)
            if img.shape != expect.shape:
                raise ValueError(f"image {self._name(self.image_key)} has shape {img.shape}, expected {expect.shape}")
            is_float = self._image_float
            if (img.dtype != np.uint8) and not (is_float and np.issubdtype(img.dtype, np.floating)):
                raise ValueError(f"image {self._name(self.image_key)} has dtype {img.dtype}, expected {expect.dtype}")
        if img.ndim == 2:
            img = img[:, :, None]
        elif self.channels == "chw":
            img = img.transpose(1, 2, 0)
        if is_float:
            if img.size and (img.min() < 0 or img.max() > 1):
                raise ValueError(f"float image values must lie in [0, 1], got [{img.min()}, {img.max()}]")
            img = np.rint(img * 255.0).astype(np.uint8)
        c = img.shape[2]
        img = np.repeat(img, 3, axis=2) if c == 1 else img[:, :, :3]
        if self.channel_order == "bgr":
            img = img[:, :, ::-1]
        if self.size is not None:
            img = resize_image(img, self.size, self.resample)
        return np.ascontiguousarray(img)

    def _depth(self, obs: Any) -> np.ndarray:
        d = np.asarray(self._get(obs, self.depth_key), dtype=np.float32)
        if d.shape[:2] != tuple(self._depth_src) or d.ndim not in (2, 3):
            expect = self._space_of(self.depth_key).shape
            raise ValueError(f"depth {self.depth_key!r} has shape {d.shape}, expected {expect}")
        d = d.reshape(*d.shape[:2], 1)
        if self.size is not None:
            d = resize_image(d, self.size, "nearest")
        return np.ascontiguousarray(d)

    def _instruction(self, obs: Any) -> str:
        text = self.fixed_instruction if self.instruction_key is None else self._get(obs, self.instruction_key)
        if not isinstance(text, str):
            raise ValueError(f"instruction {self.instruction_key!r} must be a str, got {type(text).__name__}")
        clean, replaced, cut = sanitize_instruction(str(text), self.charset, self.max_length, self.replacement)
        if (replaced or cut) and self.on_invalid == "error":
            raise ValueError(f"instruction {text!r} has characters outside the charset {sorted(replaced)} or is "
                             f"longer than {self.max_length} characters (on_invalid='error')")
        if replaced:
            self._warn_once("charset", f"instruction characters {sorted(replaced)} are outside the charset; mapped "
                                       f"by vlarena.envs.adapters.sanitize_instruction (first seen in {text!r})")
        if cut:
            self._warn_once("length", f"instruction longer than {self.max_length} characters was cut "
                                      f"(first seen: {len(text)} characters)")
        return clean

    def observation(self, obs: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"rgb": self._rgb(obs)}
        if self.depth_key is not None:
            out["depth"] = self._depth(obs)
        out["instruction"] = self._instruction(obs)
        for key in self.extra_keys:
            out[key] = self._get(obs, key)
        return out

    # -- gym API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        obs, info = self.env.reset(seed=seed, options=options)
        info = dict(info)
        if self.expert is not None:
            info["expert_action"] = self.expert.reset(self.env)
        if self.success_fn is not None:
            info["success"] = False
        return self.observation(obs), info

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        info = dict(info)
        if self.expert is not None:
            info["expert_action"] = self.expert.step(self.env, action)
        if self.success_fn is not None:
            info["success"] = bool(self.success_fn(reward, terminated, truncated, info))
        return self.observation(obs), reward, terminated, truncated, info

    def render(self) -> Any:
        return self.env.render()

    def close(self) -> None:
        self.env.close()
