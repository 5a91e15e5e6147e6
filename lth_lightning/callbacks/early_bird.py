"""Early-bird finding: stop training once the pruning mask stops moving (You et al. 2020, Chen et al. 2022).

At each check the configured criterion computes the mask it *would* cut at the target ratio (no weight
is touched). The last ``window`` masks are kept; when the newest is within normalised Hamming distance
``threshold`` of each of the others, training stops. Finding then costs what it needs, not a guessed
number of epochs. The window travels in checkpoints, and under DDP rank 0 decides for every rank.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info

from lth_lightning.config import FindConfig, PruneConfig
from lth_lightning.pruning.channels import Traced, channel_scores, groups, keep_channels, keep_mask
from lth_lightning.pruning.criteria import compute_masks
from lth_lightning.pruning.masks import overlap, prunable_weights
from lth_lightning.results import EarlyBirdRecord


def hamming(a: torch.Tensor, b: torch.Tensor) -> float:
    """Fraction of positions where two flat boolean masks differ."""
    return overlap({"mask": a}, {"mask": b})["overall"]["hamming"]


def settled(window: list[torch.Tensor], size: int, threshold: float) -> tuple[bool, float | None]:
    """Whether ``window`` is full and its newest mask is within ``threshold`` of every other; the largest
    such distance (None while the window is not full: nothing was compared)."""
    if len(window) < size:
        return False, None
    worst = max(hamming(window[-1], other) for other in window[:-1])
    return worst <= threshold, worst


class EarlyBird(L.Callback):
    """Stops the finding stage when the mask at ``ratio`` has settled; ``record`` says when and how far."""

    def __init__(self, find: FindConfig, prune: PruneConfig, ratio: float) -> None:
        self.find, self.prune, self.ratio = find, prune, ratio
        self.window: list[torch.Tensor] = []
        self.distances: list[float | None] = []  # per check: the newest mask's largest distance to the window
        self._traced: Traced | None = None  # channel groups, traced at the first check
        self.stopped_epoch: int | None = None
        self.stopped_step: int | None = None

    def current_mask(self, model: torch.nn.Module, shape: tuple[int, ...] | None = None) -> torch.Tensor:
        """The flat keep-mask the criterion would cut now: over weights, or over channels for channel tickets
        (which trace the net on an input of ``shape``)."""
        if self.prune.structure == "channel" and shape is not None:
            self._traced = self._traced or groups(model, shape)  # the net's structure never changes while finding
            scores = channel_scores(model, shape, self._traced)
            return keep_mask(scores, keep_channels(scores, self.ratio, self.prune.channel_multiple))
        weights = prunable_weights(model, self.prune.include_classifier)
        masks = compute_masks(weights, self.ratio, self.prune.criterion, seed=self.prune.seed)
        return torch.cat([m.flatten() for m in masks.values()]).cpu()

    def check(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        shape = pl_module.info.shape if self.prune.structure == "channel" else None  # type: ignore[attr-defined]
        mask = self.current_mask(pl_module.model, shape)  # type: ignore[arg-type]
        self.window = [*self.window, mask][-self.find.window:]
        stop, worst = settled(self.window, self.find.window, self.find.threshold)
        self.distances.append(worst)
        stop = bool(trainer.strategy.broadcast(stop, src=0))  # rank 0 decides for every rank
        if stop:
            trainer.should_stop = True
        if stop and self.stopped_epoch is None:
            self.stopped_epoch, self.stopped_step = trainer.current_epoch + 1, trainer.global_step
            rank_zero_info(f"early bird: mask settled (distance {worst or 0.0:.4f} <= {self.find.threshold}) at epoch "
                           f"{self.stopped_epoch}, step {self.stopped_step}; finding stops")

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        every = self.find.check_every
        if every and trainer.global_step % every == 0 and not trainer.should_stop:
            self.check(trainer, pl_module)

    # Epoch checks run at validation end when validation runs: Lightning calls checkpoint callbacks last,
    # so ``last.ckpt`` holds this epoch's mask in the window and a resumed run continues it exactly.
    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.find.check_every and not trainer.sanity_checking and not trainer.should_stop:
            self.check(trainer, pl_module)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.find.check_every and not trainer.enable_validation and not trainer.should_stop:
            self.check(trainer, pl_module)

    def record(self, cap: int) -> EarlyBirdRecord:
        return EarlyBirdRecord(self.stopped_epoch, self.stopped_step, cap, list(self.distances))

    def state_dict(self) -> dict[str, Any]:
        return {"window": [m.clone() for m in self.window], "distances": list(self.distances),
                "stopped_epoch": self.stopped_epoch, "stopped_step": self.stopped_step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.window = list(state["window"])
        self.distances = list(state["distances"])
        self.stopped_epoch, self.stopped_step = state["stopped_epoch"], state["stopped_step"]
