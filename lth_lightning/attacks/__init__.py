"""Adversarial attacks in [0, 1] pixel space: one small API.

``attack = build_attack(cfg)`` (or ``make_attack("pgd", eps=0.3, steps=7)``) returns an ``Attack``;
``attack(model, x, y)`` returns adversarial inputs; ``adversarial_batch(model, x, y, attack)`` is a whole adversarial
training step's loss for any classifier, with what it cost in forward passes.
"""

from lth_lightning.attacks.core import (
    Attack,
    adversarial_batch,
    attack_passes,
    build_attack,
    build_eval_attack,
    make_attack,
    threat_model,
    trades_loss,
)

__all__ = ["Attack", "adversarial_batch", "attack_passes", "build_attack", "build_eval_attack", "make_attack",
           "threat_model", "trades_loss"]
