"""Contrastive losses against hand-computed and reference cases."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vlarena.perception.contrastive import (
    CLIP_MAX_LOGIT_SCALE,
    CLIPLoss,
    MoCo,
    check_queue_size,
    info_nce,
    margin_contrastive_loss,
    triplet_loss,
)


def test_info_nce_is_cross_entropy_over_similarity_logits():
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(5, 8, generator=g), torch.randn(5, 8, generator=g)
    qn, kn = q / q.norm(dim=1, keepdim=True), k / k.norm(dim=1, keepdim=True)
    logits = torch.tensor([[float(qn[i] @ kn[j]) / 0.1 for j in range(5)] for i in range(5)])
    expected = -sum(logits[i, i] - torch.logsumexp(logits[i], 0) for i in range(5)) / 5
    assert info_nce(q, k, temperature=0.1).item() == pytest.approx(expected.item(), rel=1e-5)


def test_info_nce_with_a_negative_bank_puts_the_positive_first():
    q = torch.tensor([[1.0, 0.0]])
    k = torch.tensor([[1.0, 0.0]])
    bank = torch.tensor([[0.0, 1.0], [-1.0, 0.0]])
    # logits / T = [1, 0, -1] / 0.5
    expected = -(2.0 - math.log(math.exp(2.0) + math.exp(0.0) + math.exp(-2.0)))
    assert info_nce(q, k, bank, temperature=0.5).item() == pytest.approx(expected, rel=1e-6)
    per_query = bank.unsqueeze(0)
    assert info_nce(q, k, per_query, temperature=0.5).item() == pytest.approx(expected, rel=1e-6)


def test_a_perfect_match_has_a_lower_infonce_than_a_shuffled_one():
    x = torch.eye(4) * 3
    assert info_nce(x, x).item() < info_nce(x, x.roll(1, dims=0)).item()


def test_clip_loss_is_symmetric_and_matches_a_reference():
    g = torch.Generator().manual_seed(1)
    img, txt = torch.randn(6, 16, generator=g), torch.randn(6, 16, generator=g)
    clip = CLIPLoss()
    assert clip(img, txt).item() == pytest.approx(clip(txt, img).item(), rel=1e-6)
    scale = 1 / 0.07
    logits = scale * F.normalize(img, dim=1) @ F.normalize(txt, dim=1).t()
    labels = torch.arange(6)
    ref = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels)) / 2
    assert clip(img, txt).item() == pytest.approx(ref.item(), rel=1e-5)


def test_clip_logit_scale_is_clamped_at_100():
    clip = CLIPLoss()
    with torch.no_grad():
        clip.logit_scale.fill_(10.0)
    x = torch.eye(3)
    assert clip.logits(x, x)[0, 0].item() == pytest.approx(100.0, rel=1e-5)
    clip.clamp_()
    assert clip.logit_scale.item() == pytest.approx(CLIP_MAX_LOGIT_SCALE)


def test_clip_gradients_reach_the_learnable_temperature():
    clip = CLIPLoss()
    img = torch.randn(4, 8, requires_grad=True)
    clip(img, torch.randn(4, 8)).backward()
    assert clip.logit_scale.grad is not None and clip.logit_scale.grad.abs().item() > 0
    assert img.grad is not None


@pytest.mark.parametrize("call", [
    lambda: info_nce(torch.randn(1, 4), torch.randn(1, 4)),
    lambda: CLIPLoss()(torch.randn(1, 4), torch.randn(1, 4)),
])
def test_batch_of_one_has_no_negatives(call):
    with pytest.raises(ValueError, match="batch of at least 2"):
        call()


@pytest.mark.parametrize("call", [
    lambda: info_nce(torch.randn(3, 4), torch.randn(3, 5)),
    lambda: CLIPLoss()(torch.randn(3, 4), torch.randn(3, 8)),
    lambda: triplet_loss(torch.randn(3, 4), torch.randn(3, 4), torch.randn(3, 2)),
])
def test_mismatched_embedding_sizes_are_named(call):
    with pytest.raises(ValueError, match="embedding sizes differ"):
        call()


def _moco(queue_size: int = 8, momentum: float = 0.9) -> MoCo:
    torch.manual_seed(0)
    return MoCo(nn.Linear(6, 4), dim=4, queue_size=queue_size, momentum=momentum, temperature=0.2)


def test_moco_key_encoder_moves_by_the_momentum_rule_and_gets_no_gradient():
    moco = _moco()
    opt = torch.optim.SGD(moco.encoder_q.parameters(), lr=0.5)
    with torch.no_grad():
        moco.encoder_k.weight.add_(1.0)  # make the two encoders differ
    k_before = moco.encoder_k.weight.clone()
    q_before = moco.encoder_q.weight.clone()
    loss = moco(torch.randn(5, 6), torch.randn(5, 6))
    loss.backward()
    assert moco.encoder_k.weight.grad is None and moco.encoder_k.bias.grad is None
    assert moco.encoder_q.weight.grad is not None
    torch.testing.assert_close(moco.encoder_k.weight, 0.9 * k_before + 0.1 * q_before)
    opt.step()
    assert not torch.equal(moco.encoder_q.weight, q_before)
    # the key encoder follows the query encoder only through the rule, not the optimiser
    torch.testing.assert_close(moco.encoder_k.weight, 0.9 * k_before + 0.1 * q_before)


def test_moco_queue_is_fifo_and_wraps():
    moco = _moco(queue_size=5)
    a = torch.arange(12.0).view(3, 4)
    moco.enqueue(a)
    torch.testing.assert_close(moco.queue[:3], a)
    assert int(moco.queue_ptr) == 3
    b = -torch.arange(1.0, 13.0).view(3, 4)
    moco.enqueue(b)  # rows 3, 4, then 0 (overwriting the oldest key, a[0])
    torch.testing.assert_close(moco.queue[3:5], b[:2])
    torch.testing.assert_close(moco.queue[0], b[2])
    torch.testing.assert_close(moco.queue[1:3], a[1:])
    assert int(moco.queue_ptr) == 1


def test_moco_forward_enqueues_the_normalised_keys():
    moco = _moco(queue_size=8, momentum=0.0)  # momentum 0: the key encoder equals the query encoder
    x_k = torch.randn(3, 6)
    moco(torch.randn(3, 6), x_k)
    keys = F.normalize(moco.encoder_q(x_k), dim=1).detach()
    torch.testing.assert_close(moco.queue[:3], keys)


def test_moco_rejects_bad_settings():
    with pytest.raises(ValueError, match="momentum"):
        MoCo(nn.Linear(2, 2), dim=2, momentum=1.0)
    with pytest.raises(ValueError, match=r"must return \(B, 3\)"):
        MoCo(nn.Linear(2, 2), dim=3, queue_size=4)(torch.randn(2, 2), torch.randn(2, 2))
    with pytest.raises(ValueError, match="queue_size 100 is larger than the dataset"):
        check_queue_size(100, 40)
    check_queue_size(40, 40)


def test_triplet_loss_hand_computed():
    a = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    p = torch.tensor([[1.0, 0.0], [0.5, 0.0]])
    n = torch.tensor([[0.0, 1.5], [3.0, 0.0]])
    # row 0: 1 - 1.5 + 1 = 0.5; row 1: 0.5 - 3 + 1 < 0 -> 0
    assert triplet_loss(a, p, n, margin=1.0).item() == pytest.approx(0.25)


def test_margin_contrastive_loss_label_convention():
    x1 = torch.zeros(3, 2)
    x2 = torch.tensor([[0.6, 0.8], [0.3, 0.4], [3.0, 4.0]])  # D = 1, 0.5, 5
    y = torch.tensor([0, 1, 1])  # similar, dissimilar inside the margin, dissimilar beyond it
    # (1) 1^2 = 1; (2) max(2 - 0.5, 0)^2 = 2.25; (3) max(2 - 5, 0)^2 = 0
    assert margin_contrastive_loss(x1, x2, y, margin=2.0).item() == pytest.approx((1 + 2.25 + 0) / 3)
    with pytest.raises(ValueError, match="0 \\(similar pair\\) or 1"):
        margin_contrastive_loss(x1, x2, torch.tensor([0, 2, 1]))
