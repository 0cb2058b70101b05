"""Checkpoint files: safetensors weights (no pickle), JSON configs, atomic writes, gym spaces as JSON.

`load_state(module, state, source)` is the one place weights enter a module: any missing,
unexpected or wrongly shaped tensor raises `CheckpointMismatchError` naming each tensor with its
expected and received shape.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT_VERSION = 1


class CheckpointMismatchError(ValueError):
    """The tensors of a checkpoint do not fit the module built from the config."""


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """Call `write(tmp_path)` on a temporary file next to `path`, then move it into place (os.replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_json(path: str | os.PathLike, data: dict[str, Any]) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w") as f:
            json.dump(data, f, indent=2, sort_keys=False)
            f.write("\n")

    atomic_write(path, write)


def read_json(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found")
    try:
        with open(path) as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from e


def save_tensors(path: str | os.PathLike, state: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    """Write `state` to a safetensors file atomically (tensors are copied to CPU, contiguous)."""
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def load_tensors(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found")
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})


def mismatch_report(expected: dict[str, torch.Tensor], got: dict[str, torch.Tensor]) -> list[str]:
    """One line per tensor that is missing, unexpected, or of another shape."""
    lines = []
    for name in sorted(set(expected) | set(got)):
        if name not in got:
            lines.append(f"missing {name}: expected shape {tuple(expected[name].shape)}, not in the checkpoint")
        elif name not in expected:
            lines.append(f"unexpected {name}: got shape {tuple(got[name].shape)}, not in the model")
        elif tuple(expected[name].shape) != tuple(got[name].shape):
            lines.append(f"shape mismatch {name}: expected {tuple(expected[name].shape)}, "
                         f"got {tuple(got[name].shape)}")
    return lines


def load_state(module: torch.nn.Module, state: dict[str, torch.Tensor], source: str,
               skip_prefixes: tuple[str, ...] = ()) -> None:
    """Copy `state` into `module` exactly; tensors under `skip_prefixes` are left as they are."""
    expected = {k: v for k, v in module.state_dict().items() if not k.startswith(skip_prefixes)}
    lines = mismatch_report(expected, state)
    if lines:
        shown = "\n  ".join(lines[:20]) + (f"\n  ... and {len(lines) - 20} more" if len(lines) > 20 else "")
        raise CheckpointMismatchError(f"{source} does not fit this model ({len(lines)} tensor(s)):\n  {shown}")
    module.load_state_dict(state, strict=not skip_prefixes)


# ---- gym spaces as JSON -----------------------------------------------------------------------
def _array(a: np.ndarray) -> Any:
    flat = np.asarray(a).ravel()
    if flat.size and (flat == flat[0]).all():
        return flat[0].item()
    return np.asarray(a).tolist()


def space_to_dict(space: gym.Space) -> dict[str, Any]:
    """JSON form of the spaces a policy accepts (Box, Discrete, MultiDiscrete, MultiBinary, Text, Dict)."""
    if isinstance(space, gym.spaces.Dict):
        return {"type": "Dict", "spaces": {k: space_to_dict(s) for k, s in space.spaces.items()}}
    if isinstance(space, gym.spaces.Box):
        return {"type": "Box", "shape": list(space.shape), "dtype": str(space.dtype),
                "low": _array(space.low), "high": _array(space.high)}
    if isinstance(space, gym.spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, gym.spaces.MultiDiscrete):
        return {"type": "MultiDiscrete", "nvec": np.asarray(space.nvec).tolist(),
                "start": np.asarray(space.start).tolist()}
    if isinstance(space, gym.spaces.MultiBinary):
        return {"type": "MultiBinary", "n": np.asarray(space.n).tolist()}
    if isinstance(space, gym.spaces.Text):
        return {"type": "Text", "max_length": space.max_length, "min_length": space.min_length,
                "charset": "".join(sorted(space.character_set))}
    raise ValueError(f"cannot save a space of type {type(space).__name__}: accepted are Dict, Box, Discrete, "
                     "MultiDiscrete, MultiBinary, Text")


def space_from_dict(data: dict[str, Any]) -> gym.Space:
    kind = data.get("type")
    if kind == "Dict":
        return gym.spaces.Dict({k: space_from_dict(v) for k, v in data["spaces"].items()})
    if kind == "Box":
        dtype = np.dtype(data["dtype"])
        shape = tuple(data["shape"])
        low = np.broadcast_to(np.asarray(data["low"], dtype=dtype), shape)
        high = np.broadcast_to(np.asarray(data["high"], dtype=dtype), shape)
        return gym.spaces.Box(low.copy(), high.copy(), shape, dtype)
    if kind == "Discrete":
        return gym.spaces.Discrete(data["n"], start=data.get("start", 0))
    if kind == "MultiDiscrete":
        return gym.spaces.MultiDiscrete(np.asarray(data["nvec"]), start=data.get("start"))
    if kind == "MultiBinary":
        return gym.spaces.MultiBinary(data["n"])
    if kind == "Text":
        return gym.spaces.Text(max_length=data["max_length"], min_length=data["min_length"], charset=data["charset"])
    raise ValueError(f"unknown space type {kind!r} in a saved config: accepted are Dict, Box, Discrete, "
                     "MultiDiscrete, MultiBinary, Text")
