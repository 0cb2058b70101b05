"""Training checkpoints: weights in safetensors, the rest in a `weights_only`-safe file, all atomic.

Layout of a run directory:

    run_dir/checkpoints/step_<N>/config.json          policy config and spaces (VLAPolicy.save_pretrained)
    run_dir/checkpoints/step_<N>/model.safetensors    policy weights
    run_dir/checkpoints/step_<N>/trainer_state.pt     optimizer, scheduler, RNG states, counters
    run_dir/checkpoints/latest                        the name of the newest complete checkpoint

`trainer_state.pt` holds only tensors, dicts, lists, tuples, ints, floats, strings and None, so it
loads with `torch.load(path, weights_only=True)` (no pickle of arbitrary objects): numpy's and
Python's RNG states are converted to int64 tensors. `N` is `counters["step"]`.

Atomicity (a run killed at any moment resumes from the last complete checkpoint): every file is
written to a temporary name and moved into place (os.replace); the checkpoint directory is built
under a temporary name `.tmp_step_<N>_*` and renamed when complete; then `latest` is rewritten
atomically; then checkpoints beyond the newest `keep` are deleted (and any newer than this one: they
belong to a run that was resumed from an older checkpoint). A crash at any point leaves the
previous checkpoint and `latest` intact; leftover temporary directories are removed by the next
save. (Files are not fsync'ed: this survives a killed process, not a power cut.)
"""

from __future__ import annotations

import os
import random
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vlarena.policies.checkpoint import CONFIG_NAME, WEIGHTS_NAME, atomic_write, load_state, load_tensors, read_json
from vlarena.policies.policy import LANGUAGE_BACKBONE_PREFIX

CHECKPOINTS_DIR = "checkpoints"
LATEST = "latest"
TRAINER_STATE = "trainer_state.pt"
STATE_FORMAT = "vlarena.trainer_state"
STATE_VERSION = 1
_STEP_DIR = re.compile(r"^step_(\d+)$")


class CheckpointError(ValueError):
    """A checkpoint is missing a file, cannot be read, or does not fit what it is loaded into."""


@dataclass
class Checkpoint:
    path: Path
    counters: dict[str, Any]
    state: dict[str, Any] = field(repr=False)

    @property
    def step(self) -> int:
        return int(self.counters["step"])


# ---- RNG states as plain tensors --------------------------------------------------------------------
def capture_rng_state(generators: Mapping[str, torch.Generator] | None = None) -> dict[str, Any]:
    """torch (CPU, CUDA when initialised), numpy and Python RNG states, plus named generators."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, mt, gauss_next = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": {"version": int(version), "state": torch.tensor(mt, dtype=torch.int64),
                   "gauss_next": None if gauss_next is None else float(gauss_next)},
        "generators": {name: g.get_state() for name, g in (generators or {}).items()},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any], generators: Mapping[str, torch.Generator] | None = None) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(int(x) for x in p["state"].tolist()), p["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    saved = state.get("generators", {})
    for name, g in (generators or {}).items():
        if name not in saved:
            raise CheckpointError(f"the checkpoint holds no state for the generator {name!r} (it has "
                                  f"{sorted(saved)})")
        g.set_state(saved[name])


# ---- save --------------------------------------------------------------------------------------------
def save_checkpoint(run_dir: str | os.PathLike, policy: Any, optimizer: torch.optim.Optimizer | None = None,
                    scheduler: Any = None, counters: Mapping[str, Any] | None = None,
                    rng: Mapping[str, torch.Generator] | None = None, keep: int | None = 3,
                    extra: Mapping[str, Any] | None = None) -> Path:
    """Write `run_dir/checkpoints/step_<counters['step']>/` atomically, point `latest` to it, keep the newest
    `keep` checkpoints (None: all). `rng`: generators saved beside the global RNG states (e.g. a sampler's);
    `extra`: more weights_only-safe entries. Returns the checkpoint directory."""
    counters = {k: _plain(v) for k, v in (counters or {}).items()}
    if "step" not in counters or not isinstance(counters["step"], int) or counters["step"] < 0:
        raise ValueError(f"counters must hold 'step' (a non-negative int, the checkpoint's name), got {counters}")
    if keep is not None and (not isinstance(keep, int) or isinstance(keep, bool) or keep < 1):
        raise ValueError(f"keep must be a positive int or None (keep all), got {keep!r}")
    root = Path(run_dir) / CHECKPOINTS_DIR
    root.mkdir(parents=True, exist_ok=True)
    _remove_temporaries(root)
    name = f"step_{counters['step']}"
    state = {
        "format": STATE_FORMAT, "version": STATE_VERSION, "counters": counters,
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "rng": capture_rng_state(rng), "extra": dict(extra or {}),
    }
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp_{name}_", dir=root))
    old: Path | None = None
    try:
        policy.save_pretrained(tmp)
        atomic_write(tmp / TRAINER_STATE, lambda path: torch.save(state, path))
        final = root / name
        if final.exists():  # the same step saved again (e.g. after a resume): swap it out
            old = Path(tempfile.mkdtemp(prefix=f".tmp_old_{name}_", dir=root))
            os.replace(final, old / name)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    atomic_write(root / LATEST, lambda path: Path(path).write_text(name + "\n"))
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    step = counters["step"]
    others = [p for p in _complete(root) if p.name != name]
    newer = [p for p in others if _step_of(p) > step]  # left by a run resumed from an older checkpoint
    older = [p for p in others if _step_of(p) < step]
    drop = newer + (older[:max(0, len(older) - keep + 1)] if keep is not None else [])
    for path in drop:
        shutil.rmtree(path, ignore_errors=True)
    return final


def _plain(value: Any) -> Any:
    """Counters as Python ints, floats, strings (numpy and 0-d tensors converted)."""
    if isinstance(value, (torch.Tensor, np.generic)):
        value = value.item()
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    raise ValueError(f"counters must be ints, floats or strings, got {type(value).__name__}: {value!r}")


def _remove_temporaries(root: Path) -> None:
    for path in root.glob(".tmp_*"):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _step_of(path: Path) -> int:
    return int(path.name.removeprefix("step_"))


def _is_complete(path: Path) -> bool:
    return all((path / f).is_file() for f in (CONFIG_NAME, WEIGHTS_NAME, TRAINER_STATE))


def _complete(root: Path) -> list[Path]:
    """Complete checkpoint directories, oldest first."""
    found = [p for p in root.iterdir() if _STEP_DIR.match(p.name) and _is_complete(p)]
    return sorted(found, key=_step_of)


# ---- load --------------------------------------------------------------------------------------------
def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The checkpoint `latest` names, else the newest complete one, else None."""
    root = Path(run_dir) / CHECKPOINTS_DIR
    if not root.is_dir():
        return None
    pointer = root / LATEST
    if pointer.is_file():
        named = root / pointer.read_text().strip()
        if _STEP_DIR.match(named.name) and named.is_dir():
            return named
    found = _complete(root)
    return found[-1] if found else None


def load_checkpoint(path: str | os.PathLike, policy: Any = None, optimizer: torch.optim.Optimizer | None = None,
                    scheduler: Any = None, rng: Mapping[str, torch.Generator] | None = None,
                    restore_rng: bool = True) -> Checkpoint:
    """Read a checkpoint directory and restore what is given: policy weights, optimizer and scheduler states,
    the global RNG states and the named generators in `rng`. Errors name the file and what is wrong."""
    path = Path(path)
    missing = [f for f in (CONFIG_NAME, WEIGHTS_NAME, TRAINER_STATE) if not (path / f).is_file()]
    if missing:
        raise CheckpointError(f"checkpoint {path} is incomplete: {missing} missing (a complete one holds "
                              f"{[CONFIG_NAME, WEIGHTS_NAME, TRAINER_STATE]})")
    file = path / TRAINER_STATE
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated, corrupted or not a torch file
        raise CheckpointError(f"{file} cannot be read as a weights-only torch file ({type(e).__name__}): it is "
                              f"corrupt or truncated; delete {path} to resume from the checkpoint before it") from e
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise CheckpointError(f"{file} is not a vlarena trainer state (field 'format' must be {STATE_FORMAT!r})")
    if not isinstance(state.get("version"), int) or state["version"] > STATE_VERSION:
        raise CheckpointError(f"{file} has version {state.get('version')!r}; this vlarena reads up to {STATE_VERSION}")
    if policy is not None:
        load_policy_weights(policy, path)
    for what, obj in (("optimizer", optimizer), ("scheduler", scheduler)):
        if obj is None:
            continue
        if state[what] is None:
            raise CheckpointError(f"{file} holds no {what} state")
        try:
            obj.load_state_dict(state[what])
        except (ValueError, KeyError, RuntimeError) as e:
            raise CheckpointError(f"the {what} state in {file} does not fit this {what} ({e}): resume with the "
                                  f"agent settings the run started with (agent.aux, for one, adds parameters)") from e
    if restore_rng:
        restore_rng_state(state["rng"], rng)
    return Checkpoint(path=path, counters=dict(state["counters"]), state=state)


def load_policy_weights(policy: Any, path: str | os.PathLike) -> None:
    """Copy the weights of a saved policy directory into `policy` (a frozen backbone not saved is kept)."""
    path = Path(path)
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        if not (path / name).is_file():
            raise CheckpointError(f"{path / name} is missing: {path} is not a saved policy directory")
    try:
        meta = read_json(path / CONFIG_NAME)
    except Exception as e:
        raise CheckpointError(f"{path / CONFIG_NAME} cannot be read ({type(e).__name__}: {e})") from e
    try:
        tensors, _ = load_tensors(path / WEIGHTS_NAME)
    except Exception as e:
        raise CheckpointError(f"{path / WEIGHTS_NAME} cannot be read as safetensors ({type(e).__name__}: {e}): it is "
                              f"corrupt or truncated; delete {path} to resume from the checkpoint before it") from e
    skip = () if meta.get("language_backbone_saved", True) else (LANGUAGE_BACKBONE_PREFIX,)
    load_state(policy, tensors, str(path / WEIGHTS_NAME), skip_prefixes=skip)


def load_latest(run_dir: str | os.PathLike, policy: Any = None, optimizer: torch.optim.Optimizer | None = None,
                scheduler: Any = None, rng: Mapping[str, torch.Generator] | None = None,
                restore_rng: bool = True) -> Checkpoint | None:
    """`load_checkpoint` of `latest_checkpoint(run_dir)`; None when the run has no checkpoint yet."""
    path = latest_checkpoint(run_dir)
    return None if path is None else load_checkpoint(path, policy, optimizer, scheduler, rng, restore_rng)
