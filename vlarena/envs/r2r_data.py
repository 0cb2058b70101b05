"""The episodes of one R2R split as the two R2R envs use them (graph and continuous).

An R2R path has three instructions; like VLN-CE (and the R2R evaluation's `instr_id`), each
(path, instruction) pair is one episode, with id `f"{path_id}_{k}"`. Only the scenes that the
split's episodes use are kept, in order of first use.

The split `train_aug` is train followed by the paths of `aug_scenes` extra training scenes (the dataset's
`aug` split; VLN-CE's counterpart is `joint_train_envdrop`, train plus EnvDrop's augmented paths). It needs
`aug_scenes > 0`, which makes a dataset folder of its own whose four standard splits are the default ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from vlarena.datasets.navgraph import NavGraph
from vlarena.datasets.r2r import R2REpisode
from vlarena.datasets.r2r_splits import AUG, SPLITS, R2RSplitConfig
from vlarena.datasets.scene import Scene
from vlarena.datasets.store import load_r2r


@dataclass
class R2RDataConfig:
    """Which generated R2R data an env reads (hydra: `env.dataset.*`); None = R2RSplitConfig's default."""

    seed: int = 0
    scenes: dict[str, int] | None = None  # scenes per group: seen, val_unseen, test
    paths_per_scene: dict[str, int] | None = None  # per split: train, val_seen, val_unseen, test
    data_dir: str | None = None  # default $VLARENA_DATA_DIR or ~/.cache/vlarena
    max_episodes: int = 0  # 0: every episode of the split; else the first N (quick runs, tests)
    aug_scenes: int = 0  # extra training scenes for the split train_aug (30 paths each, 3 instructions a path)

    def __post_init__(self) -> None:
        if isinstance(self.max_episodes, bool) or not isinstance(self.max_episodes, int) or self.max_episodes < 0:
            raise ValueError(f"env.dataset.max_episodes must be a non-negative int (0 = all), got {self.max_episodes!r}")
        self.split_config()  # validates the sizes

    def split_config(self) -> R2RSplitConfig:
        sizes = {k: dict(v) for k, v in (("scenes", self.scenes), ("paths_per_scene", self.paths_per_scene)) if v}
        return R2RSplitConfig(seed=self.seed, aug_scenes=self.aug_scenes, **sizes)


@dataclass
class R2RSplit:
    split: str
    scenes: list[Scene]
    graphs: list[NavGraph]
    paths: list[R2REpisode]  # the split's R2R records
    episode_ids: list[str]  # f"{path_id}_{k}", one per (path, instruction)
    instructions: list[str]
    path_of: list[int]  # episode -> index into `paths`
    scene_of: list[int]  # episode -> index into `scenes` / `graphs`

    def reference(self, e: int) -> tuple[int, list[int]]:
        """(scene index, viewpoint indices of the reference path) of episode e."""
        s = self.scene_of[e]
        return s, [self.graphs[s].index[vp] for vp in self.paths[self.path_of[e]].path]


TRAIN_AUG = "train_aug"


def load_split(split: str, config: R2RDataConfig) -> R2RSplit:
    if split not in (*SPLITS, TRAIN_AUG):
        raise ValueError(f"env.split must be one of {[*SPLITS, TRAIN_AUG]} for R2R, got {split!r}")
    if split == TRAIN_AUG and not config.aug_scenes:
        raise ValueError(f"split {TRAIN_AUG!r} is train plus the paths of extra training scenes: set "
                         f"env.kwargs.dataset.aug_scenes to how many (a positive int), got {config.aug_scenes!r}")
    parts = ("train", AUG) if split == TRAIN_AUG else (split,)
    ds = load_r2r(config.split_config(), config.data_dir, splits=parts)
    scans: dict[str, int] = {}
    out = R2RSplit(split, [], [], [e for part in parts for e in ds.episodes[part]], [], [], [], [])
    for p, rec in enumerate(out.paths):
        if rec.scan not in scans:
            scans[rec.scan] = len(out.scenes)
            out.scenes.append(ds.scenes[rec.scan])
            out.graphs.append(ds.graphs[rec.scan])
        for k, text in enumerate(rec.instructions):
            out.episode_ids.append(f"{rec.path_id}_{k}")
            out.instructions.append(text)
            out.path_of.append(p)
            out.scene_of.append(scans[rec.scan])
    if config.max_episodes:
        n = config.max_episodes
        out.episode_ids, out.instructions = out.episode_ids[:n], out.instructions[:n]
        out.path_of, out.scene_of = out.path_of[:n], out.scene_of[:n]
        used = sorted(set(out.scene_of))
        remap = {s: k for k, s in enumerate(used)}
        out.scenes = [out.scenes[s] for s in used]
        out.graphs = [out.graphs[s] for s in used]
        out.scene_of = [remap[s] for s in out.scene_of]
    return out
