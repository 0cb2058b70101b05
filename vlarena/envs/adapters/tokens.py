"""Replace the `instruction` text with token ids and a mask, for learners that cannot take `Text`.

stable-baselines3 (and anything that stacks observations into arrays) cannot hold a `Text` space,
so these wrappers tokenize the instruction inside the env:

    env = InstructionTokens(make_babyai(), tokenize=tokenize, vocab_size=30522, max_length=32)
    # obs: rgb (56, 56, 3) uint8, instruction_ids (32,) int64, instruction_mask (32,) int64

`tokenize(texts: list[str], max_length: int) -> (ids, mask)` returns two (N, l) integer arrays
(numpy, torch or nested lists) with l <= max_length; shorter rows are right-padded with `pad_id`
and mask 0. Ids must lie in [0, vocab_size). Results are cached per string, since an instruction
stays fixed for a whole episode. `VectorInstructionTokens` does the same for a vector env (one
tokenize call per batch); when the vector env returns torch tensors, ids and mask are torch
tensors on the same device.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector.utils import batch_space

Tokenize = Callable[[list[str], int], tuple[Any, Any]]


def _positive_int(name: str, value: Any) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _as_numpy(x: Any, what: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise ValueError(f"tokenize must return 2-D (batch, length) {what}, got shape {arr.shape}")
    if arr.dtype == bool:
        return arr.astype(np.int64)
    if not np.issubdtype(arr.dtype, np.integer):
        if not (np.issubdtype(arr.dtype, np.floating) and np.array_equal(arr, np.round(arr))):
            raise ValueError(f"tokenize must return integer {what}, got dtype {arr.dtype}")
    return arr.astype(np.int64)


class InstructionEncoder:
    """Strings -> ((N, max_length) int64 ids, (N, max_length) int64 mask), cached per string."""

    def __init__(self, tokenize: Tokenize, vocab_size: int, max_length: int = 64, pad_id: int = 0,
                 cache_size: int = 4096):
        if not callable(tokenize):
            raise ValueError(f"tokenize must be a callable (texts, max_length) -> (ids, mask), got {tokenize!r}")
        self.tokenize = tokenize
        self.vocab_size = _positive_int("vocab_size", vocab_size)
        self.max_length = _positive_int("max_length", max_length)
        if not 0 <= pad_id < self.vocab_size:
            raise ValueError(f"pad_id must be in [0, {self.vocab_size}), got {pad_id}")
        self.pad_id = int(pad_id)
        self.cache_size = cache_size
        self._cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def _encode(self, texts: list[str]) -> list[tuple[np.ndarray, np.ndarray]]:
        ids, mask = self.tokenize(texts, self.max_length)
        ids, mask = _as_numpy(ids, "ids"), _as_numpy(mask, "mask")
        if ids.shape != mask.shape or ids.shape[0] != len(texts):
            raise ValueError(f"tokenize returned ids {ids.shape} and mask {mask.shape} for {len(texts)} texts; "
                             f"expected two ({len(texts)}, <= {self.max_length}) arrays")
        if ids.shape[1] > self.max_length:
            raise ValueError(f"tokenize returned {ids.shape[1]} tokens, more than max_length={self.max_length}")
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
            raise ValueError(f"token ids must lie in [0, {self.vocab_size}) (vocab_size), got "
                             f"[{ids.min()}, {ids.max()}]")
        if mask.size and not np.isin(mask, (0, 1)).all():
            raise ValueError("tokenize must return a 0/1 mask")
        pad = self.max_length - ids.shape[1]
        ids = np.pad(ids, ((0, 0), (0, pad)), constant_values=self.pad_id)
        mask = np.pad(mask, ((0, 0), (0, pad)), constant_values=0)
        return [(ids[i], mask[i]) for i in range(len(texts))]

    def __call__(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        texts = [str(t) for t in texts]
        todo = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if todo:
            if len(self._cache) + len(todo) > self.cache_size:
                self._cache.clear()
            self._cache.update(zip(todo, self._encode(todo), strict=True))
        rows = [self._cache[t] for t in texts]
        if not rows:
            return np.zeros((0, self.max_length), np.int64), np.zeros((0, self.max_length), np.int64)
        return np.stack([r[0] for r in rows]), np.stack([r[1] for r in rows])

    def spaces(self) -> tuple[gym.spaces.Box, gym.spaces.Box]:
        return (gym.spaces.Box(0, self.vocab_size - 1, (self.max_length,), np.int64),
                gym.spaces.Box(0, 1, (self.max_length,), np.int64))


def _token_space(space: gym.Space, key: str, encoder: InstructionEncoder) -> gym.spaces.Dict:
    if not isinstance(space, gym.spaces.Dict) or key not in space.spaces:
        keys = list(space.spaces) if isinstance(space, gym.spaces.Dict) else space
        raise ValueError(f"InstructionTokens needs a Dict observation space with a {key!r} key, got {keys}")
    if not isinstance(space[key], gym.spaces.Text):
        raise ValueError(f"observation {key!r} must be a Text space, got {space[key]}")
    ids_space, mask_space = encoder.spaces()
    out: dict[str, gym.Space] = {}
    for k, v in space.spaces.items():
        if k == key:
            out[f"{key}_ids"], out[f"{key}_mask"] = ids_space, mask_space
        else:
            out[k] = v
    return gym.spaces.Dict(out)


class InstructionTokens(gym.ObservationWrapper):
    """Single env: `instruction` (Text) -> `instruction_ids`, `instruction_mask` (max_length,) int64."""

    def __init__(self, env: gym.Env, tokenize: Tokenize, vocab_size: int, max_length: int = 64,
                 key: str = "instruction", pad_id: int = 0):
        super().__init__(env)
        self.key = key
        self.encoder = InstructionEncoder(tokenize, vocab_size, max_length, pad_id)
        self.observation_space = _token_space(env.observation_space, key, self.encoder)

    def observation(self, obs: dict[str, Any]) -> dict[str, Any]:
        ids, mask = self.encoder([obs[self.key]])
        out = {k: v for k, v in obs.items() if k != self.key}
        out[f"{self.key}_ids"], out[f"{self.key}_mask"] = ids[0], mask[0]
        return out


class VectorInstructionTokens(gym.vector.VectorWrapper):
    """Vector env: the batch of instruction strings -> (num_envs, max_length) ids and mask.

    Works with gymnasium's Sync/Async vector envs (numpy) and vlarena's native env (torch, on its
    device). `info["final_obs"]` (same-step autoreset) is converted too.
    """

    def __init__(self, env: gym.vector.VectorEnv, tokenize: Tokenize, vocab_size: int, max_length: int = 64,
                 key: str = "instruction", pad_id: int = 0):
        super().__init__(env)
        self.key = key
        self.encoder = InstructionEncoder(tokenize, vocab_size, max_length, pad_id)
        self.single_observation_space = _token_space(env.single_observation_space, key, self.encoder)
        self.observation_space = batch_space(self.single_observation_space, env.num_envs)

    def observations(self, obs: dict[str, Any]) -> dict[str, Any]:
        ids, mask = self.encoder(list(obs[self.key]))
        device = next((v.device for v in obs.values() if isinstance(v, torch.Tensor)), None)
        out = {k: v for k, v in obs.items() if k != self.key}
        if device is not None:
            ids, mask = torch.from_numpy(ids).to(device), torch.from_numpy(mask).to(device)
        out[f"{self.key}_ids"], out[f"{self.key}_mask"] = ids, mask
        return out

    def _single(self, obs: dict[str, Any] | None) -> dict[str, Any] | None:
        if obs is None:
            return None
        ids, mask = self.encoder([obs[self.key]])
        out = {k: v for k, v in obs.items() if k != self.key}
        out[f"{self.key}_ids"], out[f"{self.key}_mask"] = ids[0], mask[0]
        return out

    def _infos(self, infos: dict[str, Any]) -> dict[str, Any]:
        final = infos.get("final_obs")
        if isinstance(final, dict):
            infos = {**infos, "final_obs": self.observations(final)}
        elif isinstance(final, np.ndarray) and final.dtype == object:
            converted = np.empty(final.shape, dtype=object)
            for i, o in enumerate(final):
                converted[i] = self._single(o)
            infos = {**infos, "final_obs": converted}
        return infos

    def reset(self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None):
        obs, infos = self.env.reset(seed=seed, options=options)
        return self.observations(obs), self._infos(infos)

    def step(self, actions: Any):
        obs, rewards, terminations, truncations, infos = self.env.step(actions)
        return self.observations(obs), rewards, terminations, truncations, self._infos(infos)
