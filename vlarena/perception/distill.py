"""Knowledge distillation (teacher -> student) and deep mutual learning (student <-> student).

- ``logit_distillation_loss``: Hinton et al. 2015, "Distilling the Knowledge in a Neural
  Network": ``KL(softmax(t / T) || softmax(s / T)) * T^2``, averaged over samples.
- ``feature_distillation_loss``: FitNets (Romero et al. 2015, "FitNets: Hints for Thin Deep
  Nets"): MSE between (a projection of) the student's features and the teacher's.
- ``Distiller``: a frozen teacher and a trainable student (plus optional projector) combining
  ``alpha * CE(student, labels) + (1 - alpha) * KD + feature_weight * FitNets``.
- ``mutual_learning_loss`` / ``MutualLearner``: Deep Mutual Learning (Zhang et al. 2018):
  two students trained together, each on ``CE(own, labels) + KL(p_other || p_own)``.

Conventions. Logits are ``(..., C)`` with classes on the last dim; leading dims are
flattened into samples and the KL is summed over classes and averaged over samples
("batchmean"); labels are ``(...)`` class ids (``-100`` is ignored, as in
``F.cross_entropy``). The target side of every distillation term (the teacher, or the other
peer) is detached, so gradients only reach the model being taught. Modules used by
``Distiller`` and ``MutualLearner`` follow one contract: ``module(x)`` returns either the
logits or a tuple ``(logits, features)``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


def _check_temperature(temperature: float) -> float:
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
        raise ValueError(f"temperature must be a positive number, got {temperature!r}")
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a positive finite number, got {temperature!r}")
    return float(temperature)


def _check_logits(name: str, logits: Any) -> torch.Tensor:
    if not isinstance(logits, torch.Tensor) or logits.dim() < 1 or not logits.is_floating_point():
        got = f"shape {tuple(logits.shape)} {logits.dtype}" if isinstance(logits, torch.Tensor) else type(logits)
        raise ValueError(f"{name} must be a float tensor (..., C) of class logits, got {got}")
    return logits


def _kd(student_logits: torch.Tensor, target_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``KL(softmax(target/T) || softmax(student/T)) * T^2`` with batchmean; target detached; no checks."""
    c = student_logits.shape[-1]
    log_p_s = F.log_softmax(student_logits.reshape(-1, c).float() / temperature, dim=-1)
    log_p_t = F.log_softmax(target_logits.detach().reshape(-1, c).float() / temperature, dim=-1)
    kl = F.kl_div(log_p_s, log_p_t, reduction="batchmean", log_target=True)
    return kl * temperature**2


def logit_distillation_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 2.0
) -> torch.Tensor:
    """Hinton KD loss: ``KL(softmax(t/T) || softmax(s/T)) * T^2``, batchmean over all leading dims.

    The teacher logits are detached. Shapes must match; ``temperature`` must be > 0.
    """
    _check_logits("student_logits", student_logits)
    _check_logits("teacher_logits", teacher_logits)
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"student_logits shape {tuple(student_logits.shape)} must equal teacher_logits shape "
            f"{tuple(teacher_logits.shape)}"
        )
    return _kd(student_logits, teacher_logits, _check_temperature(temperature))


def feature_distillation_loss(
    student_feats: torch.Tensor,
    teacher_feats: torch.Tensor,
    projector: nn.Module | None = None,
    normalize: bool = False,
) -> torch.Tensor:
    """FitNets hint loss: ``MSE(projector(student), teacher.detach())`` (mean over all elements).

    Without a projector the feature sizes must match. With ``normalize`` both sides are
    L2-normalised on the last dim first (a cosine-style hint, insensitive to feature scale).
    """
    for name, t in (("student_feats", student_feats), ("teacher_feats", teacher_feats)):
        if not isinstance(t, torch.Tensor) or t.dim() < 1 or not t.is_floating_point():
            got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise ValueError(f"{name} must be a float tensor (..., D), got {got}")
    ds, dt = student_feats.shape[-1], teacher_feats.shape[-1]
    if projector is None:
        if ds != dt:
            raise ValueError(
                f"student feature dim {ds} != teacher feature dim {dt}; pass a projector, "
                f"e.g. projector=nn.Linear({ds}, {dt})"
            )
        s = student_feats
    else:
        s = projector(student_feats)
    t = teacher_feats.detach()
    if s.shape != t.shape:
        what = "projected student" if projector is not None else "student"
        raise ValueError(f"{what} features shape {tuple(s.shape)} must equal teacher features shape {tuple(t.shape)}")
    if normalize:
        s, t = F.normalize(s, dim=-1), F.normalize(t, dim=-1)
    return F.mse_loss(s.float(), t.float())


def split_output(out: Any, who: str = "module") -> tuple[torch.Tensor, torch.Tensor | None]:
    """Apply the module contract: ``logits`` or ``(logits, features)`` -> ``(logits, features or None)``."""
    if isinstance(out, torch.Tensor):
        return out, None
    if isinstance(out, (tuple, list)) and len(out) == 2 and all(isinstance(o, torch.Tensor) for o in out):
        return out[0], out[1]
    got = f"a {type(out).__name__} of length {len(out)}" if isinstance(out, (tuple, list)) else type(out).__name__
    raise ValueError(f"{who}(x) must return logits or a tuple (logits, features), got {got}")


def _two_modules(name_a: str, a: Any, name_b: str, b: Any) -> None:
    if not isinstance(a, nn.Module) or not isinstance(b, nn.Module):
        raise ValueError(f"{name_a} and {name_b} must be nn.Module, got {type(a).__name__}, {type(b).__name__}")
    if a is b:
        raise ValueError(f"{name_a} and {name_b} must be different modules")


def _cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    if not isinstance(labels, torch.Tensor) or labels.dtype != torch.long:
        got = f"{labels.dtype}" if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise ValueError(f"labels must be a LongTensor of class ids, got {got}")
    if labels.shape != logits.shape[:-1]:
        raise ValueError(
            f"labels shape {tuple(labels.shape)} must equal the logits shape without its class dim "
            f"{tuple(logits.shape[:-1])}"
        )
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1))


class Distiller(nn.Module):
    """A frozen teacher teaching a student: ``alpha*CE + (1-alpha)*KD + feature_weight*FitNets``.

    The teacher is put in eval mode with ``requires_grad=False`` and stays in eval mode
    through ``train()``. ``trainable_parameters()`` yields the student's and projector's
    parameters (what the optimizer passed to ``step`` should hold).
    """

    def __init__(
        self,
        teacher: nn.Module,
        student: nn.Module,
        temperature: float = 2.0,
        alpha: float = 0.5,
        feature_weight: float = 0.0,
        projector: nn.Module | None = None,
    ) -> None:
        super().__init__()
        _two_modules("teacher", teacher, "student", student)
        self.temperature = _check_temperature(temperature)
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be a number in [0, 1], got {alpha!r}")
        if isinstance(feature_weight, bool) or not isinstance(feature_weight, (int, float)) or not feature_weight >= 0:
            raise ValueError(f"feature_weight must be a number >= 0, got {feature_weight!r}")
        if projector is not None and not isinstance(projector, nn.Module):
            raise ValueError(f"projector must be an nn.Module or None, got {type(projector).__name__}")
        self.alpha = float(alpha)
        self.feature_weight = float(feature_weight)
        self.teacher = teacher
        self.student = student
        self.projector = projector
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.teacher.eval()

    def train(self, mode: bool = True) -> Distiller:
        """Set train/eval mode on the student and projector; the teacher always stays in eval mode."""
        super().train(mode)
        self.teacher.eval()
        return self

    def trainable_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of the student and (when given) the projector."""
        yield from self.student.parameters()
        if self.projector is not None:
            yield from self.projector.parameters()

    def loss(self, x: Any, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total loss and its detached parts ``{"ce"?, "kd", "feat"?, "loss"}``.

        ``ce`` appears only when labels are given, ``feat`` only when ``feature_weight > 0``.
        """
        with torch.no_grad():
            t_logits, t_feats = split_output(self.teacher(x), "teacher")
        s_logits, s_feats = split_output(self.student(x), "student")
        if s_logits.shape != t_logits.shape:
            raise ValueError(
                f"student logits shape {tuple(s_logits.shape)} must equal teacher logits shape {tuple(t_logits.shape)}"
            )
        parts: dict[str, torch.Tensor] = {}
        kd = _kd(s_logits, t_logits, self.temperature)
        total = (1.0 - self.alpha) * kd
        parts["kd"] = kd
        if labels is not None:
            ce = _cross_entropy(s_logits, labels)
            total = total + self.alpha * ce
            parts["ce"] = ce
        if self.feature_weight > 0:
            if s_feats is None or t_feats is None:
                missing = [n for n, f in (("teacher", t_feats), ("student", s_feats)) if f is None]
                raise ValueError(
                    f"feature_weight > 0 needs both modules to return (logits, features); "
                    f"{' and '.join(missing)} returned only logits"
                )
            feat = feature_distillation_loss(s_feats, t_feats, self.projector)
            total = total + self.feature_weight * feat
            parts["feat"] = feat
        parts = {k: v.detach() for k, v in parts.items()}
        parts["loss"] = total.detach()
        return total, parts

    def forward(self, x: Any) -> Any:
        """The student's output (what is deployed after distillation)."""
        return self.student(x)

    def step(self, optimizer: torch.optim.Optimizer, x: Any, labels: torch.Tensor | None = None) -> dict[str, float]:
        """One optimisation step of the student (and projector); returns the loss parts as floats."""
        loss, parts = self.loss(x, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {k: float(v) for k, v in parts.items()}


def _mutual_parts(
    logits_a: torch.Tensor, logits_b: torch.Tensor, labels: torch.Tensor, temperature: float
) -> dict[str, torch.Tensor]:
    _check_logits("logits_a", logits_a)
    _check_logits("logits_b", logits_b)
    if logits_a.shape != logits_b.shape:
        raise ValueError(f"logits_a shape {tuple(logits_a.shape)} must equal logits_b shape {tuple(logits_b.shape)}")
    t = _check_temperature(temperature)
    ce_a, ce_b = _cross_entropy(logits_a, labels), _cross_entropy(logits_b, labels)
    kl_a, kl_b = _kd(logits_a, logits_b, t), _kd(logits_b, logits_a, t)
    return {"ce_a": ce_a, "ce_b": ce_b, "kl_a": kl_a, "kl_b": kl_b, "loss_a": ce_a + kl_a, "loss_b": ce_b + kl_b}


def mutual_learning_loss(
    logits_a: torch.Tensor, logits_b: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Deep Mutual Learning losses ``(loss_a, loss_b)``.

    ``loss_a = CE(a, labels) + KL(p_b || p_a) * T^2`` with ``p_b`` detached, and symmetrically for b
    (``T = 1`` is the paper's setting; ``T^2`` keeps gradient scale comparable at other temperatures).
    """
    parts = _mutual_parts(logits_a, logits_b, labels, temperature)
    return parts["loss_a"], parts["loss_b"]


class MutualLearner(nn.Module):
    """Two peer students trained together with Deep Mutual Learning, each with its own optimizer.

    Optimizers default to ``Adam(lr=1e-3)`` over each student's parameters.
    """

    def __init__(
        self,
        student_a: nn.Module,
        student_b: nn.Module,
        optimizer_a: torch.optim.Optimizer | None = None,
        optimizer_b: torch.optim.Optimizer | None = None,
        temperature: float = 1.0,
    ) -> None:
        super().__init__()
        _two_modules("student_a", student_a, "student_b", student_b)
        self.temperature = _check_temperature(temperature)
        self.student_a = student_a
        self.student_b = student_b
        self.optimizer_a = optimizer_a if optimizer_a is not None else torch.optim.Adam(student_a.parameters(), 1e-3)
        self.optimizer_b = optimizer_b if optimizer_b is not None else torch.optim.Adam(student_b.parameters(), 1e-3)

    def loss(self, x: Any, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Both peers' losses and parts: ``loss_a, loss_b, ce_a, ce_b, kl_a, kl_b`` (graph attached)."""
        logits_a, _ = split_output(self.student_a(x), "student_a")
        logits_b, _ = split_output(self.student_b(x), "student_b")
        return _mutual_parts(logits_a, logits_b, labels, self.temperature)

    def step(self, x: Any, labels: torch.Tensor) -> dict[str, float]:
        """Update both students from the same batch (each against the other's pre-step predictions)."""
        parts = self.loss(x, labels)
        self.optimizer_a.zero_grad(set_to_none=True)
        self.optimizer_b.zero_grad(set_to_none=True)
        # loss_a only reaches student_a (p_b is detached) and vice versa, so one backward serves both.
        (parts["loss_a"] + parts["loss_b"]).backward()
        self.optimizer_a.step()
        self.optimizer_b.step()
        return {k: float(v.detach()) for k, v in parts.items()}
