"""Adversarial attacks in [0, 1] pixel space: one small API.

``attack = build_attack(cfg)`` returns an ``Attack``; ``attack(model, x, y)`` returns adversarial inputs.
"""

from lth_lightning.attacks.core import (
    Attack,
    attack_passes,
    build_attack,
    build_eval_attack,
    threat_model,
    trades_loss,
)

__all__ = ["Attack", "attack_passes", "build_attack", "build_eval_attack", "threat_model", "trades_loss"]
