"""Demonstration datasets: the expert's episodes of a split, written once and replayed for behaviour cloning.

    vlarena data demos --env R2R --split train --out demos/r2r_train --set width=32 --set height=32
    vlarena train experiment=r2r_bc demos=demos/r2r_train

`collect_demos` runs the env's expert (`info["expert_action"]`) on every episode of the env's split (or the
first `max_episodes`) and writes a folder, atomically (built under a temporary name, then renamed):

    demos.json          format, version, env id and kwargs, split, the recorded keys' spaces, episode ids,
                        episode starts/lengths, success and SPL per episode, the instructions (text keys)
    data.safetensors    each recorded Box key stacked over all steps (N, ...), `action` (N, ...), and for a
                        text key `<key>_index` (N,) into its list in demos.json

`DemoReplayEnv` plays a demo folder back as a NEXT_STEP vector env (the native envs' contract): each row plays
a uniformly drawn episode's recorded observations whatever action it receives, `info["expert_action"]` is the
recorded action, the step that consumes the last action (STOP) ends the episode (terminated, with its recorded
success and SPL) and returns that final frame, and the next step starts another episode. Behaviour cloning (the
expert's action always executed) then trains on the demos with the same trainer as on the live env; DAgger,
whose student acts, needs the live env.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode
from tqdm import tqdm

from vlarena.datasets.jsonio import write_json
from vlarena.policies.checkpoint import load_tensors, read_json, save_tensors, space_from_dict, space_to_dict

DEMO_FORMAT = "vlarena.demos"
DEMO_VERSION = 1
META_NAME, DATA_NAME = "demos.json", "data.safetensors"


def _rows(value: Any) -> torch.Tensor:
    return value.detach().cpu() if isinstance(value, torch.Tensor) else torch.as_tensor(np.asarray(value))


def collect_demos(env: Any, out_dir: str | os.PathLike, meta: dict[str, Any], keys: list[str] | None = None,
                  max_episodes: int | None = None, progress: bool = True) -> Path:
    """Record the expert on the episodes of `env` (a native NEXT_STEP vector env with `episode_ids` and
    info["expert_action"]); returns the written folder."""
    space = env.single_observation_space
    keys = list(space.spaces) if keys is None else list(keys)
    unknown = [k for k in keys if k not in space.spaces]
    if unknown:
        raise ValueError(f"unknown observation key(s) {unknown}; the env has {list(space.spaces)}")
    text = [k for k in keys if isinstance(space[k], gym.spaces.Text)]
    ids = list(env.episode_ids)[:max_episodes]
    b = env.num_envs
    steps: dict[str, list[torch.Tensor]] = {k: [] for k in [*keys, "action", "episode"]}
    texts: dict[str, list[str]] = {k: [] for k in text}
    lengths, success, spl = np.zeros(len(ids), np.int64), np.zeros(len(ids)), np.zeros(len(ids))
    bar = tqdm(total=len(ids), desc="demos", disable=not progress)
    for start in range(0, len(ids), b):
        chunk = ids[start:start + b]
        obs, info = env.reset(options={"episode_id": chunk + [chunk[-1]] * (b - len(chunk))})
        done = np.arange(b) >= len(chunk)
        for k in text:  # one instruction per episode, fixed over its steps
            texts[k] += list(obs[k])[:len(chunk)]
        while not done.all():  # the expert ends every episode (STOP, or the env's step limit)
            live = torch.as_tensor(np.flatnonzero(~done))
            action = _rows(info["expert_action"])
            for k in keys:
                steps[k].append(start + live if k in text else _rows(obs[k])[live])
            steps["action"].append(action[live])
            steps["episode"].append(start + live)
            obs, _, terminated, truncated, info = env.step(info["expert_action"])
            ended = (_rows(terminated) | _rows(truncated)).numpy().astype(bool) & ~done
            for i in np.flatnonzero(ended):
                success[start + i] = float(_rows(info["success"])[i]) if "success" in info else np.nan
                spl[start + i] = float(_rows(info["spl"])[i]) if "spl" in info else np.nan
            lengths[start:start + len(chunk)] += (~done)[:len(chunk)]
            done |= ended
        bar.update(len(chunk))
    bar.close()
    episode = torch.cat(steps.pop("episode"))
    order = torch.argsort(episode, stable=True)  # steps of an episode contiguous, in time order
    tensors = {f"{k}_index" if k in text else k: torch.cat(v)[order] for k, v in steps.items()}
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    meta = {"format": DEMO_FORMAT, "version": DEMO_VERSION, **meta,
            "observation_space": space_to_dict(gym.spaces.Dict({k: space[k] for k in keys})),
            "action_space": space_to_dict(env.single_action_space), "text_keys": text, "episode_ids": ids,
            "starts": starts.tolist(), "lengths": lengths.tolist(), "success": success.tolist(), "spl": spl.tolist(),
            "texts": texts, "num_steps": int(lengths.sum())}
    return _write_folder(Path(out_dir), tensors, meta)


def _write_folder(out: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp_{out.name}_", dir=out.parent))
    try:
        save_tensors(tmp / DATA_NAME, tensors, metadata={"format": DEMO_FORMAT})
        write_json(tmp / META_NAME, meta)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def read_demos(directory: str | os.PathLike) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(meta, tensors) of a demo folder; a folder that is not one is an error naming the file."""
    directory = Path(directory)
    if not (directory / META_NAME).is_file():
        raise ValueError(f"{directory} is not a demo folder: it has no {META_NAME} (write one with "
                         f"`vlarena data demos`)")
    meta = read_json(directory / META_NAME)
    if meta.get("format") != DEMO_FORMAT or not isinstance(meta.get("version"), int) or meta["version"] > DEMO_VERSION:
        raise ValueError(f"{directory / META_NAME} is not a vlarena demo file of version <= {DEMO_VERSION} (field "
                         f"'format' must be {DEMO_FORMAT!r}; got {meta.get('format')!r}, {meta.get('version')!r})")
    tensors, _ = load_tensors(directory / DATA_NAME)
    n = meta["num_steps"]
    bad = {k: tuple(v.shape) for k, v in tensors.items() if v.shape[0] != n}
    if bad:
        raise ValueError(f"{directory / DATA_NAME} holds {bad}, not {n} steps as {META_NAME} says")
    return meta, tensors


class DemoReplayEnv:
    """A demo folder as a NEXT_STEP vector env of `num_envs` rows (module doc)."""

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, directory: str | os.PathLike, num_envs: int, device: str | torch.device = "cpu",
                 seed: int = 0):
        meta, tensors = read_demos(directory)
        self.meta, self.num_envs, self.device = meta, int(num_envs), torch.device(device)
        self.single_observation_space = space_from_dict(meta["observation_space"])
        self.single_action_space = space_from_dict(meta["action_space"])
        self.text = {k: meta["texts"][k] for k in meta["text_keys"]}
        self.data = {k: v.to(self.device) for k, v in tensors.items()}
        self.starts = torch.tensor(meta["starts"], device=self.device)
        self.lengths = torch.tensor(meta["lengths"], device=self.device)
        self.success = torch.tensor(meta["success"], device=self.device)
        self.spl = torch.tensor(meta["spl"], device=self.device)
        self.episode_ids = meta["episode_ids"]
        self._rng = torch.Generator().manual_seed(seed)
        self.ep = torch.zeros(self.num_envs, dtype=torch.long, device=self.device)
        self.t = torch.zeros_like(self.ep)
        self._pending = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)

    def _draw(self, rows: torch.Tensor) -> None:
        ep = torch.randint(len(self.episode_ids), (self.num_envs,), generator=self._rng).to(self.device)
        self.ep = torch.where(rows, ep, self.ep)
        self.t = torch.where(rows, torch.zeros_like(self.t), self.t)

    def _observe(self) -> tuple[dict[str, Any], dict[str, Any]]:
        index = self.starts[self.ep] + self.t
        obs: dict[str, Any] = {}
        for key in self.single_observation_space.spaces:
            if key in self.text:
                obs[key] = tuple(self.text[key][i] for i in self.data[f"{key}_index"][index].tolist())
            else:
                obs[key] = self.data[key][index]
        return obs, {"expert_action": self.data["action"][index], "elapsed_steps": self.t.clone()}

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        if seed is not None:
            self._rng.manual_seed(int(seed))
        self._draw(torch.ones(self.num_envs, dtype=torch.bool, device=self.device))
        self._pending.zero_()
        return self._observe()

    def step(self, actions: Any) -> tuple[dict, torch.Tensor, torch.Tensor, torch.Tensor, dict]:
        restart = self._pending.clone()
        ended = ~restart & (self.t + 1 >= self.lengths[self.ep])
        self.t = torch.where(~restart & ~ended, self.t + 1, self.t)  # an ending step returns the final frame
        self._draw(restart)
        self._pending = ended
        obs, info = self._observe()
        zeros = torch.zeros(self.num_envs, device=self.device)
        info["success"] = torch.where(ended, self.success[self.ep], zeros)
        info["spl"] = torch.where(ended, self.spl[self.ep], zeros)
        return obs, zeros, ended, torch.zeros_like(ended), info

    def close(self) -> None:
        pass
