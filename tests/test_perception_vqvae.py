"""Tests for vlarena.perception.vqvae (VQ-VAE image tokenizer)."""

from __future__ import annotations

import math

import pytest
import torch

from vlarena.perception.vqvae import VQVAE, VectorQuantizer


def _hand_quantizer() -> VectorQuantizer:
    vq = VectorQuantizer(num_codes=3, dim=2, beta=0.25)
    with torch.no_grad():
        vq.codebook.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 1.0], [-2.0, 0.0]]))
    return vq


def test_codebook_init_range() -> None:
    vq = VectorQuantizer(num_codes=16, dim=4)
    assert vq.codebook.weight.abs().max() <= 1 / 16


def test_nearest_code_assignment() -> None:
    vq = _hand_quantizer()
    z = torch.tensor([[[0.1, -0.2], [0.9, 1.4]], [[-1.5, 0.3], [3.0, 3.0]]])  # (2, 2, 2)
    z_q, indices, losses = vq(z)
    assert indices.shape == (2, 2) and indices.dtype == torch.long
    assert indices.tolist() == [[0, 1], [2, 1]]
    torch.testing.assert_close(z_q, vq.codebook.weight[indices])
    torch.testing.assert_close(vq.lookup(indices), z_q)
    # 4 vectors over codes {0: 1, 1: 2, 2: 1} -> perplexity exp(H(1/4, 1/2, 1/4)).
    entropy = -(0.25 * math.log(0.25) * 2 + 0.5 * math.log(0.5))
    assert losses["perplexity"].item() == pytest.approx(math.exp(entropy), rel=1e-5)


def test_losses_hand_computed_single_vector() -> None:
    vq = _hand_quantizer()
    z = torch.tensor([1.0, 2.0])  # nearest code [1, 1] (squared distance 1 vs 5 and 13)
    z_q, indices, losses = vq(z)
    assert indices.item() == 1
    # ||z - e||^2 mean over the 2 elements = (0 + 1) / 2
    assert losses["codebook"].item() == pytest.approx(0.5)
    assert losses["commitment"].item() == pytest.approx(0.25 * 0.5)
    assert losses["loss"].item() == pytest.approx(0.625)
    assert losses["perplexity"].item() == pytest.approx(1.0)
    torch.testing.assert_close(z_q, torch.tensor([1.0, 1.0]))


def test_straight_through_gradient() -> None:
    vq = VectorQuantizer(num_codes=8, dim=4)
    g = torch.Generator().manual_seed(0)
    z = torch.randn(3, 5, 4, generator=g, requires_grad=True)
    upstream = torch.randn(3, 5, 4, generator=g)
    z_q, _, _ = vq(z)
    (z_q * upstream).sum().backward()
    assert torch.equal(z.grad, upstream)
    assert vq.codebook.weight.grad is None or torch.all(vq.codebook.weight.grad == 0)


def test_codebook_and_commitment_gradients_separate() -> None:
    g = torch.Generator().manual_seed(1)
    z0 = torch.randn(6, 3, generator=g)

    vq = VectorQuantizer(num_codes=4, dim=3)
    z = z0.clone().requires_grad_(True)
    vq(z)[2]["codebook"].backward()
    assert z.grad is None or torch.all(z.grad == 0)
    assert vq.codebook.weight.grad is not None and vq.codebook.weight.grad.abs().sum() > 0

    vq.zero_grad(set_to_none=True)
    z = z0.clone().requires_grad_(True)
    vq(z)[2]["commitment"].backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    assert vq.codebook.weight.grad is None or torch.all(vq.codebook.weight.grad == 0)
    # d/dz beta * mean((z - e)^2) = 2 beta (z - e) / numel
    e = vq.codebook.weight[vq(z0)[1]].detach()
    torch.testing.assert_close(z.grad, 2 * 0.25 * (z0 - e) / z0.numel())


def test_dead_codes_restart_on_batch_vectors() -> None:
    """Four clusters around one code at the origin, the 7 others far away: without restarts every vector maps to
    code 0; with restart_after=2 the idle codes jump onto batch vectors until each cluster has codes of its own."""
    torch.manual_seed(0)
    centres = torch.tensor([[5.0, 5.0], [-5.0, 5.0], [5.0, -5.0], [-5.0, -5.0]])
    z = (centres[:, None] + 0.01 * torch.randn(4, 16, 2)).reshape(-1, 2)
    plain, restarted = VectorQuantizer(8, 2), VectorQuantizer(8, 2, restart_after=2)
    for vq in (plain, restarted):
        vq.codebook.weight.data.fill_(-100.0)
        vq.codebook.weight.data[0] = 0.0
    for _ in range(20):
        _, plain_idx, plain_losses = plain(z)
        _, idx, losses = restarted(z)
    assert plain_idx.unique().numel() == 1 and plain_losses["perplexity"].item() == pytest.approx(1.0)
    clusters = idx.view(4, 16)
    assert all(len(set(row.tolist()) & set(other.tolist())) == 0
               for i, row in enumerate(clusters) for other in clusters[i + 1:])  # no code shared by two clusters
    assert losses["codebook"].item() < 0.01 < plain_losses["codebook"].item()
    assert restarted.idle.max() < 2
    restarted.eval()  # no restarts in eval mode: the codebook stays as it is
    before = restarted.codebook.weight.detach().clone()
    for _ in range(3):
        restarted(torch.zeros(4, 2))
    torch.testing.assert_close(restarted.codebook.weight, before)


def test_quantizer_errors() -> None:
    vq = VectorQuantizer(num_codes=4, dim=3)
    with pytest.raises(ValueError, match=r"dim=3, got shape \(2, 5\)"):
        vq(torch.zeros(2, 5))
    with pytest.raises(ValueError, match="num_codes must be a positive int"):
        VectorQuantizer(num_codes=0, dim=3)
    with pytest.raises(ValueError, match=r"restart_after must be an int >= 0 \(0: no dead-code restarts\), got -1"):
        VectorQuantizer(num_codes=4, dim=3, restart_after=-1)


def test_vqvae_shapes_and_errors() -> None:
    torch.manual_seed(0)
    model = VQVAE(in_channels=3, hidden=16, code_dim=8, num_codes=32, downsample=2)
    x = torch.rand(2, 3, 64, 48) * 2 - 1
    out = model(x)
    assert out["recon"].shape == x.shape
    assert out["indices"].shape == (2, 16, 12) and out["indices"].dtype == torch.long
    for key in ("loss", "recon_loss", "vq_loss", "perplexity"):
        assert out[key].dim() == 0
    torch.testing.assert_close(out["loss"], out["recon_loss"] + out["vq_loss"])
    indices = model.encode(x)
    assert torch.equal(indices, out["indices"])
    decoded = model.decode(indices)
    assert decoded.shape == x.shape
    torch.testing.assert_close(decoded, out["recon"])
    with pytest.raises(ValueError, match=r"divisible by 2\*\*downsample=4, got H=30, W=48"):
        model(torch.zeros(1, 3, 30, 48))
    with pytest.raises(ValueError, match=r"x must have shape \(B, 3, H, W\)"):
        model(torch.zeros(1, 1, 64, 64))


def _structured_images() -> torch.Tensor:
    """Six fixed 3-channel 16x16 images in [-1, 1]: colour gradients with a coloured square."""
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 16), torch.linspace(-1, 1, 16), indexing="ij")
    images = []
    for k in range(6):
        img = torch.stack([xx * (1 - k / 6), yy * (k / 6), (xx + yy) / 2 * (-1) ** k])
        r, c = 2 * k % 10, (3 * k + 2) % 10
        img[:, r : r + 6, c : c + 6] = torch.tensor([0.8, -0.6, 0.4 * (-1) ** k])[:, None, None]
        images.append(img.clamp(-1, 1))
    return torch.stack(images)


def test_vqvae_learns_to_reconstruct() -> None:
    torch.manual_seed(0)
    images = _structured_images()
    model = VQVAE(in_channels=3, hidden=32, code_dim=16, num_codes=32, downsample=2)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    history = []
    for _ in range(150):
        out = model(images)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        history.append(out["recon_loss"].item())
    first, last = sum(history[:5]) / 5, sum(history[-5:]) / 5
    assert last < 0.5 * first, (first, last)
