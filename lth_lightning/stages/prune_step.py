"""One prune level, shared by IMP and fast_ticket: train, prune to a target, reset survivors, write the ticket.

fast_ticket's finding stage is level 0 under the finding config; IMP runs one per level. The reset is
decided here only: θ0 (``init``), θk from the first run's snapshot (``rewind``), a fresh init
(``reinit``) or the trained weights (``finetune``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import torch

from lth_lightning.callbacks import EarlyBird, PruneCallback, WeightSnapshot
from lth_lightning.config import PruneConfig
from lth_lightning.data import ImageDataModule
from lth_lightning.models import build_model
from lth_lightning.modules import Classifier
from lth_lightning.pruning import Ticket, save_ticket
from lth_lightning.pruning.reset import snapshot
from lth_lightning.pruning.tickets import provenance
from lth_lightning.results import StageResult
from lth_lightning.stages.identity import Stage
from lth_lightning.stages.runner import is_rank_zero, run_stage


def reset_state(prune: PruneConfig, theta0: dict[str, torch.Tensor],
                rewind_path: Path) -> Callable[[], dict[str, torch.Tensor]] | None:
    """What the survivors go back to: θ0, or θk read from the first run's snapshot (read when needed)."""
    if prune.reset == "init":
        return lambda: theta0
    if prune.reset == "rewind":
        return lambda: torch.load(rewind_path, weights_only=True)
    return None


def prune_step(stage: Stage, out_dir: Path, module: Classifier, dm: ImageDataModule, *, target: float,
                theta0: dict[str, torch.Tensor], rewind_path: Path, ticket_path: Path, level: int,
                first_run: bool, test: bool = True, name: str | None = None,
                early_bird: EarlyBird | None = None, **about: object) -> StageResult:
    """Run ``stage``; at its end prune to ``target`` and reset, and write the ticket for level ``level``.

    ``first_run``: this is the run θk is taken from (``prune.reset=rewind``). ``early_bird`` stops the run
    once the mask settles; its record goes into the result. ``about`` goes into the ticket's provenance.
    """
    cfg = stage.cfg
    prune = cfg.prune
    pruner = PruneCallback(prune, target, reset_state(prune, theta0, rewind_path),
                           lambda: build_model(cfg.model, dm.info, seed=prune.reinit_seed))
    callbacks: list = [pruner]
    if first_run and prune.reset == "rewind":
        callbacks.append(WeightSnapshot(prune.rewind_epoch, rewind_path, prune.rewind_step))
    if early_bird is not None:
        callbacks.insert(0, early_bird)  # decides before the pruner runs at fit end

    def write_ticket(trained: Classifier) -> dict[str, object]:
        record = early_bird.record(stage.epochs) if early_bird is not None else None
        if is_rank_zero():
            epochs = (record.stopped_epoch or stage.epochs) if record else stage.epochs
            prov = provenance(cfg, sparsity=target, level=level, lr=cfg.optim.lr, epochs=epochs,  # sparsity: asked
                              attack=cfg.attack.name, stage=stage.identity, info=asdict(dm.info),
                              **pruner.achieved, **about)  # weights_removed, channels_removed: achieved
            save_ticket(ticket_path, Ticket(trained.masks.as_dict(), snapshot(trained.model), prov, pruner.kept))
        return {"ticket": str(ticket_path), "early_bird": record, "cut": dict(pruner.achieved)}

    return run_stage(stage, out_dir, module, dm, name, callbacks, test=test, after_fit=write_ticket)
