"""Independent plain-PyTorch reference implementations of every training arm's definition.

This module deliberately imports nothing from the project under test (``lth_lightning``): it uses only
``torch``, ``torch.nn.functional``, ``math`` and the standard library, and re-derives each definition from
its written spec so that tests can compare the framework against code that shares nothing with it.

Conventions: images are float tensors in [0, 1]; ``model(x)`` returns logits; attacks differentiate w.r.t.
the perturbation only (``torch.autograd.grad``), never touching parameter ``.grad``; losses inside attacks
are computed on ``logits.float()``. Random draws use the global torch RNG in a fixed call order.

ε ramp: every attack takes ``factor`` (``None`` = no ramp). When given, the attack's eps and step size are
multiplied by it, and an L∞ random start of radius r is drawn as ``uniform_(-1, 1) * r`` instead of
``uniform_(-r, r)``. Only a configured ``eps == 0`` returns ``x`` unchanged (no RNG draw); a factor of 0
still runs the attack with an effective eps of 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

# ----------------------------------------------------------------------------------------------- attacks


def _box(x: Tensor, delta: Tensor) -> Tensor:
    """Project ``delta`` so that ``x + delta`` lies in [0, 1]: ``(x + delta).clamp(0, 1) - x``."""
    return (x + delta).clamp(0, 1) - x


def _linf_start(x: Tensor, r: float, ramp_draw: bool) -> Tensor:
    """L∞ random start of radius ``r`` (box-projected); ramp form ``uniform_(-1, 1) * r`` if ``ramp_draw``."""
    delta = torch.empty_like(x).uniform_(-1, 1) * r if ramp_draw else torch.empty_like(x).uniform_(-r, r)
    return _box(x, delta)


def _ce_grad(model: torch.nn.Module, x: Tensor, y: Tensor, delta: Tensor) -> Tensor:
    """Gradient w.r.t. ``delta`` of ``cross_entropy(model(x + delta).float(), y, reduction="sum")``."""
    delta = delta.detach().requires_grad_(True)
    loss = F.cross_entropy(model(x + delta).float(), y, reduction="sum")
    (grad,) = torch.autograd.grad(loss, delta)
    return grad


def _scale(factor: float | None) -> float:
    return 1.0 if factor is None else factor


def fgsm(model: torch.nn.Module, x: Tensor, y: Tensor, eps: float, *, factor: float | None = None) -> Tensor:
    """FGSM without random start: one step ``clamp(eps * sign(grad), -eps, eps)``, box-projected."""
    if eps == 0:
        return x.detach().clone()
    e = eps * _scale(factor)
    delta = torch.zeros_like(x)
    delta = (delta + e * _ce_grad(model, x, y, delta).sign()).clamp(-e, e)
    delta = _box(x, delta)
    return (x + delta).detach()


def fgsm_rs(
    model: torch.nn.Module, x: Tensor, y: Tensor, eps: float, alpha: float, *, factor: float | None = None
) -> Tensor:
    """FGSM-RS (Wong et al. 2020): start U(-eps, eps) box-projected, one step ``alpha``, clamp to eps, box.

    ``alpha`` is the unramped step size (conventionally 1.25 * eps); under a ramp both eps and alpha are scaled.
    """
    if eps == 0:
        return x.detach().clone()
    s = _scale(factor)
    e, a = eps * s, alpha * s
    delta = _linf_start(x, e, factor is not None)
    delta = (delta + a * _ce_grad(model, x, y, delta).sign()).clamp(-e, e)
    delta = _box(x, delta)
    return (x + delta).detach()


def n_fgsm(
    model: torch.nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float,
    noise: float = 2.0,
    alpha: float = 1.0,
    *,
    factor: float | None = None,
) -> Tensor:
    """N-FGSM (de Jorge et al. 2022): start of radius ``noise * eps``, one step ``alpha * eps``, no eps clamp.

    The start is always drawn (even for ``noise == 0``); only the box projection follows each stage.
    """
    if eps == 0:
        return x.detach().clone()
    e = eps * _scale(factor)
    delta = _linf_start(x, noise * e, factor is not None)
    delta = delta + (alpha * e) * _ce_grad(model, x, y, delta).sign()
    delta = _box(x, delta)
    return (x + delta).detach()


def pgd(
    model: torch.nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float,
    alpha: float,
    steps: int,
    random_start: bool = True,
    *,
    factor: float | None = None,
) -> Tensor:
    """Madry L∞ PGD: optional start U(-eps, eps); ``steps`` × (sign step ``alpha``, clamp to eps, box)."""
    if eps == 0:
        return x.detach().clone()
    s = _scale(factor)
    e, a = eps * s, alpha * s
    delta = _linf_start(x, e, factor is not None) if random_start else torch.zeros_like(x)
    for _ in range(steps):
        delta = (delta + a * _ce_grad(model, x, y, delta).sign()).clamp(-e, e)
        delta = _box(x, delta).detach()
    return (x + delta).detach()


def trades_adv(
    model: torch.nn.Module, x: Tensor, eps: float, alpha: float, steps: int, *, factor: float | None = None
) -> Tensor:
    """TRADES inner max: start ``0.001 * randn`` (box, never ramp-scaled); ``steps`` × maximise
    ``kl_div(log_softmax(model(x + delta)), softmax(model(x)), "sum")`` by sign step ``alpha``, clamp, box."""
    if eps == 0:
        return x.detach().clone()
    s = _scale(factor)
    e, a = eps * s, alpha * s
    p = F.softmax(model(x).detach().float(), dim=1)
    delta = _box(x, 0.001 * torch.randn_like(x))
    for _ in range(steps):
        d = delta.detach().requires_grad_(True)
        loss = F.kl_div(F.log_softmax(model(x + d).float(), dim=1), p, reduction="sum")
        (grad,) = torch.autograd.grad(loss, d)
        delta = (d.detach() + a * grad.sign()).clamp(-e, e)
        delta = _box(x, delta).detach()
    return (x + delta).detach()


def trades_loss(model: torch.nn.Module, x: Tensor, x_adv: Tensor, y: Tensor, beta: float) -> Tensor:
    """``CE(f(x), y) + beta * KL_batchmean(softmax f(x) || softmax f(x_adv))``; clean logits computed once, first."""
    clean = model(x).float()
    adv = model(x_adv).float()
    kl = F.kl_div(F.log_softmax(adv, dim=1), F.softmax(clean, dim=1), reduction="batchmean")
    return F.cross_entropy(clean, y) + beta * kl


# ------------------------------------------------------------------------------------------- schedules


def eps_factor(step: int, steps_per_epoch: int, ramp_epochs: float) -> float:
    """ε-ramp factor for 0-based optimizer step: ``min(1, step / (ramp_epochs * P))`` if ramp_epochs > 0 else 1."""
    if ramp_epochs > 0:
        return min(1.0, step / (ramp_epochs * steps_per_epoch))
    return 1.0


def _interp(x: float, xp: Sequence[float], fp: Sequence[float]) -> float:
    """Scalar ``np.interp`` (same branch structure and formula ``slope * (x - xp[j]) + fp[j]``)."""
    if x < xp[0]:
        return float(fp[0])
    if x > xp[-1]:
        return float(fp[-1])
    j = max(i for i in range(len(xp)) if xp[i] <= x)
    if j == len(xp) - 1 or xp[j] == x:
        return float(fp[j])
    slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j])
    return slope * (x - xp[j]) + fp[j]


def lr_factor(
    step: int,
    total: int,
    steps_per_epoch: int,
    schedule: str,
    *,
    milestones: Sequence[float] = (0.5, 0.75),
    gamma: float = 0.1,
    warmup_epochs: float = 0.0,
    peak: float = 0.4,
) -> float:
    """LR multiplier at 0-based step ``s`` of ``T = total``: warmup × schedule.

    warmup = ``min(1, (s + 1) / (warmup_epochs * P))`` if that denominator > 0 else 1;
    constant = 1; multistep = ``gamma ** #{m : s / T >= m}``; cosine = ``0.5 * (1 + cos(pi * min(1, s / T)))``;
    cyclic = ``interp(s + 1, [0, peak * T, T], [0, 1, 0])`` (Wong et al. triangular one-cycle).
    """
    warm_steps = warmup_epochs * steps_per_epoch
    warm = min(1.0, (step + 1) / warm_steps) if warm_steps > 0 else 1.0
    if schedule == "constant":
        f = 1.0
    elif schedule == "multistep":
        f = gamma ** sum(1 for m in milestones if step / total >= m)
    elif schedule == "cosine":
        f = 0.5 * (1.0 + math.cos(math.pi * min(1.0, step / total)))
    elif schedule == "cyclic":
        f = _interp(step + 1, [0.0, peak * total, float(total)], [0.0, 1.0, 0.0])
    else:
        raise ValueError(f"unknown schedule {schedule!r}")
    return warm * f


# ------------------------------------------------------------------------------------------- training


def train_steps(
    model: torch.nn.Module,
    batches: Sequence[tuple[Tensor, Tensor]],
    rng_states: Sequence[Tensor],
    make_adv: Callable[[int, torch.nn.Module, Tensor, Tensor], Tensor],
    optimizer: torch.optim.Optimizer,
    lr_factors: Sequence[float],
    masks: Mapping[str, Tensor] | None = None,
    trades_beta: float | None = None,
) -> None:
    """Reference loop. Step i: restore RNG ``rng_states[i]``; ``x_adv = make_adv(i, model, x, y)``; ``model.train()``;
    loss = mean CE on ``model(x_adv)`` (or ``trades_loss`` if ``trades_beta`` is set); every group's
    ``lr = initial_lr * lr_factors[i]``; zero_grad, backward, step; then re-apply ``masks`` (name -> bool) in place.
    """
    params = dict(model.named_parameters())
    for i, (x, y) in enumerate(batches):
        torch.set_rng_state(rng_states[i])
        x_adv = make_adv(i, model, x, y)
        model.train()
        if trades_beta is None:
            loss = F.cross_entropy(model(x_adv).float(), y)
        else:
            loss = trades_loss(model, x, x_adv, y, trades_beta)
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
            group["lr"] = group["initial_lr"] * lr_factors[i]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if masks:
            with torch.no_grad():
                for name, m in masks.items():
                    p = params[name]
                    p.mul_(m.to(device=p.device, dtype=p.dtype))


# ----------------------------------------------------------------------------------- starting weights


def layer_normalized_masks(weights: Mapping[str, Tensor], sparsity: float) -> dict[str, Tensor]:
    """Boosting-ticket keep-masks: score ``|w| / mean(|w|)`` per layer, pooled; drop the ``round(sparsity * N)``
    lowest by a stable ascending sort of the concatenation (dict order, each layer flattened row-major)."""
    scores = [(w.detach().abs() / w.detach().abs().mean()).flatten() for w in weights.values()]
    flat = torch.cat(scores)
    k = round(sparsity * flat.numel())
    keep = torch.ones(flat.numel(), dtype=torch.bool, device=flat.device)
    keep[torch.sort(flat, stable=True).indices[:k]] = False
    out: dict[str, Tensor] = {}
    start = 0
    for name, w in weights.items():
        out[name] = keep[start : start + w.numel()].view(w.shape)
        start += w.numel()
    return out


def masked(state: Mapping[str, Tensor], masks: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Copy of ``state`` with each entry named in ``masks`` multiplied by its mask."""
    return {k: v * masks[k].to(device=v.device, dtype=v.dtype) if k in masks else v.clone() for k, v in state.items()}


def slice_lenet(theta0: Mapping[str, Tensor], kept: Mapping[str, Tensor], prefix: str) -> dict[str, Tensor]:
    """Compact LeNet state: rows of ``features.0``/``features.3``/``fc.1`` (and their biases) = kept indices;
    input columns of the next layer = previous kept indices (for ``fc.1``: all s*s positions of each kept conv2
    channel, channel-major); ``classifier`` keeps all rows, its columns follow ``fc.1``. Other keys copied."""
    c1, c2, fc = (prefix + r for r in ("features.0", "features.3", "fc.1"))
    i1, i2, ih = kept[c1], kept[c2], kept[fc]
    out = {k: v.clone() for k, v in theta0.items()}

    def rows(root: str, idx: Tensor) -> None:
        for suffix in (".weight", ".bias"):
            if root + suffix in theta0:
                t = theta0[root + suffix]
                out[root + suffix] = t.index_select(0, idx.to(t.device)).clone()

    rows(c1, i1)
    rows(c2, i2)
    rows(fc, ih)
    w2 = out[c2 + ".weight"]
    out[c2 + ".weight"] = w2.index_select(1, i1.to(w2.device)).clone()
    n2, n_in = theta0[c2 + ".weight"].shape[0], theta0[fc + ".weight"].shape[1]
    if n_in % n2:
        raise ValueError(f"fc input {n_in} is not a multiple of conv2 channels {n2}")
    ss = n_in // n2
    wf = out[fc + ".weight"]
    cols = (i2.to(wf.device)[:, None] * ss + torch.arange(ss, device=wf.device)).flatten()
    out[fc + ".weight"] = wf.index_select(1, cols).clone()
    wc = theta0[prefix + "classifier.weight"]
    out[prefix + "classifier.weight"] = wc.index_select(1, ih.to(wc.device)).clone()
    return out


def dead_rows(state: Mapping[str, Tensor], roots: Sequence[str]) -> dict[str, int]:
    """Per root, the number of output rows whose weight row and bias entry (if any) are all exactly zero."""
    out: dict[str, int] = {}
    for root in roots:
        dead = (state[root + ".weight"].flatten(1) == 0).all(dim=1)
        if root + ".bias" in state:
            dead &= state[root + ".bias"] == 0
        out[root] = int(dead.sum())
    return out
