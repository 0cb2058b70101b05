"""The dataset cache: generated once, folder appears whole or not at all."""

from __future__ import annotations

import pytest

from vlarena.datasets import store
from vlarena.datasets.r2r_splits import R2RSplitConfig

TINY = R2RSplitConfig(scenes={"seen": 1, "val_unseen": 1, "test": 1},
                      paths_per_scene={"train": 2, "val_seen": 1, "val_unseen": 2, "test": 1})


def test_generate_once_then_reuse(tmp_path):
    folder = store.generate_r2r(TINY, tmp_path, vlnce=False)
    assert folder == store.r2r_folder(TINY, tmp_path) and (folder / "R2R_val_unseen.json").exists()
    stamp = (folder / "config.json").stat().st_mtime_ns
    assert store.generate_r2r(TINY, tmp_path, vlnce=False) == folder
    assert (folder / "config.json").stat().st_mtime_ns == stamp  # not regenerated
    ds = store.load_r2r(TINY, tmp_path, splits=("val_unseen",))
    assert len(ds.episodes["val_unseen"]) == 2
    other = R2RSplitConfig(**{**TINY.__dict__, "seed": 1})
    assert store.r2r_folder(other, tmp_path) != folder  # the cache key covers the config


def test_failed_generation_leaves_nothing(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(store, "_write", boom)
    with pytest.raises(OSError, match="disk full"):
        store.generate_r2r(TINY, tmp_path)
    assert list((tmp_path / "r2r").iterdir()) == []  # no partial folder, no temporary left


def test_unknown_split_and_data_dir_env(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match=r"unknown R2R split\(s\) \['val'\]; accepted: \['train', 'val_seen'"):
        store.load_r2r(TINY, tmp_path, splits=("val",))
    with pytest.raises(ValueError, match=r"the aug split needs aug_scenes > 0"):
        store.load_r2r(TINY, tmp_path, splits=("aug",))
    monkeypatch.setenv(store.DATA_DIR_ENV, str(tmp_path / "x"))
    assert store.data_dir() == tmp_path / "x"


def test_default_dataset_keeps_its_cache_folder():
    """Adding the aug fields did not move the default dataset's cache (users' generated data stays valid)."""
    assert store.r2r_config_key(R2RSplitConfig()) == "seed0-061f38fb2b"
    assert store.r2r_config_key(R2RSplitConfig(aug_scenes=5)) != store.r2r_config_key(R2RSplitConfig())
