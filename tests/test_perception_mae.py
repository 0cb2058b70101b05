"""Tests for vlarena.perception.mae (masked autoencoding of image patches)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from vlarena.perception.mae import MAEDecoder, mae_loss, patchify, random_masking, unpatchify


def test_patchify_roundtrip_and_layout() -> None:
    g = torch.Generator().manual_seed(0)
    images = torch.randn(2, 3, 12, 8, generator=g)
    patches = patchify(images, 4)
    assert patches.shape == (2, 3 * 2, 4 * 4 * 3)
    assert torch.equal(unpatchify(patches, 4, 3, (12, 8)), images)
    # Patch 0 is the top-left block laid out (row, col, channel); patch 1 is the block to its right.
    assert torch.equal(patches[:, 0], images[:, :, :4, :4].permute(0, 2, 3, 1).reshape(2, -1))
    assert torch.equal(patches[:, 1], images[:, :, :4, 4:8].permute(0, 2, 3, 1).reshape(2, -1))
    assert torch.equal(patches[:, 2], images[:, :, 4:8, :4].permute(0, 2, 3, 1).reshape(2, -1))


def test_patchify_errors() -> None:
    with pytest.raises(ValueError, match="multiples of patch=4"):
        patchify(torch.zeros(1, 3, 10, 8), 4)
    with pytest.raises(ValueError, match="patch must be a positive int"):
        patchify(torch.zeros(1, 3, 8, 8), 0)
    with pytest.raises(ValueError, match=r"patches must have shape \(B, 4, 48\)"):
        unpatchify(torch.zeros(1, 4, 47), 4, 3, (8, 8))


def test_random_masking() -> None:
    g = torch.Generator().manual_seed(1)
    b, n, ratio = 5, 16, 0.75
    keep_idx, mask, ids_restore = random_masking(b, n, ratio, "cpu", generator=g)
    n_keep = int(n * (1 - ratio))
    assert keep_idx.shape == (b, n_keep) and keep_idx.dtype == torch.long
    assert mask.shape == (b, n) and mask.dtype == torch.float32
    assert ids_restore.shape == (b, n) and ids_restore.dtype == torch.long
    for i in range(b):
        assert len(set(keep_idx[i].tolist())) == n_keep
        assert int((mask[i] == 0).sum()) == n_keep
        assert torch.all(mask[i, keep_idx[i]] == 0)
    # ids_restore undoes the shuffle: the full shuffle starts with keep_idx, and gathering it by
    # ids_restore puts every token back in its original order.
    ids_shuffle = torch.argsort(ids_restore, dim=1)
    assert torch.equal(ids_shuffle[:, :n_keep], keep_idx)
    assert torch.equal(torch.gather(ids_shuffle, 1, ids_restore), torch.arange(n).expand(b, n))
    # At least one token is always kept; reproducible with the same seed.
    k1, m1, _ = random_masking(2, 3, 0.99, "cpu")
    assert k1.shape == (2, 1) and torch.all(m1.sum(1) == 2)
    again = random_masking(b, n, ratio, "cpu", generator=torch.Generator().manual_seed(1))
    assert torch.equal(again[0], keep_idx)


def test_random_masking_errors() -> None:
    with pytest.raises(ValueError, match=r"mask_ratio must be in \[0, 1\), got 1.2"):
        random_masking(2, 4, 1.2, "cpu")
    with pytest.raises(ValueError, match="num_tokens must be a positive int"):
        random_masking(2, 0, 0.5, "cpu")


def test_mae_loss_ignores_kept_patches() -> None:
    g = torch.Generator().manual_seed(2)
    pred = torch.randn(3, 6, 12, generator=g)
    target = torch.randn(3, 6, 12, generator=g)
    _, mask, _ = random_masking(3, 6, 0.5, "cpu", generator=g)
    base = mae_loss(pred, target, mask)
    kept = torch.nonzero(mask[0] == 0)[0, 0]
    pred2 = pred.clone()
    pred2[0, kept] += 100.0
    assert torch.equal(mae_loss(pred2, target, mask), base)
    masked = torch.nonzero(mask[0] == 1)[0, 0]
    pred2[0, masked] += 1.0
    assert mae_loss(pred2, target, mask) > base


def test_mae_loss_hand_computed() -> None:
    # Two patches of 2 values; patch 0 masked, patch 1 kept.
    pred = torch.tensor([[[1.0, 0.0], [5.0, 5.0]]])
    target = torch.tensor([[[0.0, 2.0], [0.0, 0.0]]])
    mask = torch.tensor([[1.0, 0.0]])
    # Raw: ((1-0)^2 + (0-2)^2) / 2 = 2.5
    assert mae_loss(pred, target, mask, norm_pix=False).item() == pytest.approx(2.5)
    # norm_pix: mean 1, unbiased var ((0-1)^2 + (2-1)^2) / 1 = 2 -> target (-1, 1) / sqrt(2 + 1e-6)
    s = math.sqrt(2.0 + 1e-6)
    expected = ((1 + 1 / s) ** 2 + (0 - 1 / s) ** 2) / 2
    assert mae_loss(pred, target, mask, norm_pix=True).item() == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="mask must have shape"):
        mae_loss(pred, target, torch.ones(1, 3))


def test_decoder_unshuffles() -> None:
    torch.manual_seed(0)
    dec = MAEDecoder(enc_dim=5, num_tokens=6, patch_dim=7, dim=8, depth=0, heads=2)
    keep_idx, mask, ids_restore = random_masking(2, 6, 0.5, "cpu", generator=torch.Generator().manual_seed(3))
    visible = torch.randn(2, 3, 5)
    out = dec(visible, ids_restore)
    assert out.shape == (2, 6, 7)
    # With depth 0 each position is decoded independently: kept positions see their own visible token,
    # and all masked positions (mask token + their position embedding) differ from kept ones.
    for i in range(2):
        for j, pos in enumerate(keep_idx[i].tolist()):
            single = dec.pred(dec.norm(dec.embed(visible[i, j]) + dec.pos_embed[0, pos]))
            torch.testing.assert_close(out[i, pos], single)
        for pos in torch.nonzero(mask[i]).squeeze(1).tolist():
            single = dec.pred(dec.norm(dec.mask_token[0, 0] + dec.pos_embed[0, pos]))
            torch.testing.assert_close(out[i, pos], single)
    with pytest.raises(ValueError, match=r"visible must have shape \(B, n_keep, 5\)"):
        dec(torch.randn(2, 3, 4), ids_restore)


def _structured_images(n: int) -> torch.Tensor:
    """A few fixed 1-channel 32x32 images: oriented sinusoidal gratings plus a bright square."""
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    images = []
    for k in range(n):
        angle = k * math.pi / n
        grating = torch.sin((xx * math.cos(angle) + yy * math.sin(angle)) * (0.3 + 0.1 * k))
        square = torch.zeros(32, 32)
        square[4 * k : 4 * k + 10, 20 - 3 * k : 30 - 3 * k] = 1.0
        images.append(grating + square)
    return torch.stack(images)[:, None]


def test_tiny_mae_learns() -> None:
    torch.manual_seed(0)
    patch, n_tokens, enc_dim = 8, 16, 32
    images = _structured_images(4)
    target = patchify(images, patch)  # (4, 16, 64)

    class TinyEncoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = nn.Linear(patch * patch, enc_dim)
            self.pos = nn.Parameter(torch.randn(1, n_tokens, enc_dim) * 0.02)
            self.layer = nn.TransformerEncoderLayer(enc_dim, 4, 64, dropout=0.0, batch_first=True, norm_first=True)

        def forward(self, patches: torch.Tensor, keep_idx: torch.Tensor) -> torch.Tensor:
            tokens = self.proj(patches) + self.pos
            visible = torch.gather(tokens, 1, keep_idx[..., None].expand(-1, -1, enc_dim))
            return self.layer(visible)

    enc = TinyEncoder()
    dec = MAEDecoder(enc_dim, n_tokens, patch * patch, dim=32, depth=1, heads=4)
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=3e-3)
    g = torch.Generator().manual_seed(0)
    batch = target.repeat(4, 1, 1)  # 16 samples, each image with 4 different masks

    def step() -> float:
        keep_idx, mask, ids_restore = random_masking(batch.shape[0], n_tokens, 0.75, "cpu", generator=g)
        loss = mae_loss(dec(enc(batch, keep_idx), ids_restore), batch, mask)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    first = sum(step() for _ in range(5)) / 5
    for _ in range(90):
        step()
    last = sum(step() for _ in range(5)) / 5
    assert last < 0.5 * first, (first, last)
