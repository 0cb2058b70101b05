"""Contrastive losses: InfoNCE, CLIP's symmetric image-text loss, MoCo, triplet and margin losses.

Conventions (embeddings are rows, batch first):
- InfoNCE (van den Oord et al. 2018, "CPC"): for query i the positive is key i; logits are cosine
  similarities (L2-normalised rows, unless `normalize=False`) divided by the temperature, and the loss
  is the cross-entropy of picking the positive. Negatives are the other keys of the batch, or an
  explicit bank (B, M) / (M, D) when given (then the positive is logit 0, as MoCo writes it).
- CLIP (Radford et al. 2021): logits = exp(logit_scale) * img @ txt.T, loss = mean of the image->text
  and text->image cross-entropies; logit_scale is learnable, starts at log(1 / 0.07) and is clamped
  to at most log(100) (CLIP clips the scale at 100 to keep training stable).
- MoCo (He et al. 2020, v2 settings): a query encoder trained by gradient, a key encoder that only
  follows it by the momentum rule k <- m k + (1 - m) q and never receives gradients, and a FIFO queue
  of past keys as negatives.
- Triplet (Schroff et al. 2015): mean max(d(a, p) - d(a, n) + margin, 0), Euclidean distance.
- Margin contrastive loss (Hadsell, Chopra, LeCun 2006): L = (1 - Y) * D^2 + Y * max(margin - D, 0)^2
  with D the Euclidean distance of the pair and **Y = 0 for a similar pair, Y = 1 for a dissimilar
  one** (the paper's convention; some libraries flip it).
A batch of one row has no negatives and is refused with a clear error, as are mismatched sizes.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

CLIP_MAX_LOGIT_SCALE = math.log(100.0)


def _check_rows(name_a: str, a: torch.Tensor, name_b: str, b: torch.Tensor, same_batch: bool = True) -> None:
    if a.dim() != 2 or b.dim() != 2:
        raise ValueError(f"{name_a} and {name_b} must be 2-D (batch, dim), got shapes {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"embedding sizes differ: {name_a} has dim {a.shape[1]}, {name_b} has dim {b.shape[1]}; "
                         f"project both to one size first")
    if same_batch and a.shape[0] != b.shape[0]:
        raise ValueError(f"{name_a} has {a.shape[0]} rows but {name_b} has {b.shape[0]}: pairs must align row by row")


def _need_negatives(batch: int, what: str) -> None:
    if batch < 2:
        raise ValueError(f"{what} needs a batch of at least 2 (the other rows are the negatives), got a batch of "
                         f"{batch}: use a larger batch or pass explicit negatives")


def info_nce(query: torch.Tensor, key: torch.Tensor, negatives: torch.Tensor | None = None,
             temperature: float = 0.1, normalize: bool = True) -> torch.Tensor:
    """InfoNCE of queries (B, D) against their positive keys (B, D).

    negatives None: in-batch (key j != i are the negatives of query i; B >= 2). Otherwise a shared bank
    (M, D) or per-query negatives (B, M, D); the positive is then logit 0 of 1 + M.
    """
    _check_rows("query", query, "key", key)
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if normalize:
        query, key = F.normalize(query, dim=1), F.normalize(key, dim=1)
    if negatives is None:
        _need_negatives(query.shape[0], "InfoNCE with in-batch negatives")
        logits = query @ key.t()
        labels = torch.arange(query.shape[0], device=query.device)
        return F.cross_entropy(logits / temperature, labels)
    if negatives.dim() not in (2, 3) or negatives.shape[-1] != query.shape[1] or negatives.shape[-2] == 0:
        raise ValueError(f"negatives must be (M, {query.shape[1]}) or (B, M, {query.shape[1]}) with M >= 1, got "
                         f"{tuple(negatives.shape)}")
    if negatives.dim() == 3 and negatives.shape[0] != query.shape[0]:
        raise ValueError(f"per-query negatives have {negatives.shape[0]} rows but query has {query.shape[0]}")
    if normalize:
        negatives = F.normalize(negatives, dim=-1)
    pos = (query * key).sum(dim=1, keepdim=True)
    neg = query @ negatives.t() if negatives.dim() == 2 else torch.einsum("bd,bmd->bm", query, negatives)
    logits = torch.cat([pos, neg], dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros(query.shape[0], dtype=torch.long, device=query.device))


class CLIPLoss(nn.Module):
    """CLIP's symmetric image-text loss with a learnable temperature (logit scale clamped at log 100)."""

    def __init__(self, init_temperature: float = 0.07):
        super().__init__()
        if not 0 < init_temperature:
            raise ValueError(f"init_temperature must be positive, got {init_temperature}")
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / init_temperature)))

    def clamp_(self) -> None:
        """Clip the scale to [0, log 100] in place (CLIP does this after each optimiser step)."""
        with torch.no_grad():
            self.logit_scale.clamp_(0.0, CLIP_MAX_LOGIT_SCALE)

    def logits(self, image: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """(B, B) image->text logits of L2-normalised embeddings."""
        _check_rows("image embeddings", image, "text embeddings", text)
        scale = self.logit_scale.clamp(max=CLIP_MAX_LOGIT_SCALE).exp()
        return scale * F.normalize(image, dim=1) @ F.normalize(text, dim=1).t()

    def forward(self, image: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        _check_rows("image embeddings", image, "text embeddings", text)
        _need_negatives(image.shape[0], "the CLIP loss")
        logits = self.logits(image, text)
        labels = torch.arange(image.shape[0], device=image.device)
        return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels))


def check_queue_size(queue_size: int, dataset_size: int) -> None:
    """A MoCo queue must not hold more keys than the dataset has samples (it would hold the positive's own
    earlier keys as negatives, and never fill with distinct ones)."""
    if queue_size > dataset_size:
        raise ValueError(f"MoCo queue_size {queue_size} is larger than the dataset ({dataset_size} samples): "
                         f"accepted is queue_size <= {dataset_size}")


class MoCo(nn.Module):
    """Momentum contrast: `encoder` maps a batch to embeddings (B, dim); its momentum copy encodes the keys.

        moco = MoCo(encoder, dim=128, queue_size=4096, momentum=0.999)
        loss = moco(view_1, view_2)     # updates the key encoder and the queue as a side effect
    """

    def __init__(self, encoder: nn.Module, dim: int, queue_size: int = 4096, momentum: float = 0.999,
                 temperature: float = 0.2):
        super().__init__()
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if queue_size < 1 or dim < 1:
            raise ValueError(f"queue_size and dim must be positive, got {queue_size} and {dim}")
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.dim, self.momentum, self.temperature = dim, momentum, temperature
        self.encoder_q = encoder
        self.encoder_k = copy.deepcopy(encoder)
        self.encoder_k.requires_grad_(False)
        self.register_buffer("queue", F.normalize(torch.randn(queue_size, dim), dim=1))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))

    @property
    def queue_size(self) -> int:
        return self.queue.shape[0]

    @torch.no_grad()
    def momentum_update(self) -> None:
        """k <- m * k + (1 - m) * q for every parameter (buffers such as norms' statistics are copied)."""
        for pk, pq in zip(self.encoder_k.parameters(), self.encoder_q.parameters(), strict=True):
            pk.mul_(self.momentum).add_(pq.detach(), alpha=1.0 - self.momentum)
        for bk, bq in zip(self.encoder_k.buffers(), self.encoder_q.buffers(), strict=True):
            bk.copy_(bq)

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Write keys (B, dim) over the oldest entries (FIFO, wrapping around)."""
        if keys.dim() != 2 or keys.shape[1] != self.dim:
            raise ValueError(f"keys must be (B, {self.dim}), got {tuple(keys.shape)}")
        keys = keys[-self.queue_size:]
        idx = (self.queue_ptr + torch.arange(keys.shape[0], device=keys.device)) % self.queue_size
        self.queue[idx] = keys.to(self.queue.dtype)
        self.queue_ptr.copy_((self.queue_ptr + keys.shape[0]) % self.queue_size)

    def _embed(self, encoder: nn.Module, x: torch.Tensor) -> torch.Tensor:
        z = encoder(x)
        if z.dim() != 2 or z.shape[1] != self.dim:
            raise ValueError(f"the MoCo encoder must return (B, {self.dim}) embeddings, got {tuple(z.shape)}")
        return F.normalize(z, dim=1)

    def forward(self, x_q: torch.Tensor, x_k: torch.Tensor) -> torch.Tensor:
        """InfoNCE of the queries against their keys (positives) and the queue (negatives); then the
        key encoder takes a momentum step and the keys join the queue."""
        q = self._embed(self.encoder_q, x_q)
        with torch.no_grad():
            self.momentum_update()
            k = self._embed(self.encoder_k, x_k)
        loss = info_nce(q, k, self.queue.clone().detach(), self.temperature, normalize=False)
        self.enqueue(k)
        return loss


def triplet_loss(anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor,
                 margin: float = 1.0) -> torch.Tensor:
    """mean(max(||a - p|| - ||a - n|| + margin, 0)) over rows."""
    _check_rows("anchor", anchor, "positive", positive)
    _check_rows("anchor", anchor, "negative", negative)
    d_pos = (anchor - positive).norm(dim=1)
    d_neg = (anchor - negative).norm(dim=1)
    return F.relu(d_pos - d_neg + margin).mean()


def margin_contrastive_loss(x1: torch.Tensor, x2: torch.Tensor, y: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """mean((1 - Y) D^2 + Y max(margin - D, 0)^2), D = ||x1 - x2||; Y = 0 similar pair, Y = 1 dissimilar."""
    _check_rows("x1", x1, "x2", x2)
    if y.shape != (x1.shape[0],):
        raise ValueError(f"y must be ({x1.shape[0]},) labels (0 similar, 1 dissimilar), got {tuple(y.shape)}")
    if not bool(((y == 0) | (y == 1)).all()):
        raise ValueError("y must hold 0 (similar pair) or 1 (dissimilar pair) only")
    d = (x1 - x2).norm(dim=1)
    y = y.to(d.dtype)
    return ((1 - y) * d.pow(2) + y * F.relu(margin - d).pow(2)).mean()
