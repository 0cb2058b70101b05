"""R2R-style splits over generated apartments: train / val_seen / val_unseen / test from one seed.

Scenes come from disjoint seed ranges per split group (`SCENE_SEED_RANGES`), drawn in a seeded
order (`candidate_seeds`); a scene whose graph has fewer qualifying start/goal pairs than the paths
asked of each scene is skipped, so every scene of a group holds the same number of paths. Train and val_seen
share the "seen" scenes (val_seen has new start/goal pairs there, never a train pair in either
direction); val_unseen and test have scenes of their own, so no scene is in two groups. With
`aug_scenes > 0`, a fifth split `aug` holds the paths of that many extra training scenes (group "aug",
seeds of their own): more training data written like every split, as R2R's augmented training sets
(EnvDrop's, PREVALENT's) are; its path ids follow test's, so the four standard splits are the same
with or without it. Every
path is a shortest path of 4-7 viewpoints and 5-20 m (`r2r.sample_paths`); `path_id`s are unique
over all splits, in split order. Instruction text comes from a pluggable function

    instruct(scene, graph, path, rng) -> list[str]   # path: viewpoint indices into graph

(e.g. `vlarena.datasets.instructions.generate_instructions`); when it accepts a keyword
`start_heading` it also gets the start heading in the scene frame (radians, counter-clockwise
from +x). Everything is deterministic given `R2RSplitConfig.seed` (and `instruct`).

On disk (`write_r2r_dataset`, read back by `load_r2r_dataset`):

    <folder>/R2R_<split>.json                        R2R episodes (`r2r`; R2R_aug.json when aug_scenes > 0)
    <folder>/connectivity/<scan>_connectivity.json   graphs (`connectivity`)
    <folder>/scenes/<scan>.json                      scenes (`scene`, version 1)
    <folder>/R2R_VLNCE/<split>/<split>.json.gz       VLN-CE episodes (`vlnce`), optional
    <folder>/R2R_VLNCE/<split>/<split>_gt.json.gz    VLN-CE ground truth (`vlnce_gt`), optional
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vlarena.datasets.connectivity import read_connectivity, write_connectivity
from vlarena.datasets.generate import generate_scene
from vlarena.datasets.navgraph import NavGraph
from vlarena.datasets.navgraph_build import build_nav_graph
from vlarena.datasets.r2r import R2REpisode, heading_to_scene, make_episode, read_r2r, sample_paths, write_r2r
from vlarena.datasets.scene import Scene
from vlarena.datasets.vlnce import build_vocab, r2r_to_vlnce, write_vlnce
from vlarena.datasets.vlnce_gt import vlnce_gt, write_vlnce_gt

SPLITS = ("train", "val_seen", "val_unseen", "test")
AUG = "aug"  # the extra training scenes' paths (R2R_aug.json), only when R2RSplitConfig.aug_scenes > 0
SCENE_SEED_RANGES: dict[str, tuple[int, int]] = {  # [lo, hi) scene seeds per split group
    "seen": (0, 100_000),  # train and val_seen
    "val_unseen": (100_000, 200_000),
    "test": (200_000, 300_000),
    AUG: (300_000, 400_000),
}
GROUP_OF = {"train": "seen", "val_seen": "seen", "val_unseen": "val_unseen", "test": "test", AUG: AUG}

Instruct = Callable[..., list[str]]


@dataclass
class R2RSplitConfig:
    seed: int = 0
    # defaults: 120 seen scenes (3600 train, 360 val_seen paths), 18 val_unseen and 18 test scenes (360 paths
    # each); three instructions per path, like R2R
    scenes: dict[str, int] = field(default_factory=lambda: {"seen": 120, "val_unseen": 18, "test": 18})
    paths_per_scene: dict[str, int] = field(default_factory=lambda: {
        "train": 30, "val_seen": 3, "val_unseen": 20, "test": 20})
    instructions_per_path: int = 3
    min_edges: int = 3
    max_edges: int = 6
    min_distance: float = 5.0
    max_distance: float = 20.0
    aug_scenes: int = 0  # extra training scenes, whose paths (aug_paths_per_scene each) make the split `aug`
    aug_paths_per_scene: int = 30

    def __post_init__(self) -> None:
        groups = [g for g in SCENE_SEED_RANGES if g != AUG]
        if set(self.scenes) != set(groups):
            raise ValueError(f"scenes must give a count for each group {groups}, got {self.scenes}")
        if set(self.paths_per_scene) != set(SPLITS):
            raise ValueError(f"paths_per_scene must give a count for each split {list(SPLITS)}, "
                             f"got {self.paths_per_scene}")
        counts = ({f"scenes[{k!r}]": v for k, v in self.scenes.items()}
                  | {f"paths_per_scene[{k!r}]": v for k, v in self.paths_per_scene.items()}
                  | {"aug_scenes": self.aug_scenes, "aug_paths_per_scene": self.aug_paths_per_scene})
        for name, v in counts.items():
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"{name} must be a non-negative int, got {v!r}")
        if not isinstance(self.instructions_per_path, int) or self.instructions_per_path < 1:
            raise ValueError(f"instructions_per_path must be a positive int, got {self.instructions_per_path!r}")

    def split_names(self) -> tuple[str, ...]:
        """The splits this config generates: the four standard ones, then `aug` when aug_scenes > 0."""
        return (*SPLITS, AUG) if self.aug_scenes else SPLITS


@dataclass
class R2RDataset:
    episodes: dict[str, list[R2REpisode]]  # split -> episodes
    scenes: dict[str, Scene]  # scan -> scene
    graphs: dict[str, NavGraph]  # scan -> graph
    scene_seeds: dict[str, list[int]] = field(default_factory=dict)  # group -> scene seeds


def candidate_seeds(seed: int, group: str) -> Iterator[int]:
    """An endless deterministic stream of distinct scene seeds from the group's range."""
    lo, hi = SCENE_SEED_RANGES[group]
    rng = np.random.default_rng([seed, 0x52325221, lo])
    seen: set[int] = set()
    while len(seen) < hi - lo:
        s = int(lo + rng.integers(hi - lo))
        if s not in seen:
            seen.add(s)
            yield s


def _takes_start_heading(instruct: Instruct) -> bool:
    try:
        return "start_heading" in inspect.signature(instruct).parameters
    except (TypeError, ValueError):
        return False


def make_r2r_splits(config: R2RSplitConfig, instruct: Instruct) -> R2RDataset:
    """Generate scenes, graphs and the four splits of R2R episodes (see the module docstring)."""
    scenes: dict[str, Scene] = {}
    graphs: dict[str, NavGraph] = {}
    seeds: dict[str, list[int]] = {}
    names = config.split_names()
    num_scenes = {**config.scenes, AUG: config.aug_scenes}
    num_paths = {**config.paths_per_scene, AUG: config.aug_paths_per_scene}
    sampled: dict[str, list] = {split: [] for split in names}
    for gi, group in enumerate(SCENE_SEED_RANGES):
        splits = [s for s in names if GROUP_OF[s] == group]
        counts = [num_paths[split] for split in splits]
        seeds[group] = []
        candidates = candidate_seeds(config.seed, group)
        while len(seeds[group]) < num_scenes[group]:
            s = next(candidates)
            scene = generate_scene(s)
            graph = build_nav_graph(scene)
            try:
                paths = sample_paths(graph, np.random.default_rng([config.seed, gi, s]), sum(counts),
                                     config.min_edges, config.max_edges, config.min_distance, config.max_distance)
            except ValueError:  # too small for the paths asked of each scene: skipped
                continue
            seeds[group].append(s)
            scenes[scene.scene_id], graphs[scene.scene_id] = scene, graph
            start = 0
            for split, c in zip(splits, counts, strict=True):
                sampled[split] += [(graph.scan, p) for p in paths[start:start + c]]
                start += c
    with_heading = _takes_start_heading(instruct)
    episodes: dict[str, list[R2REpisode]] = {split: [] for split in names}
    path_id = 0
    for split in names:
        for scan, sp in sampled[split]:
            rng = np.random.default_rng([config.seed, 0x1A57, path_id])
            kwargs = {"start_heading": heading_to_scene(sp.heading)} if with_heading else {}
            texts = instruct(scenes[scan], graphs[scan], list(sp.path), rng, **kwargs)
            texts = list(texts)[: config.instructions_per_path]
            if len(texts) != config.instructions_per_path or not all(isinstance(t, str) and t.strip() for t in texts):
                raise ValueError(f"instruct must return at least {config.instructions_per_path} non-empty strings, "
                                 f"got {texts!r} for path {sp.path} in {scan}")
            episodes[split].append(make_episode(graphs[scan], sp, path_id, texts))
            path_id += 1
    return R2RDataset(episodes, scenes, graphs, seeds)


def write_r2r_dataset(ds: R2RDataset, folder: str | Path, vlnce: bool = True,
                      splits: Sequence[str] | None = None) -> dict[str, Path]:
    """Write the dataset (layout in the module docstring; `splits`: default all of `ds.episodes`); returns the
    written files by name. The VLN-CE vocabulary is built from the train instructions (others map unknown words
    to <unk>)."""
    folder = Path(folder)
    splits = list(ds.episodes) if splits is None else splits
    out: dict[str, Path] = {}
    for scan, scene in ds.scenes.items():
        out[f"scene:{scan}"] = folder / "scenes" / f"{scan}.json"
        scene.save(out[f"scene:{scan}"])
        out[f"connectivity:{scan}"] = write_connectivity(ds.graphs[scan], folder / "connectivity", scene)
    vocab = build_vocab(t for e in ds.episodes.get("train", []) for t in e.instructions)
    eid = 1
    for split in splits:
        out[split] = write_r2r(ds.episodes[split], folder / f"R2R_{split}.json", ds.graphs)
        if vlnce:
            eps = r2r_to_vlnce(ds.episodes[split], ds.graphs, ds.scenes, vocab, first_episode_id=eid)
            eid += len(eps)
            base = folder / "R2R_VLNCE" / split
            out[f"vlnce:{split}"] = write_vlnce(eps, vocab, base / f"{split}.json.gz")
            out[f"vlnce_gt:{split}"] = write_vlnce_gt(vlnce_gt(eps, ds.scenes), base / f"{split}_gt.json.gz")
    return out


def load_r2r_dataset(folder: str | Path, splits: Sequence[str] = SPLITS) -> R2RDataset:
    """Read what `write_r2r_dataset` wrote: scenes, graphs and the R2R episodes of `splits`,
    each episode checked against its scan's graph."""
    folder = Path(folder)
    scenes = {p.stem: Scene.load(p) for p in sorted((folder / "scenes").glob("*.json"))}
    graphs = {}
    for scan in scenes:
        graphs[scan] = read_connectivity(folder / "connectivity" / f"{scan}_connectivity.json", scan)
    episodes = {split: read_r2r(folder / f"R2R_{split}.json", graphs) for split in splits}
    return R2RDataset(episodes, scenes, graphs)
