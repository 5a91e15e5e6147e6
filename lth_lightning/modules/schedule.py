"""Learning-rate and attack-ε schedules as per-step multipliers (so warmups are smooth within an epoch)."""

from __future__ import annotations

import math

from lth_lightning.config import OptimConfig


def lr_factor(step: int, total_steps: int, steps_per_epoch: float, cfg: OptimConfig) -> float:
    """Multiplier of the base LR at optimizer step ``step`` (0-based) of ``total_steps``.

    Linear warmup over ``cfg.warmup_epochs`` (the paper: 10), times the schedule: constant,
    multistep (×gamma at each milestone fraction; the paper: ×0.1 at 50 % and 75 %), cosine, or cyclic (0 at the
    start, 1 at ``cfg.peak`` of training, 0 at the last step: fast adversarial training's one cycle).
    """
    warmup_steps = cfg.warmup_epochs * steps_per_epoch
    warm = min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0
    progress = step / max(1, total_steps)
    if cfg.schedule == "multistep":
        decay = cfg.gamma ** sum(progress >= m for m in cfg.milestones)
    elif cfg.schedule == "cosine":
        decay = 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    elif cfg.schedule == "cyclic":  # the triangle at step + 1, as Wong et al. read it (t = epoch + (i + 1) / n)
        top, done = cfg.peak * total_steps, min(step + 1, total_steps)
        decay = done / top if done <= top else (total_steps - done) / (total_steps - top)
    else:
        decay = 1.0
    return warm * decay


def eps_factor(step: int, steps_per_epoch: float, warmup_epochs: float) -> float:
    """Multiplier of the training attack's ε (and step size) at optimizer step ``step`` (0-based): 0 at the
    first step, linear, exactly 1 from step ``warmup_epochs * steps_per_epoch`` on (1 throughout without a ramp)."""
    ramp = warmup_epochs * steps_per_epoch
    return min(1.0, step / ramp) if ramp > 0 else 1.0
