"""Capture θk during training; prune and reset at the end of training."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import nn

from lth_lightning.config import PruneConfig
from lth_lightning.pruning.channels import channel_masks, channel_scores, groups, keep_channels, removed_fraction
from lth_lightning.pruning.criteria import compute_masks
from lth_lightning.pruning.masks import MaskSet, prunable_weights
from lth_lightning.pruning.reset import reset_weights, snapshot


class WeightSnapshot(L.Callback):
    """Saves the full model state after ``epoch`` epochs, or ``step`` optimizer steps (θk; 0 means θ0).

    Late resetting (Frankle et al.) rewinds to an early iteration rather than to θ0. The snapshot is
    written to ``path`` so later IMP levels, and resumed runs, can rewind to it.
    """

    def __init__(self, epoch: int, path: str | Path, step: int | None = None) -> None:
        self.epoch, self.path, self.step = epoch, Path(path), step

    def _save(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            torch.save(snapshot(pl_module.model), self.path)  # type: ignore[attr-defined]

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        at_start = self.step == 0 if self.step is not None else self.epoch == 0
        if at_start and trainer.global_step == 0:
            self._save(trainer, pl_module)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: object) -> None:
        if self.step and trainer.global_step == self.step:
            self._save(trainer, pl_module)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.step is None and trainer.current_epoch + 1 == self.epoch:
            self._save(trainer, pl_module)


class PruneCallback(L.Callback):
    """At the end of training: prune to ``target`` sparsity with the configured criterion, then reset.

    ``reset_state`` returns the state the survivors go back to (θ0 or θk); ``reinit`` builds a freshly
    initialised model for the random re-init control. Masks are computed on rank 0 and broadcast, so
    every DDP rank holds the identical ticket. With ``structure=channel`` whole channels go (masked over
    every entry they touch) and ``kept`` holds the surviving channel indices the compact net is built from.
    """

    def __init__(self, cfg: PruneConfig, target: float, reset_state: Callable[[], dict] | None = None,
                 reinit: Callable[[], nn.Module] | None = None) -> None:
        self.cfg, self.target = cfg, target
        self.reset_state, self.reinit = reset_state, reinit
        self.kept: dict[str, torch.Tensor] = {}
        self.achieved: dict[str, float] = {}  # what the prune removed: weights, and channels for channel tickets

    def prune(self, model: nn.Module, masks: MaskSet, shape: tuple[int, ...]) -> None:
        channels = self._set_masks(model, masks, shape)
        state = self.reset_state() if self.reset_state and self.cfg.reset in ("init", "rewind") else None
        fresh = self.reinit() if self.reinit and self.cfg.reset == "reinit" else None
        reset_weights(model, masks, self.cfg.reset, state, fresh)
        self.achieved["weights_removed"] = round(masks.sparsity()["overall"], 4)
        cut = self.achieved.get("channels_removed")
        what = "" if cut is None else (f"{cut:.1%} of channels (asked {self.target:.0%}; counts rounded to multiples "
                                       f"of {self.cfg.channel_multiple}), ")
        rank_zero_info(f"pruned {what}{self.achieved['weights_removed']:.1%} of weights ({self.cfg.criterion}); "
                       f"{channels} BN channels masked; weights reset: {self.cfg.reset}")

    def _set_masks(self, model: nn.Module, masks: MaskSet, shape: tuple[int, ...]) -> int:
        """Cut to the target: whole channels (``structure=channel``) or weights; returns BN channels masked."""
        if self.cfg.structure == "channel":
            traced = groups(model, shape)  # one trace for the scores and the masks
            scores = channel_scores(model, shape, traced)
            self.kept = keep_channels(scores, self.target, self.cfg.channel_multiple)
            self.achieved["channels_removed"] = round(removed_fraction(scores, self.kept), 4)
            for name, mask in channel_masks(model, shape, self.kept, traced).items():
                masks.set(name, mask)
            return sum(int((~m).sum()) for n, m in masks.items() if m.dim() == 1 and n.endswith(".weight"))
        weights = prunable_weights(model, self.cfg.include_classifier)
        current = {n: masks.get(n) for n in weights if n in masks.names} or None
        for name, mask in compute_masks(weights, self.target, self.cfg.criterion, current, seed=self.cfg.seed).items():
            masks.set(name, mask)
        return masks.add_bn_masks(model) if self.cfg.mask_bn else 0

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        model, masks = pl_module.model, pl_module.masks  # type: ignore[attr-defined]
        self.prune(model, masks, pl_module.info.shape)  # type: ignore[attr-defined]
        if trainer.world_size > 1:
            synced = trainer.strategy.broadcast(masks.as_dict(), src=0)
            masks.load_masks({k: v.to(pl_module.device) for k, v in synced.items()})
            masks.apply_(model)
