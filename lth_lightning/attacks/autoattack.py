"""AutoAttack (Croce & Hein 2020) through torchattacks, the maintained implementation we pin."""

from __future__ import annotations

import torch
from torch import nn

from lth_lightning.config import EvalConfig


def autoattack(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, cfg: EvalConfig,
               num_classes: int) -> torch.Tensor:
    """Adversarial examples from standard AutoAttack, or its APGD-CE + APGD-T part (``apgd``).

    torchattacks puts the model in eval mode while attacking and expects [0, 1] inputs, as we do.
    """
    import torchattacks

    norm = "Linf" if cfg.norm == "linf" else "L2"
    with torch.enable_grad():
        if cfg.autoattack == "standard":
            attack = torchattacks.AutoAttack(model, norm=norm, eps=eps, version="standard",
                                             n_classes=num_classes, seed=0)
        else:
            attack = torchattacks.MultiAttack([
                torchattacks.APGD(model, norm=norm, eps=eps, loss="ce", seed=0),
                torchattacks.APGDT(model, norm=norm, eps=eps, n_classes=num_classes, seed=0),
            ])
        was_training = model.training
        x_adv = attack(x, y)
        model.train(was_training)
    return x_adv.detach()
