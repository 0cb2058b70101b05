"""`vlarena quickstart` end to end on a tiny R2R dataset: train, evaluate, the floors beside it, the GIF."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from tests.test_r2r_envs import SIZES, hydra_dict
from vlarena.cli import main


def dataset_args(tmp_path) -> list[str]:
    return [f"env.kwargs.dataset.data_dir={tmp_path / 'data'}",
            f"env.kwargs.dataset.scenes={hydra_dict(SIZES['scenes'])}",
            f"env.kwargs.dataset.paths_per_scene={hydra_dict(SIZES['paths_per_scene'])}"]


def test_quickstart_trains_evaluates_and_prints_floors(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    args = ["quickstart", "policy=tiny", "policy.vision.image_size=[16,64]", "policy.vision.patch_size=8",
            "env.kwargs.width=16", "env.kwargs.height=16", "num_envs=4", "agent.total_steps=160",
            "agent.num_steps=10", "agent.progress=false", "eval.num_envs=8", f"run_dir={run}", *dataset_args(tmp_path)]
    assert main(args) == 0
    out = capsys.readouterr().out
    trained = json.loads((run / "eval_val_unseen" / "summary.json").read_text())
    floors = {a: json.loads((run / "floors" / a / "summary.json").read_text()) for a in ("random", "oracle")}
    n = 3 * SIZES["paths_per_scene"]["val_unseen"] * SIZES["scenes"]["val_unseen"]
    assert trained["num_episodes"] == floors["random"]["num_episodes"] == floors["oracle"]["num_episodes"] == n
    assert floors["oracle"]["success_rate"] == 1.0 and floors["oracle"]["spl"] == 1.0
    for name, summary in [("quickstart", trained), *floors.items()]:  # the table holds the files' numbers
        assert f"{name:<16}{summary['success_rate']:>8.3f}{summary['spl']:>8.3f}" in out
    gif = Image.open(run / "episodes.gif")
    assert gif.n_frames >= 2 and gif.width == 64 * 3  # the 16x64 panorama strip, scaled 3x

    # `vlarena eval checkpoint=<run>` scores the trained policy again: the same numbers, deterministic
    again = ["eval", "env=r2r", f"checkpoint={run}", "split=val_unseen", "num_envs=8", "progress=false",
             f"out_dir={tmp_path / 'again'}", *dataset_args(tmp_path)]
    assert main([*again, "env.kwargs.width=16", "env.kwargs.height=16"]) == 0
    summary = json.loads((tmp_path / "again" / "summary.json").read_text())
    assert summary["agent"] == "policy"
    assert {k: summary[k] for k in ("success_rate", "spl", "ndtw")} == {k: trained[k] for k in ("success_rate", "spl",
                                                                                              "ndtw")}
    with pytest.raises(SystemExit):  # the default 64x64 views: not what the policy was trained on
        main(again)
    assert "was trained on observation 'depth' of shape (16, 64, 1), the env gives (64, 256, 1)" in capsys.readouterr().err
