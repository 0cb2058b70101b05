"""Knowledge distillation (Hinton, FitNets) and deep mutual learning."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vlarena.perception.distill import (
    Distiller,
    MutualLearner,
    feature_distillation_loss,
    logit_distillation_loss,
    mutual_learning_loss,
)


def mlp(d_in, hidden, d_out, seed, depth=1):
    torch.manual_seed(seed)
    layers, d = [], d_in
    for _ in range(depth):
        layers += [nn.Linear(d, hidden), nn.Tanh()]
        d = hidden
    return nn.Sequential(*layers, nn.Linear(d, d_out))


class WithFeatures(nn.Module):
    """Returns (logits, features) per the distillation module contract."""

    def __init__(self, d_in, hidden, d_out):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(d_in, hidden), nn.Tanh())
        self.head = nn.Linear(hidden, d_out)
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        h = self.body(x)
        return self.head(self.drop(h)), h


def test_logit_loss_hand_computed():
    s, t, T = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 2.0]]), 2.0
    ps = [math.exp(0.5) / (math.exp(0.5) + 1), 1 / (math.exp(0.5) + 1)]
    pt = [1 / (1 + math.e), math.e / (1 + math.e)]
    expected = sum(p * math.log(p / q) for p, q in zip(pt, ps, strict=True)) * T**2
    assert logit_distillation_loss(s, t, temperature=T).item() == pytest.approx(expected, rel=1e-5)
    x = torch.randn(5, 3, 7)
    assert logit_distillation_loss(x, x.clone()).item() == pytest.approx(0.0, abs=1e-6)
    # batchmean over leading dims: a repeated sample gives the same value
    assert logit_distillation_loss(s.repeat(4, 1), t.repeat(4, 1), T).item() == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match=r"student_logits shape \(1, 2\).*\(1, 3\)"):
        logit_distillation_loss(s, torch.zeros(1, 3))
    with pytest.raises(ValueError, match="temperature"):
        logit_distillation_loss(s, t, temperature=0.0)


def test_gradients_reach_student_not_teacher():
    teacher, student = mlp(4, 16, 3, seed=0), mlp(4, 8, 3, seed=1)
    x = torch.randn(10, 4)
    loss = logit_distillation_loss(student(x), teacher(x))
    loss.backward()
    assert all(p.grad is None for p in teacher.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in student.parameters())
    distiller = Distiller(mlp(4, 16, 3, seed=0), mlp(4, 8, 3, seed=1), alpha=0.5)
    total, parts = distiller.loss(x, torch.randint(0, 3, (10,)))
    total.backward()
    assert set(parts) == {"kd", "ce", "loss"}
    assert total.item() == pytest.approx(0.5 * parts["ce"].item() + 0.5 * parts["kd"].item(), rel=1e-5)
    assert all(p.grad is None and not p.requires_grad for p in distiller.teacher.parameters())
    assert all(p.grad is not None for p in distiller.student.parameters())


def test_feature_loss():
    s, t = torch.randn(6, 5, requires_grad=True), torch.randn(6, 8, requires_grad=True)
    with pytest.raises(ValueError, match=r"5 != teacher feature dim 8.*nn\.Linear\(5, 8\)"):
        feature_distillation_loss(s, t)
    proj = nn.Linear(5, 8)
    loss = feature_distillation_loss(s, t, proj)
    assert loss.item() == pytest.approx(F.mse_loss(proj(s), t).item(), rel=1e-6)
    loss.backward()
    assert t.grad is None and s.grad is not None and proj.weight.grad is not None
    u = torch.randn(6, 8)
    assert feature_distillation_loss(3.0 * u, u, normalize=True).item() == pytest.approx(0.0, abs=1e-7)
    assert feature_distillation_loss(3.0 * u, u).item() > 0.1


def test_distiller_student_matches_teacher():
    teacher = mlp(4, 64, 3, seed=0, depth=2)  # fixed, larger random teacher
    student = mlp(4, 8, 3, seed=1)
    distiller = Distiller(teacher, student, temperature=2.0, alpha=0.0)
    opt = torch.optim.Adam(distiller.trainable_parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(0)
    x_test = torch.randn(1000, 4, generator=g)

    def agreement():
        with torch.no_grad():
            return (student(x_test).argmax(-1) == teacher(x_test).argmax(-1)).float().mean().item()

    before = agreement()
    teacher_state = {k: v.clone() for k, v in teacher.state_dict().items()}
    for i in range(400):
        parts = distiller.step(opt, torch.randn(128, 4, generator=g))  # no labels
        if i == 0:
            first = parts["kd"]
    assert set(parts) == {"kd", "loss"} and isinstance(parts["loss"], float)
    assert parts["kd"] < 0.2 * first
    assert agreement() >= 0.9 > before
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in teacher_state.items())


def test_distiller_features_and_modes():
    teacher, student = WithFeatures(4, 12, 3), WithFeatures(4, 6, 3)
    proj = nn.Linear(6, 12)
    d = Distiller(teacher, student, alpha=0.0, feature_weight=1.0, projector=proj)
    d.train()
    assert not d.teacher.training and d.student.training and d.training
    d.eval()
    assert not d.teacher.training and not d.student.training
    d.train()
    assert not d.teacher.training
    params = list(d.trainable_parameters())
    assert len(params) == len(list(student.parameters())) + 2
    opt = torch.optim.SGD(params, lr=0.1)
    x = torch.randn(16, 4)
    parts = d.step(opt, x)
    assert set(parts) == {"kd", "feat", "loss"}
    assert parts["loss"] == pytest.approx(parts["kd"] + parts["feat"], rel=1e-5)
    assert proj.weight.grad is not None
    # teacher in eval mode: dropout off, so its outputs are deterministic
    assert torch.equal(teacher(x)[0], teacher(x)[0])
    with pytest.raises(ValueError, match="feature_weight > 0.*student returned only logits"):
        Distiller(WithFeatures(4, 12, 3), mlp(4, 6, 3, seed=0), feature_weight=1.0).loss(x)
    with pytest.raises(ValueError, match="alpha"):
        Distiller(teacher, student, alpha=1.5)
    with pytest.raises(ValueError, match=r"tuple \(logits, features\)"):
        Distiller(teacher, _Triple(), alpha=0.0).loss(x)


class _Triple(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 3)

    def forward(self, x):
        y = self.lin(x)
        return y, y, y


def test_mutual_learning_loss_definition():
    a, b = torch.randn(5, 3, requires_grad=True), torch.randn(5, 3, requires_grad=True)
    y = torch.randint(0, 3, (5,))
    la, lb = mutual_learning_loss(a, b, y)
    pa, pb = F.log_softmax(a, -1), F.log_softmax(b, -1)
    kl_ba = (pb.exp() * (pb - pa)).sum(-1).mean()
    assert la.item() == pytest.approx((F.cross_entropy(a, y) + kl_ba).item(), rel=1e-5)
    la.backward()
    assert b.grad is None and a.grad is not None


def test_mutual_learner_toy_problem():
    g = torch.Generator().manual_seed(0)
    centers = torch.tensor([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])
    y = torch.randint(0, 3, (300,), generator=g)
    x = centers[y] + 0.8 * torch.randn(300, 2, generator=g)
    a, b = mlp(2, 16, 3, seed=1), mlp(2, 16, 3, seed=2)
    learner = MutualLearner(
        a, b, torch.optim.Adam(a.parameters(), lr=1e-2), torch.optim.Adam(b.parameters(), lr=1e-2), temperature=1.0
    )
    with torch.no_grad():
        start = {k: v.item() for k, v in learner.loss(x, y).items()}
    for _ in range(150):
        parts = learner.step(x, y)
    assert set(parts) == {"loss_a", "loss_b", "ce_a", "ce_b", "kl_a", "kl_b"}
    with torch.no_grad():
        end = {k: v.item() for k, v in learner.loss(x, y).items()}
    assert end["ce_a"] < 0.5 * start["ce_a"] and end["ce_b"] < 0.5 * start["ce_b"]
    assert end["kl_a"] < 0.5 * start["kl_a"] and end["kl_b"] < 0.5 * start["kl_b"]
    with pytest.raises(ValueError, match="labels shape"):
        learner.step(x, y[:10])
