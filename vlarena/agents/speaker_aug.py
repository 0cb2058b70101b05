"""Speaker-Follower instruction augmentation (Fried et al. 2018) for R2R on the navigation graph.

    vlarena speaker --out /data/r2r_aug --encoder runs/pretrain_clip/<run>/encoder.safetensors
    vlarena train experiment=r2r_bc env.kwargs.dataset.data_dir=/data/r2r_aug

1. Features of a path, as the follower sees it: at each viewpoint the panorama (R2R-v0's K views, the
   agent facing the way it came in; the start heading first) encoded by a ViT (a pretrained encoder from
   `vlarena pretrain`, frozen; its tokens averaged per view), plus the move taken there (sin and cos of
   its angle to the heading, its length; zeros at the end, the STOP).
2. The speaker (perception/speaker.py) learns train instruction <- path features, teacher forced; its
   loss on val_seen paths is reported (held-out instructions of the same scenes).
3. New paths are sampled in the train scenes (R2R's path rules, never a start/goal pair of train or
   val_seen), and the speaker writes `instructions_per_path` instructions for each: greedy decoding,
   then samples at `temperature`.
4. A copy of the dataset folder goes to `<out>/r2r/<key>/` with R2R_train.json holding the original
   train paths and the new ones (path ids after the largest existing one). Point an env at it with
   `env.kwargs.dataset.data_dir=<out>`; the other splits are the original files (the VLN-CE files are
   not augmented).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vlarena.datasets.jsonio import write_json
from vlarena.datasets.r2r import heading_to_scene, make_episode, sample_paths, write_r2r
from vlarena.datasets.store import load_r2r, r2r_folder, write_folder
from vlarena.envs.r2r_data import R2RDataConfig, R2RSplit, load_split
from vlarena.envs.r2r_graph import R2RGraphConfig, panorama_poses, stitch_panorama
from vlarena.envs.renderer import Renderer
from vlarena.envs.scene_tensors import SceneTensors
from vlarena.perception.speaker import Speaker, WordVocab
from vlarena.policies.checkpoint import save_tensors
from vlarena.policies.config import VisionConfig
from vlarena.policies.vision import VisionEncoder

MAX_WORDS = 96


@dataclass
class SpeakerAugConfig:
    out: str
    encoder: str | None = None  # a ViT from `vlarena pretrain`; None: a random ViT (weak features)
    vision: VisionConfig = field(default_factory=lambda: VisionConfig(image_size=[32, 128], patch_size=16))
    views: int = 4
    width: int = 32
    height: int = 32
    dataset: dict[str, Any] = field(default_factory=dict)
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    hidden: int = 256
    new_paths_per_scene: int = 30
    temperature: float = 0.7
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        if isinstance(self.vision, dict):
            self.vision = VisionConfig(**self.vision)
        if self.encoder:
            self.vision.weights = self.encoder
        for name in ("epochs", "batch_size", "hidden", "new_paths_per_scene"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"speaker {name} must be a positive int, got {value!r}")
        if not self.temperature > 0:
            raise ValueError(f"speaker temperature must be positive, got {self.temperature}")


class PathFeaturizer:
    """Per-step features (T, K * width + 3) of paths in one split's scenes."""

    def __init__(self, data: R2RSplit, cfg: SpeakerAugConfig):
        self.data, self.cfg = data, cfg
        self.device = torch.device(cfg.device)
        render = R2RGraphConfig(views=cfg.views, width=cfg.width, height=cfg.height).render_config()
        self.renderer = Renderer(SceneTensors.from_scenes(data.scenes, device=self.device), render)
        self.encoder = VisionEncoder(cfg.vision).to(self.device).eval()
        rows, cols = cfg.vision.grid
        if cols % cfg.views:
            raise ValueError(f"the ViT's {cols} token columns do not split into {cfg.views} views")

    @property
    def dim(self) -> int:
        return self.cfg.views * self.encoder.out_dim + 3

    def steps(self, scene: int, path: list[int], start_heading: float) -> tuple[np.ndarray, np.ndarray]:
        """(poses (T, 3) x, y, heading; moves (T, 3) sin, cos, length) along a path of viewpoint indices."""
        pos = self.data.graphs[scene].positions[:, :2]
        heading, poses, moves = start_heading, [], []
        for i, vp in enumerate(path):
            poses.append((*pos[vp], heading))
            if i + 1 < len(path):
                d = pos[path[i + 1]] - pos[vp]
                turn = math.atan2(d[1], d[0]) - heading
                moves.append((math.sin(turn), math.cos(turn), float(np.hypot(*d))))
                heading = math.atan2(d[1], d[0])
            else:
                moves.append((0.0, 0.0, 0.0))
        return np.asarray(poses, np.float32), np.asarray(moves, np.float32)

    @torch.no_grad()
    def __call__(self, paths: list[tuple[int, list[int], float]], batch: int = 256) -> list[torch.Tensor]:
        """Features of paths given as (scene index, viewpoint indices, start heading in scene radians)."""
        steps = [self.steps(*p) for p in paths]
        scene = np.concatenate([np.full(len(s[0]), p[0]) for p, s in zip(paths, steps, strict=True)])
        poses = torch.tensor(np.concatenate([s[0] for s in steps]), device=self.device)
        feats = []
        k, rows, cols = self.cfg.views, *self.cfg.vision.grid
        for start in range(0, len(poses), batch):
            pose = poses[start:start + batch]
            s = torch.tensor(scene[start:start + batch], device=self.device)
            out = self.renderer.render(s.repeat_interleave(k), panorama_poses(pose[:, :2], pose[:, 2], k),
                                       outputs=("rgb",))
            tokens = self.encoder(stitch_panorama(out["rgb"], k))[0]  # (b, rows * cols, D)
            per_view = tokens.view(len(pose), rows, k, cols // k, -1).mean(dim=(1, 3))  # (b, K, D)
            feats.append(per_view.flatten(1).cpu())
        visual = torch.cat(feats)
        moves = torch.tensor(np.concatenate([s[1] for s in steps]))
        return list(torch.cat([visual, moves], dim=1).split([len(s[0]) for s in steps]))


def _pad(features: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(f) for f in features])
    out = torch.nn.utils.rnn.pad_sequence(features, batch_first=True)
    return out, torch.arange(out.shape[1])[None] < lengths[:, None]


def _split_paths(data: R2RSplit) -> list[tuple[int, list[int], float, list[str]]]:
    """(scene index, viewpoint indices, start heading, instructions) of each path of a split."""
    out, seen = [], set()
    for e in range(len(data.episode_ids)):
        p = data.path_of[e]
        if p in seen:
            continue
        seen.add(p)
        scene, vps = data.reference(e)
        out.append((scene, vps, data.paths[p].scene_heading, list(data.paths[p].instructions)))
    return out


def train_speaker(cfg: SpeakerAugConfig, train: list, features: list[torch.Tensor], val: list,
                  val_features: list[torch.Tensor]) -> tuple[Speaker, WordVocab, dict[str, float]]:
    torch.manual_seed(cfg.seed)
    vocab = WordVocab.build(t for p in train for t in p[3])
    pairs = [(i, vocab.encode(t, MAX_WORDS)) for i, p in enumerate(train) for t in p[3]]
    speaker = Speaker(features[0].shape[1], len(vocab), hidden=cfg.hidden).to(cfg.device)
    opt = torch.optim.Adam(speaker.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed)

    def batch_loss(items: list[tuple[int, list[int]]], feats: list[torch.Tensor]) -> torch.Tensor:
        f, m = _pad([feats[i] for i, _ in items])
        tokens = torch.nn.utils.rnn.pad_sequence([torch.tensor(t) for _, t in items], batch_first=True)
        return speaker.loss(f.to(cfg.device), m.to(cfg.device), tokens.to(cfg.device))

    first = last = float("nan")
    for epoch in range(cfg.epochs):
        order = torch.randperm(len(pairs), generator=gen).tolist()
        losses = []
        for s in range(0, len(order), cfg.batch_size):
            loss = batch_loss([pairs[i] for i in order[s:s + cfg.batch_size]], features)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(speaker.parameters(), 5.0)
            opt.step()
            losses.append(loss.item())
        first = sum(losses[:20]) / len(losses[:20]) if epoch == 0 else first
        last = sum(losses) / len(losses)
        print(f"speaker epoch {epoch + 1}/{cfg.epochs}: train loss {last:.3f}", flush=True)
    speaker.eval()
    val_pairs = [(i, vocab.encode(t, MAX_WORDS)) for i, p in enumerate(val) for t in p[3]]
    with torch.no_grad():
        val_loss = [batch_loss(val_pairs[s:s + 256], val_features).item() for s in range(0, len(val_pairs), 256)]
    stats = {"speaker_first_loss": first, "speaker_train_loss": last,
             "speaker_val_seen_loss": sum(val_loss) / len(val_loss)}
    return speaker, vocab, stats


@torch.no_grad()
def write_instructions(speaker: Speaker, vocab: WordVocab, features: list[torch.Tensor], n: int,
                       temperature: float, seed: int, batch: int = 256) -> list[list[str]]:
    """n instructions per path: the greedy one, then samples at `temperature`."""
    gen = torch.Generator().manual_seed(seed)
    out: list[list[str]] = [[] for _ in features]
    dev = next(speaker.parameters()).device
    for s in range(0, len(features), batch):
        f, m = _pad(features[s:s + batch])
        f, m = f.to(dev), m.to(dev)
        for k in range(n):
            ids = speaker.generate(f, m, max_len=MAX_WORDS, greedy=k == 0, temperature=temperature, generator=gen)
            for i, row in enumerate(ids.tolist()):
                text = vocab.decode(row)
                out[s + i].append(text if text.strip() else "stop")
    return out


def run_speaker_augmentation(cfg: SpeakerAugConfig) -> dict[str, Any]:
    t0 = time.time()
    data_cfg = R2RDataConfig(**cfg.dataset)
    split_cfg = data_cfg.split_config()
    if r2r_folder(split_cfg, cfg.out).resolve() == r2r_folder(split_cfg, data_cfg.data_dir).resolve():
        raise ValueError(f"speaker --out {cfg.out} is the source data dir: the augmented copy would replace the "
                         f"original dataset; give another folder")
    train_data = load_split("train", data_cfg)
    featurize = PathFeaturizer(train_data, cfg)
    train = _split_paths(train_data)
    val_data = load_split("val_seen", data_cfg)
    scan_index = {g.scan: i for i, g in enumerate(train_data.graphs)}
    val = [(scan_index[val_data.graphs[s].scan], v, h, t) for s, v, h, t in _split_paths(val_data)]
    features = featurize([p[:3] for p in train])
    val_features = featurize([p[:3] for p in val])
    speaker, vocab, stats = train_speaker(cfg, train, features, val, val_features)

    ds = load_r2r(split_cfg, data_cfg.data_dir)
    rng = np.random.default_rng([cfg.seed, 0x5EA4])
    new_paths, new_meta = [], []
    for s, graph in enumerate(train_data.graphs):
        taken = {(graph.index[e.path[0]], graph.index[e.path[-1]]) for split in ("train", "val_seen")
                 for e in ds.episodes[split] if e.scan == graph.scan}
        try:
            sampled = sample_paths(graph, rng, cfg.new_paths_per_scene, split_cfg.min_edges, split_cfg.max_edges,
                                   split_cfg.min_distance, split_cfg.max_distance, exclude=taken)
        except ValueError:
            continue  # a scene without that many more pairs
        for sp in sampled:
            new_paths.append((s, list(sp.path), heading_to_scene(sp.heading)))
            new_meta.append((graph, sp))
    texts = write_instructions(speaker, vocab, featurize(new_paths), split_cfg.instructions_per_path,
                               cfg.temperature, cfg.seed)
    next_id = 1 + max(e.path_id for split in ds.episodes.values() for e in split)
    augmented = [make_episode(g, sp, next_id + i, t) for i, ((g, sp), t) in enumerate(zip(new_meta, texts,
                                                                                          strict=True))]
    src, dst = r2r_folder(split_cfg, data_cfg.data_dir), r2r_folder(split_cfg, cfg.out)
    write_folder(dst, lambda folder: write_r2r(ds.episodes["train"] + augmented, folder / "R2R_train.json",
                                               ds.graphs), copy_from=src)
    out = Path(cfg.out)
    save_tensors(out / "speaker.safetensors", speaker.state_dict(), metadata={"format": "vlarena.speaker"})
    write_json(out / "speaker_vocab.json", vocab.to_dict(), indent=1)
    summary = {**stats, "train_paths": len(train), "new_paths": len(augmented),
               "train_episodes_after": sum(len(e.instructions) for e in ds.episodes["train"] + augmented),
               "examples": [t[0] for t in texts[:5]], "dataset": str(dst), "seconds": round(time.time() - t0, 1)}
    write_json(out / "speaker_summary.json", summary, indent=1)
    return summary

