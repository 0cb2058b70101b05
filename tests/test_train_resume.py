"""`vlarena train` killed with SIGKILL mid-run resumes from its last checkpoint (`agent.resume=true`) and ends where
an uninterrupted run ends; a corrupt checkpoint is refused with a message naming the file. (The NaN stop that keeps
the last good checkpoint is tested in test_agents_checkpoint.py.)"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.agent_helpers import one_thread  # noqa: F401  (fixture: torch on one thread in this process)
from tests.test_train_cli import TINY
from vlarena.cli import main

STEPS_PER_UPDATE = 4 * 16  # num_envs x agent.num_steps of TINY
UPDATES = 8
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def train_cmd(run: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "vlarena.cli", "train", "agent=ppo", f"agent.total_steps={UPDATES * STEPS_PER_UPDATE}",
            "agent.checkpoint_every=1", "eval.enabled=false", f"run_dir={run}", *TINY, *extra]


def latest_step(run: Path) -> int:
    """The step of the checkpoint `latest` names (-1 before the first)."""
    try:
        return int((run / "checkpoints" / "latest").read_text().strip().removeprefix("step_"))
    except (FileNotFoundError, ValueError):  # not written yet (it appears atomically, but may be empty on a race)
        return -1


def metric_lines(run: Path) -> list[str]:
    return (run / "metrics.jsonl").read_text().splitlines()


def test_sigkilled_run_resumes_from_its_checkpoint_and_ends_like_an_uninterrupted_run(tmp_path, monkeypatch):
    full, killed = tmp_path / "full", tmp_path / "killed"
    with open(tmp_path / "killed.log", "w") as log:
        victim = subprocess.Popen(train_cmd(killed), cwd=tmp_path, env=ENV, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while latest_step(killed) < 2 * STEPS_PER_UPDATE:  # a checkpoint after update >= 2
            assert victim.poll() is None, (tmp_path / "killed.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "no checkpoint after update 2 within 120 s"
            time.sleep(0.01)
        os.kill(victim.pid, signal.SIGKILL)
        assert victim.wait(timeout=30) == -signal.SIGKILL
    resumed_from = latest_step(killed)  # it may have saved one more between the poll and the kill
    assert 2 * STEPS_PER_UPDATE <= resumed_from < UPDATES * STEPS_PER_UPDATE  # killed mid-run
    before = metric_lines(killed)

    proc = subprocess.run(train_cmd(killed, "agent.resume=true"), cwd=tmp_path, env=ENV, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the resumed run started from the checkpoint's counters, not from 0
    update = resumed_from // STEPS_PER_UPDATE
    assert f"resumed from {killed / 'checkpoints' / f'step_{resumed_from}'} at update {update}, step {resumed_from}" \
        in proc.stdout, proc.stdout

    monkeypatch.chdir(tmp_path)  # the uninterrupted run, in this process (its imports are done)
    assert main(train_cmd(full)[3:]) == 0
    final = UPDATES * STEPS_PER_UPDATE
    assert latest_step(killed) == latest_step(full) == final
    for run in (full, killed):
        state = torch.load(run / "checkpoints" / f"step_{final}" / "trainer_state.pt", weights_only=True)
        assert state["counters"]["update"] == UPDATES and state["counters"]["step"] == final
    steps = [json.loads(line)["step"] for line in metric_lines(killed)]
    assert steps == [json.loads(line)["step"] for line in metric_lines(full)]
    assert steps == list(range(STEPS_PER_UPDATE, final + 1, STEPS_PER_UPDATE))  # increasing, no duplicates, no gap
    assert [json.loads(line)["counters/update"] for line in metric_lines(killed)] == list(range(1, UPDATES + 1))
    # the lines the killed run logged up to its checkpoint are kept as they were (a restart would rewrite them:
    # time/fps differ between processes), the ones past it are replaced by the resumed run's
    kept = [line for line in before if json.loads(line)["step"] <= resumed_from]
    assert metric_lines(killed)[: len(kept)] == kept and len(kept) == update
    times = [json.loads(line)["time"] for line in metric_lines(killed)]
    assert times == sorted(times)  # the clock continues from the checkpoint too


@pytest.fixture(scope="module")
def one_checkpoint(tmp_path_factory):
    """A run directory with one checkpoint (1 update of the TINY config), made in-process."""
    root = tmp_path_factory.mktemp("ckpt")
    cwd = os.getcwd()
    os.chdir(root)
    try:
        assert main(["train", "agent=ppo", f"agent.total_steps={STEPS_PER_UPDATE}", "eval.enabled=false",
                     f"run_dir={root / 'run'}", *TINY]) == 0
    finally:
        os.chdir(cwd)
    return root / "run"


@pytest.mark.parametrize("file, expected", [
    ("trainer_state.pt", "trainer_state.pt cannot be read as a weights-only torch file"),
    ("model.safetensors", "model.safetensors cannot be read as safetensors"),
])
def test_a_corrupt_checkpoint_stops_resume_with_the_file_named(one_checkpoint, tmp_path, monkeypatch, capsys, file,
                                                               expected):
    run = tmp_path / "run"
    shutil.copytree(one_checkpoint, run)
    target = run / "checkpoints" / f"step_{STEPS_PER_UPDATE}" / file
    target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])  # truncated, as by a full disk
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "agent=ppo", f"agent.total_steps={2 * STEPS_PER_UPDATE}", "eval.enabled=false",
              "agent.resume=true", f"run_dir={run}", *TINY])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"vlarena train: error: {target}") and expected in err, err
    assert "corrupt or truncated; delete" in err and "Traceback" not in err
    assert [json.loads(line)["step"] for line in metric_lines(run)] == [STEPS_PER_UPDATE]  # logs untouched
