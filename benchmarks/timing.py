"""Timing shared by the benchmark scripts (run as `python benchmarks/<name>.py`, so this imports as `timing`)."""

from __future__ import annotations

import time
from collections.abc import Callable


def timed(fn: Callable[[], object], min_time: float, min_iters: int = 3) -> float:
    """Seconds per call of fn (after one warm-up call), averaged over >= min_time seconds and >= min_iters calls."""
    fn()
    n, start = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_time and n >= min_iters:
            return elapsed / n
