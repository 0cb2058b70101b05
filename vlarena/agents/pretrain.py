"""`vlarena pretrain method=clip|mae|moco|vqvae`: pretrain the policy's ViT on simulator frames.

    vlarena pretrain method=clip                       # (frame, caption) pairs of the train split
    vlarena train experiment=r2r_bc policy.vision.weights=<run>/encoder.safetensors [policy.freeze_vision=true]

Data: `num_frames` panoramas of `split` (R2R-v0's views, vlarena/envs/captions.py) with ground-truth
captions; the ViT is the one `vision` configures (by default r2r_bc's: 4 views of 32x32 -> [32, 128],
16 px patches). Training: AdamW, cosine learning-rate decay, gradient norm clipped at 1, `epochs`
passes in shuffled batches. A NaN or inf loss stops the run with its step, before any file is written.

The run directory gets `encoder.safetensors` (the ViT alone, `save_vision_weights`; the heads are
dropped), `metrics.jsonl` + TensorBoard logs, `config.yaml` and `summary.json`: the loss over the first
20 steps (MoCo: the first 20 once its queue holds only real keys; before, its random negatives are easy) and
the last 20, the loss on `eval_split` frames, and for CLIP the zero-shot frame -> caption
retrieval on `eval_split` (val_unseen: scenes never trained on). Retrieval: the eval frames in groups of
`retrieval_candidates`; each frame ranks the group's captions; top-k counts the frame right when one of
its k best captions reads exactly as its own (a caption shared by two frames of a group is right for both).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from vlarena.agents.logging_utils import RunLogger
from vlarena.agents.pretrain_objectives import ClipObjective, MethodConfig, build_objective
from vlarena.datasets.jsonio import write_json
from vlarena.envs.captions import CaptionSet, render_caption_set
from vlarena.envs.r2r_data import R2RDataConfig
from vlarena.perception.contrastive import check_queue_size
from vlarena.policies.config import VisionConfig
from vlarena.policies.vision import VisionEncoder, save_vision_weights

ENCODER_FILE = "encoder.safetensors"


@dataclass
class PretrainConfig:
    method: MethodConfig = field(default_factory=MethodConfig)
    vision: VisionConfig = field(default_factory=lambda: VisionConfig(image_size=[32, 128], patch_size=16))
    split: str = "train"
    num_frames: int = 20000
    views: int = 4
    width: int = 32
    height: int = 32
    hfov_deg: float | None = None  # of one view; None: 360 / views (R2R's panorama)
    dataset: dict[str, Any] = field(default_factory=dict)  # R2RDataConfig fields
    epochs: int = 10
    batch_size: int = 128
    lr: float = 5e-4
    weight_decay: float = 0.05
    seed: int = 0
    device: str = "cpu"
    eval_split: str = "val_unseen"
    eval_frames: int = 1000
    retrieval_candidates: int = 100
    log_every: int = 20
    progress: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.method, dict):
            self.method = MethodConfig(**self.method)
        if isinstance(self.vision, dict):
            self.vision = VisionConfig(**self.vision)
        for name in ("num_frames", "epochs", "batch_size", "eval_frames", "retrieval_candidates", "log_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"pretrain.{name} must be a positive int, got {value!r}")
        if self.batch_size > self.num_frames:
            raise ValueError(f"batch_size {self.batch_size} is larger than the dataset (num_frames {self.num_frames})")
        if self.method.name == "moco":
            check_queue_size(self.method.queue_size, self.num_frames)
        if self.method.name == "clip" and self.eval_frames < self.retrieval_candidates:
            raise ValueError(f"caption retrieval among retrieval_candidates={self.retrieval_candidates} needs "
                             f"eval_frames >= {self.retrieval_candidates}, got {self.eval_frames}")
        R2RDataConfig(**self.dataset)  # validates the dataset fields

    def data(self, split: str, num: int, seed: int) -> CaptionSet:
        return render_caption_set(split, R2RDataConfig(**self.dataset), num, self.views, self.width, self.height,
                                  seed, device=self.device, hfov_deg=self.hfov_deg)


def _batches(data: CaptionSet, vision: VisionEncoder, idx: torch.Tensor, size: int, device: torch.device):
    for start in range(0, len(idx), size):
        rows = idx[start:start + size]
        pixels = vision.preprocess(data.rgb[rows].to(device))
        yield {"pixels": pixels, "captions": [data.captions[i] for i in rows.tolist()]}


@torch.no_grad()
def caption_retrieval(objective: ClipObjective, data: CaptionSet, candidates: int = 100,
                      batch: int = 256) -> dict[str, float]:
    """Zero-shot frame -> caption retrieval among groups of `candidates` frames (top-1 and top-5)."""
    if len(data) < candidates:
        raise ValueError(f"caption retrieval among {candidates} candidates needs at least {candidates} frames, "
                         f"got {len(data)}")
    objective.eval()
    dev = objective.text_head.weight.device
    order = torch.arange(len(data))
    img = torch.cat([objective.embed_images(b["pixels"]) for b in _batches(data, objective.vision, order, batch, dev)])
    txt = torch.cat([objective.embed_texts(data.captions[s:s + batch]) for s in range(0, len(data), batch)])
    img, txt = torch.nn.functional.normalize(img, dim=1), torch.nn.functional.normalize(txt, dim=1)
    hits = {1: 0, 5: 0}
    groups = len(data) // candidates
    for g in range(groups):
        sl = slice(g * candidates, (g + 1) * candidates)
        caps = data.captions[sl]
        ranked = (img[sl] @ txt[sl].t()).argsort(dim=1, descending=True)
        for i, row in enumerate(ranked.tolist()):
            for k in hits:
                hits[k] += any(caps[j] == caps[i] for j in row[:k])
    n = groups * candidates
    objective.train()
    return {"retrieval_top1": hits[1] / n, "retrieval_top5": hits[5] / n, "retrieval_frames": n}


@torch.no_grad()
def _eval_loss(objective: torch.nn.Module, data: CaptionSet, cfg: PretrainConfig, device: torch.device) -> float:
    """The mean loss over held-out frames; on a copy, so MoCo's momentum step and queue stay as trained."""
    objective = copy.deepcopy(objective)
    objective.eval()
    torch.manual_seed(cfg.seed + 1)  # MAE's masks
    losses = [float(objective.loss(b)[0]) for b in _batches(data, objective.vision, torch.arange(len(data)),
                                                             cfg.batch_size, device) if len(b["captions"]) > 1]
    return sum(losses) / max(1, len(losses))


def run_pretrain(cfg: PretrainConfig, out_dir: str | Path) -> dict[str, Any]:
    out_dir = Path(out_dir)
    device = torch.device(cfg.device)
    torch.manual_seed(cfg.seed)
    t0 = time.time()
    data = cfg.data(cfg.split, cfg.num_frames, cfg.seed)
    held_out = cfg.data(cfg.eval_split, cfg.eval_frames, cfg.seed + 1)
    vision = VisionEncoder(cfg.vision)
    vision.preprocess(data.rgb[:1])  # frames that do not fit the ViT fail here, naming both sizes
    objective = build_objective(vision, cfg.method, data.captions, cfg.seed).to(device)
    params = [p for p in objective.parameters() if p.requires_grad]
    # no decay on gains, biases, position embeddings, mask tokens and CLIP's temperature (as CLIP and MAE do)
    decay = [p for p in params if p.dim() >= 2 and p.shape[0] > 1]
    keep = [p for p in params if not (p.dim() >= 2 and p.shape[0] > 1)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay}, {"params": keep, "weight_decay": 0.0}],
                            lr=cfg.lr)
    steps_per_epoch = math.ceil(len(data) / cfg.batch_size)
    total = cfg.epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
    logger = RunLogger(out_dir)
    gen = torch.Generator().manual_seed(cfg.seed)
    history: list[float] = []
    step = 0
    bar = tqdm(total=total, desc=f"pretrain {cfg.method.name}", disable=not cfg.progress)
    for _ in range(cfg.epochs):
        for batch in _batches(data, vision, torch.randperm(len(data), generator=gen), cfg.batch_size, device):
            if len(batch["captions"]) < 2:
                continue  # a last batch of one row has no negatives
            with autocast:
                loss, logs = objective.loss(batch)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"pretrain {cfg.method.name}: the loss is {float(loss)} at step {step}; "
                                         f"no encoder was written (try a lower lr)")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            if hasattr(objective, "after_step"):
                objective.after_step()
            step += 1
            history.append(loss.item())
            bar.update(1)
            if step % cfg.log_every == 0 or step == total:
                logger.log(step, {"loss": sum(history[-cfg.log_every:]) / len(history[-cfg.log_every:]),
                                  "lr": sched.get_last_lr()[0], **logs})
                bar.set_postfix(loss=f"{history[-1]:.4f}")
    bar.close()
    logger.close()
    save_vision_weights(vision, out_dir / ENCODER_FILE)
    filling = -(-cfg.method.queue_size // cfg.batch_size) if cfg.method.name == "moco" else 0  # until real keys
    skip = min(filling, len(history) - 1)
    first = history[skip:skip + 20]
    window = min(20, len(history))
    summary: dict[str, Any] = {
        "method": cfg.method.name, "split": cfg.split, "num_frames": len(data), "steps": step,
        "first_loss": sum(first) / len(first), "final_loss": sum(history[-window:]) / window,
        "eval_split": cfg.eval_split, "eval_loss": _eval_loss(objective, held_out, cfg, device),
        "encoder": str(out_dir / ENCODER_FILE), "vision": {k: v for k, v in dataclasses.asdict(cfg.vision).items()
                                                           if k != "weights"},
    }
    if isinstance(objective, ClipObjective):
        summary.update(caption_retrieval(objective, held_out, cfg.retrieval_candidates))
    summary["seconds"] = round(time.time() - t0, 1)
    write_json(out_dir / "summary.json", summary, indent=1)
    return summary
