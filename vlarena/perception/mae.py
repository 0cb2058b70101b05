"""Masked autoencoding of image patches (MAE, He et al. 2021, "Masked Autoencoders Are Scalable Vision Learners").

Generic over any ViT-style encoder: this module supplies the pieces around it, following the
reference implementation (facebookresearch/mae ``models_mae.py``):

* :func:`patchify` / :func:`unpatchify` turn images ``(B, C, H, W)`` into patch vectors
  ``(B, N, p*p*C)`` and back. Patches are numbered in **row-major grid order** (patch ``k`` is at grid
  row ``k // (W/p)``, column ``k % (W/p)``) and each patch vector is laid out ``(row, col, channel)``
  within the patch, channel fastest, exactly like MAE's ``nchpwq->nhwpqc``.
* :func:`random_masking` draws per-sample random masks by argsorting uniform noise. ``mask`` is
  ``1`` for **masked** (hidden, to be reconstructed) patches and ``0`` for kept (visible) ones;
  ``keep_idx`` lists the kept patches in the (random) order the encoder sees them, and
  ``ids_restore`` undoes the shuffle.
* :class:`MAEDecoder` puts the encoded visible tokens back at their positions, fills the rest with a
  learned mask token, adds a learned position embedding and decodes every position to a patch.
* :func:`mae_loss` is the per-patch MSE averaged over **masked patches only**, with MAE's optional
  per-patch target normalisation (``norm_pix``).

Typical use with an encoder ``enc`` over patch tokens ``tokens (B, N, D)`` (position embedding already
added)::

    keep_idx, mask, ids_restore = random_masking(B, N, 0.75, device)
    visible = torch.gather(tokens, 1, keep_idx[..., None].expand(-1, -1, D))
    pred = decoder(enc(visible), ids_restore)
    loss = mae_loss(pred, patchify(images, p), mask)

The decoder expects exactly ``n_keep`` visible tokens (no class token); strip one before calling it.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from vlarena.perception._checks import positive_int

__all__ = ["MAEDecoder", "mae_loss", "patchify", "random_masking", "unpatchify"]


def _check_patch(patch: int) -> None:
    positive_int("patch", patch)


def patchify(images: Tensor, patch: int) -> Tensor:
    """Split ``images (B, C, H, W)`` into ``(B, N, patch*patch*C)`` patch vectors, N = (H/p)*(W/p), row-major."""
    _check_patch(patch)
    if images.dim() != 4:
        raise ValueError(f"images must have shape (B, C, H, W), got shape {tuple(images.shape)}")
    b, c, h, w = images.shape
    if h % patch or w % patch:
        raise ValueError(f"image height and width must be multiples of patch={patch}, got H={h}, W={w}")
    gh, gw = h // patch, w // patch
    x = images.reshape(b, c, gh, patch, gw, patch)
    x = x.permute(0, 2, 4, 3, 5, 1)  # (B, gh, gw, p, p, C)
    return x.reshape(b, gh * gw, patch * patch * c)


def unpatchify(patches: Tensor, patch: int, channels: int, hw: tuple[int, int]) -> Tensor:
    """Exact inverse of :func:`patchify`: ``(B, N, patch*patch*channels)`` -> ``(B, channels, H, W)``."""
    _check_patch(patch)
    positive_int("channels", channels)
    if len(hw) != 2:
        raise ValueError(f"hw must be a pair (H, W), got {hw!r}")
    h, w = int(hw[0]), int(hw[1])
    if h < 1 or w < 1 or h % patch or w % patch:
        raise ValueError(f"hw must be positive multiples of patch={patch}, got H={h}, W={w}")
    gh, gw = h // patch, w // patch
    expected = (gh * gw, patch * patch * channels)
    if patches.dim() != 3 or tuple(patches.shape[1:]) != expected:
        raise ValueError(f"patches must have shape (B, {expected[0]}, {expected[1]}), got {tuple(patches.shape)}")
    b = patches.shape[0]
    x = patches.reshape(b, gh, gw, patch, patch, channels)
    x = x.permute(0, 5, 1, 3, 2, 4)  # (B, C, gh, p, gw, p)
    return x.reshape(b, channels, h, w)


def random_masking(
    batch: int,
    num_tokens: int,
    mask_ratio: float,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Per-sample random masking by argsort of uniform noise (MAE's ``random_masking``).

    Returns ``keep_idx`` LongTensor ``(B, n_keep)``, ``mask`` float ``(B, N)`` (1 = masked, 0 = kept) and
    ``ids_restore`` LongTensor ``(B, N)``, with ``n_keep = max(1, int(N * (1 - mask_ratio)))``.
    ``generator`` must live on ``device``.
    """
    positive_int("batch", batch)
    positive_int("num_tokens", num_tokens)
    if not 0.0 <= float(mask_ratio) < 1.0:
        raise ValueError(f"mask_ratio must be in [0, 1), got {mask_ratio}")
    n_keep = max(1, int(num_tokens * (1.0 - float(mask_ratio))))
    noise = torch.rand(batch, num_tokens, device=device, generator=generator)
    ids_shuffle = torch.argsort(noise, dim=1)  # ascending: the first n_keep are kept
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    keep_idx = ids_shuffle[:, :n_keep]
    mask = torch.ones(batch, num_tokens, device=noise.device)
    mask[:, :n_keep] = 0.0
    mask = torch.gather(mask, 1, ids_restore)
    return keep_idx, mask, ids_restore


class MAEDecoder(nn.Module):
    """Lightweight MAE decoder: visible encoder tokens + mask tokens -> per-patch predictions.

    ``forward(visible (B, n_keep, enc_dim), ids_restore (B, N)) -> (B, N, patch_dim)``.
    """

    def __init__(
        self, enc_dim: int, num_tokens: int, patch_dim: int, dim: int = 64, depth: int = 1, heads: int = 4
    ) -> None:
        super().__init__()
        for name, value in (
            ("enc_dim", enc_dim),
            ("num_tokens", num_tokens),
            ("patch_dim", patch_dim),
            ("dim", dim),
            ("heads", heads),
        ):
            positive_int(name, value)
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
            raise ValueError(f"depth must be a non-negative int, got {depth!r}")
        if dim % heads:
            raise ValueError(f"dim must be divisible by heads, got dim={dim}, heads={heads}")
        self.enc_dim, self.num_tokens, self.patch_dim, self.dim = enc_dim, num_tokens, patch_dim, dim
        self.embed = nn.Linear(enc_dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_tokens, dim))
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(
                dim, heads, 2 * dim, dropout=0.0, batch_first=True, norm_first=True, activation="gelu"
            )
            for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim)
        self.pred = nn.Linear(dim, patch_dim)
        nn.init.normal_(self.mask_token, std=0.02)
        nn.init.normal_(self.pos_embed, std=0.02)

    def forward(self, visible: Tensor, ids_restore: Tensor) -> Tensor:
        if visible.dim() != 3 or visible.shape[-1] != self.enc_dim:
            raise ValueError(f"visible must have shape (B, n_keep, {self.enc_dim}), got {tuple(visible.shape)}")
        b, n_keep, _ = visible.shape
        expected = (b, self.num_tokens)
        if tuple(ids_restore.shape) != expected:
            raise ValueError(f"ids_restore must have shape {expected}, got {tuple(ids_restore.shape)}")
        if not 1 <= n_keep <= self.num_tokens:
            raise ValueError(f"visible must hold between 1 and {self.num_tokens} tokens, got {n_keep}")
        x = self.embed(visible)
        x = torch.cat([x, self.mask_token.expand(b, self.num_tokens - n_keep, -1)], dim=1)
        x = torch.gather(x, 1, ids_restore[..., None].expand(-1, -1, self.dim))  # unshuffle
        x = x + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.pred(self.norm(x))


def mae_loss(pred: Tensor, target_patches: Tensor, mask: Tensor, norm_pix: bool = True) -> Tensor:
    """Mean over masked patches of the per-patch MSE between ``pred`` and ``target_patches`` (both ``(B, N, P)``).

    With ``norm_pix`` the target is normalised per patch, ``(t - mean) / sqrt(var + 1e-6)`` over the patch's
    ``P`` values (unbiased variance, as MAE's ``target.var(dim=-1)``). When ``mask`` has no masked patch the
    loss is 0 (nothing to reconstruct).
    """
    if pred.dim() != 3 or pred.shape != target_patches.shape:
        raise ValueError(
            f"pred and target_patches must both have shape (B, N, P), got {tuple(pred.shape)} "
            f"and {tuple(target_patches.shape)}"
        )
    if tuple(mask.shape) != tuple(pred.shape[:2]):
        raise ValueError(f"mask must have shape {tuple(pred.shape[:2])} (B, N), got {tuple(mask.shape)}")
    target = target_patches
    if norm_pix:
        if target.shape[-1] < 2:
            raise ValueError(f"norm_pix needs patches of at least 2 values, got P={target.shape[-1]}")
        mean = target.mean(dim=-1, keepdim=True)
        var = target.var(dim=-1, keepdim=True)
        target = (target - mean) / (var + 1.0e-6) ** 0.5
    per_patch = ((pred - target) ** 2).mean(dim=-1)
    mask = mask.to(per_patch.dtype)
    return (per_patch * mask).sum() / mask.sum().clamp(min=1.0)
