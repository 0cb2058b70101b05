"""The on-disk dataset cache: generated R2R splits, written once and read by every env and command.

Layout: `<data_dir>/r2r/<key>/` where `key` is a hash of the generating `R2RSplitConfig`, holding
`config.json` (the config), `scenes/`, `connectivity/`, `R2R_<split>.json` and, unless disabled,
`R2R_VLNCE/<split>/<split>.json.gz` + `<split>_gt.json.gz` (see `r2r_splits`).

`data_dir` is, in order: the argument, `$VLARENA_DATA_DIR`, `~/.cache/vlarena`. A dataset folder
appears whole or not at all: it is written into a temporary sibling folder and renamed into place,
so an interrupted `vlarena data generate` leaves nothing that a later run would mistake for data.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from vlarena.datasets.instructions import generate_instructions
from vlarena.datasets.r2r_splits import AUG, SPLITS, R2RDataset, R2RSplitConfig, load_r2r_dataset, make_r2r_splits
from vlarena.datasets.r2r_splits import write_r2r_dataset as _write

DATA_DIR_ENV = "VLARENA_DATA_DIR"


def data_dir(path: str | os.PathLike | None = None) -> Path:
    """The root of vlarena's dataset cache (argument, else $VLARENA_DATA_DIR, else ~/.cache/vlarena)."""
    if path is not None:
        return Path(path).expanduser()
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV]).expanduser()
    return Path.home() / ".cache" / "vlarena"


def _config_dict(config: R2RSplitConfig) -> dict:
    """The config as hashed and saved; without the aug fields when there are no aug scenes, so that the key (the
    folder) of a config without them is the one it had before they existed."""
    d = dataclasses.asdict(config)
    if not config.aug_scenes:
        del d["aug_scenes"], d["aug_paths_per_scene"]
    return d


def r2r_config_key(config: R2RSplitConfig) -> str:
    blob = json.dumps(_config_dict(config), sort_keys=True)
    return f"seed{config.seed}-{hashlib.sha256(blob.encode()).hexdigest()[:10]}"


def r2r_folder(config: R2RSplitConfig, root: str | os.PathLike | None = None) -> Path:
    return data_dir(root) / "r2r" / r2r_config_key(config)


def generate_r2r(config: R2RSplitConfig, root: str | os.PathLike | None = None, vlnce: bool = True,
                 overwrite: bool = False) -> Path:
    """Generate the splits of `config` into the cache (atomically); returns the dataset folder.
    An existing complete folder is kept unless `overwrite`."""
    folder = r2r_folder(config, root)
    complete = (folder / "config.json").exists() and (not vlnce or (folder / "R2R_VLNCE").exists())
    if complete and not overwrite:
        return folder

    def write(tmp: Path) -> None:
        _write(make_r2r_splits(config, generate_instructions), tmp, vlnce=vlnce)
        (tmp / "config.json").write_text(json.dumps(_config_dict(config), indent=1, sort_keys=True))

    return write_folder(folder, write)


def write_folder(folder: Path, write: Callable[[Path], None], copy_from: Path | None = None) -> Path:
    """Build a dataset folder in a temporary sibling (a copy of `copy_from`, if given, then `write(tmp)`) and
    rename it into place, replacing any old one: readers see the old folder or the new one, never a part."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        if copy_from is not None:
            shutil.copytree(copy_from, tmp, dirs_exist_ok=True)
        write(tmp)
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def load_r2r(config: R2RSplitConfig, root: str | os.PathLike | None = None,
             splits: tuple[str, ...] = SPLITS) -> R2RDataset:
    """The dataset of `config` from the cache, generated first if it is not there yet."""
    unknown = [s for s in splits if s not in config.split_names()]
    if unknown:
        extra = "" if config.aug_scenes or unknown != [AUG] else " (the aug split needs aug_scenes > 0)"
        raise ValueError(f"unknown R2R split(s) {unknown}; accepted: {list(config.split_names())}{extra}")
    folder = r2r_folder(config, root)
    if not (folder / "config.json").exists():
        generate_r2r(config, root, vlnce=False)
    return load_r2r_dataset(folder, splits)
