"""One compact line per epoch, for logs that are not a terminal (Rich's live bar is for a TTY)."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.utilities import rank_zero_info


class EpochLine(L.Callback):
    """``[ticket] epoch 3/14 | val clean 90.10 robust 40.20 | 3.2 s train | 1.2e+04 passes`` after each epoch."""

    def __init__(self, stage: str) -> None:
        self.stage = stage

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        history = getattr(pl_module, "history", [])
        if trainer.sanity_checking or not history:
            return
        h = history[-1]
        robust = f" robust {h.val_robust:.2f}" if h.val_robust is not None else ""
        rank_zero_info(f"[{self.stage}] epoch {h.epoch}/{trainer.max_epochs} | val clean {h.val_clean:.2f}{robust} "
                       f"| {h.train_seconds:.1f} s train | {h.passes:.3g} passes")
