"""RunLogger: scalar metrics to TensorBoard (`run_dir/tb`) and to `run_dir/metrics.jsonl`.

Each `log(step, metrics)` writes one TensorBoard scalar per metric and one JSON line
`{"step": N, "time": seconds since the logger opened (plus the time logged before a resume), **metrics}`;
non-finite values are written as null in the JSON (strict JSON has no NaN).

Resume: `RunLogger(run_dir, resume_step=N)` continues a killed run at its restored step. Lines of
metrics.jsonl past step N (logged after the checkpoint the run resumes from, or cut off by the
kill) are dropped, atomically, and TensorBoard gets `purge_step=N + 1`, which hides the events the
killed run wrote past N. So both logs read as one uninterrupted run.

`enabled=False` (ranks other than 0 in data-parallel training) makes every call a no-op.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vlarena.policies.checkpoint import atomic_write

METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tb"


class RunLogger:
    def __init__(self, run_dir: str | os.PathLike, resume_step: int | None = None, tensorboard: bool = True,
                 enabled: bool = True):
        self.run_dir = Path(run_dir)
        self.enabled = enabled
        self.writer = None
        self._file = None
        self._time0 = time.time()
        if not enabled:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        path = self.run_dir / METRICS_FILE
        if resume_step is not None:
            self._time0 -= self._truncate(path, resume_step)
        elif path.exists():
            raise FileExistsError(f"{path} exists: resume the run (resume=true) or use a new run directory")
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            purge = None if resume_step is None else resume_step + 1
            self.writer = SummaryWriter(log_dir=str(self.run_dir / TENSORBOARD_DIR), purge_step=purge)
        self._file = open(path, "a")

    @staticmethod
    def _truncate(path: Path, step: int) -> float:
        """Keep the complete lines with step <= `step`; returns the last kept time (0 when none)."""
        if not path.exists():
            return 0.0
        kept, last_time = [], 0.0
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:  # a line cut off by the kill
                continue
            if isinstance(row, dict) and isinstance(row.get("step"), int) and row["step"] <= step:
                kept.append(line)
                last_time = float(row.get("time") or 0.0)
        atomic_write(path, lambda tmp: Path(tmp).write_text("".join(k + "\n" for k in kept)))
        return last_time

    def log(self, step: int, metrics: Mapping[str, Any]) -> None:
        if not self.enabled:
            return
        row: dict[str, Any] = {"step": int(step), "time": round(time.time() - self._time0, 3)}
        for key, value in metrics.items():
            value = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value
            row[key] = value if not isinstance(value, float) or math.isfinite(value) else None
            if self.writer is not None and isinstance(value, float):
                self.writer.add_scalar(key, value, int(step))
        assert self._file is not None
        self._file.write(json.dumps(row) + "\n")
        self._file.flush()

    def flush(self) -> None:
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        if self._file is not None:
            self._file.close()
            self._file = None


def read_metrics(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows of `run_dir/metrics.jsonl` (complete lines only)."""
    path = Path(run_dir) / METRICS_FILE
    rows = []
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows
