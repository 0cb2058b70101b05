"""Tests for vlarena.perception.diffusion (DDPM/DDIM diffusion action head)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from vlarena.perception.diffusion import DiffusionActionHead, NoiseSchedule, timestep_embedding


@pytest.mark.parametrize("schedule", ["cosine", "linear"])
def test_schedule_monotone(schedule: str) -> None:
    sched = NoiseSchedule(100, schedule)
    ab = sched.alphas_cumprod
    assert ab.shape == (100,) and ab.dtype == torch.float32
    assert torch.all(ab > 0) and torch.all(ab < 1)
    assert torch.all(ab[1:] < ab[:-1])
    torch.testing.assert_close(sched.alphas, 1 - sched.betas)
    torch.testing.assert_close(ab, torch.cumprod(sched.alphas.double(), 0).float())
    if schedule == "linear":
        assert sched.betas[0].item() == pytest.approx(1e-4) and sched.betas[-1].item() == pytest.approx(0.02)
    else:
        assert sched.betas.max().item() == pytest.approx(0.999)
        # Nichol & Dhariwal: ab(t) = f(t) / f(0) before the clip bites.
        f = [math.cos((k / 100 + 0.008) / 1.008 * math.pi / 2) ** 2 for k in (0, 51)]
        assert ab[50].item() == pytest.approx(f[1] / f[0], rel=1e-5)


def test_q_sample_closed_form() -> None:
    sched = NoiseSchedule(100, "cosine")
    g = torch.Generator().manual_seed(0)
    n, t = 20_000, 40
    x0 = torch.full((n, 1), 0.5)
    xt = sched.q_sample(x0, torch.full((n,), t, dtype=torch.long), torch.randn(n, 1, generator=g))
    ab = sched.alphas_cumprod[t].item()
    assert xt.mean().item() == pytest.approx(math.sqrt(ab) * 0.5, abs=0.02)
    assert xt.var().item() == pytest.approx(1 - ab, rel=0.05)
    # Exact per-element formula.
    noise = torch.randn(3, 2, generator=g)
    x0 = torch.randn(3, 2, generator=g)
    ts = torch.tensor([0, 50, 99])
    abt = sched.alphas_cumprod[ts][:, None]
    torch.testing.assert_close(sched.q_sample(x0, ts, noise), abt.sqrt() * x0 + (1 - abt).sqrt() * noise)


def test_schedule_errors_and_to() -> None:
    with pytest.raises(ValueError, match=r"schedule must be one of \('cosine', 'linear'\), got 'quad'"):
        NoiseSchedule(10, "quad")
    with pytest.raises(ValueError, match="num_steps must be a positive int, got 0"):
        NoiseSchedule(0)
    sched = NoiseSchedule(10)
    moved = sched.to("cpu")
    assert moved is not sched and moved.num_steps == 10 and torch.equal(moved.betas, sched.betas)
    with pytest.raises(ValueError, match="noise must have the shape of x0"):
        sched.q_sample(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="t must have shape"):
        sched.q_sample(torch.zeros(2, 3), torch.zeros(3, dtype=torch.long))


def test_timestep_embedding() -> None:
    emb = timestep_embedding(torch.tensor([0, 7]), 8)
    assert emb.shape == (2, 8)
    torch.testing.assert_close(emb[0], torch.tensor([0.0] * 4 + [1.0] * 4))
    assert emb[1, 0].item() == pytest.approx(math.sin(7.0))


def test_head_shapes_and_errors() -> None:
    torch.manual_seed(0)
    head = DiffusionActionHead(cond_dim=3, action_dim=2, hidden=16, num_steps=20, time_dim=8)
    cond = torch.randn(4, 3)
    assert head.loss(cond, torch.rand(4, 2) * 2 - 1).dim() == 0
    assert head.sample_ddpm(cond).shape == (4, 2)
    assert head.sample_ddim(cond, steps=5).shape == (4, 2)
    assert head.ddim_timesteps(5) == [19, 14, 10, 5, 0]
    assert head.ddim_timesteps(20) == list(range(19, -1, -1))
    with pytest.raises(ValueError, match=r"cond must have shape \(B, 3\), got \(4, 2\)"):
        head.loss(torch.randn(4, 2), torch.zeros(4, 2))
    with pytest.raises(ValueError, match=r"actions must have shape \(4, 2\), got \(4, 3\)"):
        head.loss(cond, torch.zeros(4, 3))
    with pytest.raises(ValueError, match=r"noise must have shape \(4, 2\), got \(4, 1\)"):
        head.sample_ddim(cond, noise=torch.zeros(4, 1))
    with pytest.raises(ValueError, match=r"steps must be an int in \[1, 20\], got 21"):
        head.sample_ddim(cond, steps=21)
    with pytest.raises(ValueError, match=r"eta must be in \[0, 1\], got 1.5"):
        head.sample_ddim(cond, eta=1.5)


def test_ddim_determinism() -> None:
    torch.manual_seed(0)
    head = DiffusionActionHead(cond_dim=2, action_dim=3, hidden=16, num_steps=50, time_dim=8)
    cond = torch.randn(6, 2)
    noise = torch.randn(6, 3)
    a = head.sample_ddim(cond, steps=10, eta=0.0, noise=noise)
    b = head.sample_ddim(cond, steps=10, eta=0.0, noise=noise, generator=torch.Generator().manual_seed(9))
    assert torch.equal(a, b)
    c = head.sample_ddim(cond, steps=10, eta=0.0, generator=torch.Generator().manual_seed(1))
    d = head.sample_ddim(cond, steps=10, eta=0.0, generator=torch.Generator().manual_seed(1))
    assert torch.equal(c, d)
    e = head.sample_ddim(cond, steps=10, eta=0.5, noise=noise, generator=torch.Generator().manual_seed(1))
    f = head.sample_ddim(cond, steps=10, eta=0.5, noise=noise, generator=torch.Generator().manual_seed(2))
    assert not torch.allclose(e, f)
    assert torch.all(a.abs() <= 1.0)  # last DDIM step returns the clamped x0 prediction


def _toy_batch(g: torch.Generator, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """cond 0 -> action 0.6; cond 1 -> action +0.7 or -0.7 with equal probability."""
    c = torch.randint(0, 2, (n,), generator=g)
    sign = (torch.randint(0, 2, (n,), generator=g) * 2 - 1).float()
    actions = torch.where(c == 0, torch.full((n,), 0.6), 0.7 * sign)
    return F.one_hot(c, 2).float(), actions[:, None]


def test_head_fits_conditional_bimodal_toy() -> None:
    torch.manual_seed(0)
    head = DiffusionActionHead(cond_dim=2, action_dim=1, hidden=64, num_steps=100, time_dim=32)
    opt = torch.optim.Adam(head.parameters(), lr=3e-3)
    steps = 500
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 0.5 * (1 + math.cos(math.pi * i / steps)))
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        cond, actions = _toy_batch(g, 256)
        loss = head.loss(cond, actions, generator=g)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()

    cond0 = F.one_hot(torch.zeros(400, dtype=torch.long), 2).float()
    s0 = head.sample_ddim(cond0, steps=10, generator=torch.Generator().manual_seed(100))[:, 0]
    assert abs(s0.mean().item() - 0.6) < 0.1, s0.mean().item()

    cond1 = F.one_hot(torch.ones(400, dtype=torch.long), 2).float()
    s1 = head.sample_ddim(cond1, steps=10, generator=torch.Generator().manual_seed(101))[:, 0]
    pos, neg = s1[s1 > 0], s1[s1 <= 0]
    assert len(pos) >= 100 and len(neg) >= 100, (len(pos), len(neg))
    assert abs(pos.mean().item() - 0.7) < 0.15, pos.mean().item()
    assert abs(neg.mean().item() + 0.7) < 0.15, neg.mean().item()
    # Few samples in the empty middle: the head really is bimodal, not a blurred unimodal fit.
    assert (s1.abs() < 0.3).float().mean().item() < 0.1
    # The ancestral DDPM sampler over all 100 steps recovers the same two modes.
    s2 = head.sample_ddpm(cond1, generator=torch.Generator().manual_seed(102))[:, 0]
    pos, neg = s2[s2 > 0], s2[s2 <= 0]
    assert len(pos) >= 100 and len(neg) >= 100, (len(pos), len(neg))
    assert abs(pos.mean().item() - 0.7) < 0.15 and abs(neg.mean().item() + 0.7) < 0.15
