"""Speaker-Follower augmentation: path features, and a dataset copy whose train split gains speaker-written paths."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tests.helpers import TINY_PANORAMA_VIT, TINY_R2R
from vlarena.agents.speaker_aug import PathFeaturizer, SpeakerAugConfig, run_speaker_augmentation
from vlarena.envs.r2r_data import R2RDataConfig, load_split

VISION = TINY_PANORAMA_VIT


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return {**TINY_R2R, "data_dir": str(tmp_path_factory.mktemp("data"))}


def test_path_steps_face_the_way_the_agent_came(dataset):
    data = load_split("train", R2RDataConfig(**dataset))
    cfg = SpeakerAugConfig(out="unused", vision=dict(VISION), width=16, height=16, dataset=dataset)
    featurize = PathFeaturizer(data, cfg)
    scene, path = data.reference(0)
    poses, moves = featurize.steps(scene, path, 0.3)
    pos = data.graphs[scene].positions[:, :2]
    assert poses[0, 2] == pytest.approx(0.3)
    d = pos[path[1]] - pos[path[0]]
    assert poses[1, 2] == pytest.approx(math.atan2(d[1], d[0]), abs=1e-6)  # heading after the first move
    turn = math.atan2(d[1], d[0]) - 0.3
    np.testing.assert_allclose(moves[0], [math.sin(turn), math.cos(turn), np.hypot(*d)], rtol=1e-5)
    assert moves[-1].tolist() == [0.0, 0.0, 0.0]  # STOP
    feats = featurize([(scene, path, 0.3), (scene, path[:2], 0.3)])
    assert feats[0].shape == (len(path), 4 * 32 + 3) and feats[1].shape == (2, 4 * 32 + 3)
    torch.testing.assert_close(feats[1][0, :-3], feats[0][0, :-3])  # same place, same view


def test_augmented_dataset_keeps_the_original_paths_and_adds_speaker_paths(dataset, tmp_path):
    torch.set_num_threads(1)
    cfg = SpeakerAugConfig(out=str(tmp_path / "aug"), vision=dict(VISION), width=16, height=16, dataset=dataset,
                           epochs=30, hidden=64, new_paths_per_scene=4, batch_size=8, lr=3e-3)
    summary = run_speaker_augmentation(cfg)
    assert summary["speaker_train_loss"] < summary["speaker_first_loss"] - 1.0
    assert math.isfinite(summary["speaker_val_seen_loss"])
    original = load_split("train", R2RDataConfig(**dataset))
    augmented = load_split("train", R2RDataConfig(**{**dataset, "data_dir": str(tmp_path / "aug")}))
    n_new = summary["new_paths"]
    assert n_new == 2 * 4 and len(augmented.paths) == len(original.paths) + n_new
    assert augmented.instructions[:len(original.instructions)] == original.instructions
    new = augmented.paths[len(original.paths):]
    assert all(len(p.instructions) == 3 and all(t.strip() for t in p.instructions) for p in new)
    starts = {(p.scan, p.path[0], p.path[-1]) for p in original.paths}
    assert not any((p.scan, p.path[0], p.path[-1]) in starts for p in new)
    # the other splits are untouched copies
    val = load_split("val_unseen", R2RDataConfig(**{**dataset, "data_dir": str(tmp_path / "aug")}))
    assert val.instructions == load_split("val_unseen", R2RDataConfig(**dataset)).instructions


def test_augmentation_refuses_to_write_over_its_source(dataset):
    cfg = SpeakerAugConfig(out=dataset["data_dir"], vision=dict(VISION), width=16, height=16, dataset=dataset)
    with pytest.raises(ValueError, match="is the source data dir"):
        run_speaker_augmentation(cfg)
