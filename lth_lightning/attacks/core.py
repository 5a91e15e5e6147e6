"""FGSM, FGSM-RS, N-FGSM, PGD (L∞ and L2) and the TRADES loss.

Design choices, and why:
- Inputs live in [0, 1]; the model normalises. The ε-ball and the box are both enforced in pixel space.
- Gradients are taken with ``torch.autograd.grad`` w.r.t. the perturbation only: parameter ``.grad`` is
  never touched, and under DDP no gradient all-reduce fires during attack steps (the parameters'
  accumulate-grad hooks never run).
- The loss is computed in fp32, so the attack is the same under bf16/fp16 autocast.
- BatchNorm mode while attacking is explicit (``bn_mode``): "train" follows the paper's code (and
  Madry's), "eval" freezes running statistics so crafting examples does not move them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from lth_lightning.config import AttackConfig, EvalConfig
from lth_lightning.results import ThreatModel


@dataclass(frozen=True)
class Attack:
    """An iterative gradient attack. FGSM is ``steps=1`` with step ε and no random start; N-FGSM one step of ε
    from a start of ±2ε (``start``) with no projection back to the ε-ball (``project=False``)."""

    eps: float
    step_size: float
    steps: int
    norm: str = "linf"  # linf | l2
    random_start: bool = True
    start: float = 1.0  # L∞ random start: uniform in ±start·ε
    project: bool = True  # clip each step's perturbation to the ε-ball (the [0, 1] box always holds)
    bn_mode: str = "eval"
    loss: str = "ce"  # ce | kl (TRADES inner maximisation)
    # a 0-dim tensor multiplying eps and step (the training ε ramp): set in place each step, so a captured
    # CUDA graph reads the current value; None: eps and step_size as they are
    scale: torch.Tensor | None = field(default=None, compare=False)

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.eps == 0:
            return x.detach()
        eps, step = (self.eps, self.step_size) if self.scale is None else (self.eps * self.scale,
                                                                           self.step_size * self.scale)
        with bn_mode(model, self.bn_mode), torch.enable_grad():
            target = y if self.loss == "ce" else F.softmax(model(x).detach().float(), dim=1)
            delta = self._init_delta(x, eps)
            for _ in range(self.steps):
                delta.requires_grad_(True)
                loss = self._loss(model(x + delta), target)
                (grad,) = torch.autograd.grad(loss, delta)
                delta = self._step(x, delta.detach(), grad, eps, step)
        return (x + delta).detach()

    def _loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.loss == "ce":
            return F.cross_entropy(logits.float(), target, reduction="sum")
        return F.kl_div(F.log_softmax(logits.float(), dim=1), target, reduction="sum")

    def _init_delta(self, x: torch.Tensor, eps: float | torch.Tensor) -> torch.Tensor:
        if not self.random_start:
            return torch.zeros_like(x)
        if self.loss == "kl":  # TRADES starts at a small Gaussian
            delta = 0.001 * torch.randn_like(x)
        elif self.norm == "linf" and isinstance(eps, torch.Tensor):
            delta = torch.empty_like(x).uniform_(-1, 1) * (eps * self.start)
        elif self.norm == "linf":
            delta = torch.empty_like(x).uniform_(-eps * self.start, eps * self.start)
        else:
            delta = _l2_project(torch.randn_like(x), eps * torch.rand(len(x), device=x.device))
        return (x + delta).clamp_(0, 1) - x

    def _step(self, x: torch.Tensor, delta: torch.Tensor, grad: torch.Tensor, eps: float | torch.Tensor,
              step: float | torch.Tensor) -> torch.Tensor:
        if self.norm == "linf":
            delta = delta + step * grad.sign()
            delta = torch.clamp(delta, -eps, eps) if self.project else delta
        else:
            norms = grad.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *[1] * (x.dim() - 1))
            delta = _l2_project(delta + step * grad / norms, eps)
        return (x + delta).clamp_(0, 1) - x

    @property
    def passes(self) -> int:
        """Forward passes per example spent crafting one adversarial batch (each step is forward+backward;
        TRADES adds one forward for the clean target distribution)."""
        return self.steps + (1 if self.loss == "kl" else 0)


def _l2_project(delta: torch.Tensor, radius: float | torch.Tensor) -> torch.Tensor:
    norms = delta.flatten(1).norm(dim=1).clamp_min(1e-12)
    factor = (torch.as_tensor(radius, device=delta.device) / norms).clamp(max=1.0)
    return delta * factor.view(-1, *[1] * (delta.dim() - 1))


@contextlib.contextmanager
def bn_mode(model: nn.Module, mode: str) -> Iterator[None]:
    """Temporarily put the model in train or eval mode; restores each submodule's own flag."""
    saved = [(m, m.training) for m in model.modules()]
    model.train(mode == "train")
    try:
        yield
    finally:
        for module, flag in saved:
            module.training = flag


def build_attack(cfg: AttackConfig) -> Attack | None:
    """The training attack, or None for natural training. Its step is ``cfg.step``: the configured one, else the
    attack's published default (FGSM ε, FGSM-RS 1.25 ε, N-FGSM ε, PGD ε/4)."""
    if cfg.name == "none":
        return None
    step, mode = cfg.step, cfg.bn_mode
    if cfg.name == "fgsm":
        return Attack(cfg.eps, step, 1, random_start=False, bn_mode=mode)
    if cfg.name == "fgsm_rs":
        return Attack(cfg.eps, step, 1, random_start=True, bn_mode=mode)
    if cfg.name == "n_fgsm":
        return Attack(cfg.eps, step, 1, random_start=True, start=cfg.noise_ratio, project=False, bn_mode=mode)
    if cfg.name == "trades":
        return Attack(cfg.eps, step, cfg.steps, random_start=True, bn_mode=mode, loss="kl")
    norm = "l2" if cfg.name == "pgd_l2" else "linf"
    return Attack(cfg.eps, step, cfg.steps, norm=norm, random_start=cfg.random_start, bn_mode=mode)


def build_eval_attack(cfg: EvalConfig, train_eps: float) -> Attack:
    """The evaluation PGD: always eval-mode BatchNorm, random start, ε from the training threat model."""
    eps = cfg.eps if cfg.eps is not None else train_eps
    step = cfg.step_size if cfg.step_size is not None else eps / 4
    return Attack(eps, step, cfg.steps, norm=cfg.norm, random_start=True, bn_mode="eval")


def threat_model(evaluation: EvalConfig, attack: AttackConfig) -> ThreatModel | None:
    """What every robust number of a run trained with ``attack`` means (None: robust evaluation is off)."""
    if not evaluation.robust_for(attack):
        return None
    a = build_eval_attack(evaluation, attack.eps)
    return ThreatModel(a.norm, a.eps, a.steps, evaluation.test_restarts)


def attack_passes(attack: Attack | None) -> int:
    """Forward passes per training example: the attack's plus the update's (TRADES's update runs the
    clean and the adversarial input: 2). Natural 1, FGSM 2, PGD-k k+1, TRADES-k k+3."""
    if attack is None:
        return 1
    return attack.passes + (2 if attack.loss == "kl" else 1)


def trades_loss(model: nn.Module, x: torch.Tensor, x_adv: torch.Tensor, y: torch.Tensor,
                beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """TRADES (Zhang et al. 2019): CE(clean) + β·KL(p(x) ‖ p(x_adv)). Returns (loss, clean logits)."""
    logits = model(x)
    logits_adv = model(x_adv)
    natural = F.cross_entropy(logits.float(), y)
    robust = F.kl_div(F.log_softmax(logits_adv.float(), dim=1), F.softmax(logits.float(), dim=1),
                      reduction="batchmean")
    return natural + beta * robust, logits


def make_attack(name: str, eps: float, **settings: object) -> Attack | None:
    """An attack for your own training step, by name and ε in [0, 1] pixel space (``settings``: any
    ``AttackConfig`` field: ``steps``, ``step_size``, ``step_ratio``, ``noise_ratio``...), at the defaults every
    arm here uses (FGSM-RS steps 1.25 ε, N-FGSM starts at ±2 ε, PGD steps ε/4). ``none``: None (natural)."""
    unread = {"beta", "eps_warmup_epochs", "switch_at"} & set(settings)  # a training loop's, not an attack's
    if unread:
        raise ValueError(f"make_attack: {', '.join(sorted(unread))} belong to the training step, not the attack "
                         "(TRADES's beta: adversarial_batch(..., beta=); a ramp or a hand-over: your loop)")
    return build_attack(AttackConfig(name=name, eps=eps, **settings))  # type: ignore[arg-type]


def adversarial_batch(model: nn.Module, x: torch.Tensor, y: torch.Tensor, attack: Attack | None,
                      beta: float = 6.0) -> tuple[torch.Tensor, torch.Tensor, int]:
    """One adversarial training step's loss, for any classifier: the attack crafts the inputs (in [0, 1]; the model
    normalises), then the loss is cross-entropy on them, or TRADES's CE(clean) + β·KL for a ``loss="kl"`` attack.
    Returns (loss, the logits it scored, forward passes it cost: ``attack_passes`` × batch) -- add the last to a
    ledger to compare recipes by cost as this package does."""
    passes = attack_passes(attack) * len(x)
    if attack is not None and attack.loss == "kl":
        loss, logits = trades_loss(model, x, attack(model, x, y), y, beta)
        return loss, logits, passes
    logits = model(attack(model, x, y) if attack is not None else x)
    return F.cross_entropy(logits.float(), y), logits, passes
