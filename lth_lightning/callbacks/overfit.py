"""Watch for FGSM catastrophic overfitting: robust accuracy collapsing within an epoch or two."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.utilities import rank_zero_warn


class CatastrophicOverfitting(L.Callback):
    """Warn (and optionally stop) when robust validation accuracy drops ``drop`` points below its best.

    Wong et al. observed FGSM training can lose all PGD robustness suddenly while clean accuracy rises;
    continuing is then wasted compute, and the best checkpoint (by robust accuracy) is already saved.
    """

    def __init__(self, drop: float, stop: bool = True, metric: str = "val/robust_acc") -> None:
        self.drop, self.stop, self.metric = drop, stop, metric
        self.best = 0.0
        self.triggered = False

    def state_dict(self) -> dict[str, float | bool]:
        """The best so far travels in checkpoints (plain numbers), so a resumed run measures its drop from the same
        best (#31: a resume once restarted it at 0 and could miss the collapse)."""
        return {"best": self.best, "triggered": self.triggered}

    def load_state_dict(self, state_dict: dict[str, float | bool]) -> None:
        self.best, self.triggered = float(state_dict["best"]), bool(state_dict["triggered"])

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self.metric not in trainer.callback_metrics:
            return
        value = float(trainer.callback_metrics[self.metric]) * 100
        self.best = max(self.best, value)
        if self.best - value >= self.drop:
            self.triggered = True
            rank_zero_warn(f"catastrophic overfitting: {self.metric} fell to {value:.1f} from a best of "
                           f"{self.best:.1f}{'; stopping' if self.stop else ''}")
            if self.stop:
                trainer.should_stop = True
