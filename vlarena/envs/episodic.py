"""What the native batched envs share: episode ids, explicit episode assignment, sampling, action checks.

A subclass sets `episode_ids` (list of str), `num_envs`, `device`, `single_action_space` (Discrete),
`action_meanings` and `_rng` (a CPU torch.Generator), and implements `_start(rows, ep)` (begin
episodes `ep` in the envs where `rows` is True), `_observe()` and `_reset_info()`.
"""

from __future__ import annotations

from typing import Any

import torch
from gymnasium.vector import VectorEnv


class EpisodicVectorEnv(VectorEnv):
    episode_ids: list[str]
    action_meanings: str = ""

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """New episodes in every env: `options["episode_id"]` (one id or index per env) or sampled."""
        if seed is not None:
            self._rng.manual_seed(int(seed))
        options = options or {}
        if "episode_id" in options:
            ids = options["episode_id"]
            ids = [ids] if isinstance(ids, (str, int)) else list(ids)
            if len(ids) != self.num_envs:
                raise ValueError(f"options['episode_id'] must list {self.num_envs} episode ids (one per env), got {len(ids)}")
            ep = torch.tensor([self._episode_index(e) for e in ids], dtype=torch.long, device=self.device)
        else:
            ep = self._sample_episodes()
        self._start(torch.ones(self.num_envs, dtype=torch.bool, device=self.device), ep)
        self._pending_reset = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        return self._observe(), self._reset_info()

    def _episode_index(self, episode_id: str | int) -> int:
        n = len(self.episode_ids)
        if isinstance(episode_id, int) and not isinstance(episode_id, bool) and 0 <= episode_id < n:
            return episode_id
        if not hasattr(self, "_index"):
            self._index = {eid: k for k, eid in enumerate(self.episode_ids)}
        if episode_id in self._index:
            return self._index[episode_id]
        raise ValueError(f"unknown episode_id {episode_id!r}: give one of this env's {n} ids "
                         f"(e.g. {self.episode_ids[0]!r}) or an index in [0, {n - 1}]")

    def _sample_episodes(self) -> torch.Tensor:
        return torch.randint(len(self.episode_ids), (self.num_envs,), generator=self._rng).to(self.device)

    def _check_actions(self, actions: Any) -> torch.Tensor:
        a = torch.as_tensor(actions, device=self.device)
        n = int(self.single_action_space.n)
        if a.shape != (self.num_envs,) or a.is_floating_point() or a.dtype == torch.bool:
            raise ValueError(f"actions must be {self.num_envs} ints (one per env) in [0, {n - 1}] "
                             f"({self.action_meanings}), got dtype {a.dtype} shape {tuple(a.shape)}")
        bad = (a < 0) | (a >= n)
        if bool(bad.any()):
            k = int(bad.nonzero()[0, 0])
            raise ValueError(f"action {int(a[k])} of env {k} is outside the action space: accepted are "
                             f"0..{n - 1} ({self.action_meanings})")
        return a.long()

    # ---- for subclasses ----------------------------------------------------------------------
    def _start(self, rows: torch.Tensor, ep: torch.Tensor) -> None:
        raise NotImplementedError

    def _observe(self) -> dict[str, Any]:
        raise NotImplementedError

    def _reset_info(self) -> dict[str, Any]:
        raise NotImplementedError
