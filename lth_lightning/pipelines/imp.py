"""Iterative magnitude pruning (one-shot is IMP with a single level).

Layout: ``<run>/level_<L>/`` holds ``ticket.pt`` (the mask and reset weights level L starts from),
Lightning checkpoints, metrics and ``result.json``. Level L's end-of-training prune writes level L+1's
ticket; a level whose result exists is skipped, so restarting the command continues where it stopped.
``<run>/levels.md`` / ``levels.csv`` tabulate sparsity and accuracy per level.
"""

from __future__ import annotations

import subprocess
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.utilities import rank_zero_info

from lth_lightning.callbacks import PruneCallback, WeightSnapshot
from lth_lightning.config import Config
from lth_lightning.data import build_datamodule
from lth_lightning.io import write_table
from lth_lightning.models import build_model
from lth_lightning.pipelines.common import is_rank_zero, make_module, run_stage
from lth_lightning.pruning import Ticket, load_ticket, save_ticket
from lth_lightning.pruning.reset import snapshot


def code_version() -> str:
    """Package version plus the git commit when run from a checkout (``0.1.0+3f2c1ab``)."""
    from lth_lightning import __version__

    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{__version__}+{sha}" if sha else __version__


def provenance(cfg: Config, **extra: Any) -> dict[str, Any]:
    """How a ticket was made: full model and data config, pruning, seed, code version, plus ``extra``."""
    data = {k: v for k, v in asdict(cfg.data).items() if k not in ("root", "download", "num_workers")}
    return {"model": asdict(cfg.model), "data": data, "criterion": cfg.prune.criterion,
            "include_classifier": cfg.prune.include_classifier, "reset": cfg.prune.reset, "seed": cfg.seed,
            "code_version": code_version(), **extra}


def run_imp(cfg: Config) -> dict[str, Any]:
    run_dir = Path(cfg.run_dir)
    dm = build_datamodule(cfg.data)
    info = dm.info
    levels = 1 if cfg.prune.name == "oneshot" else cfg.prune.levels
    first = run_dir / "level_0" / "ticket.pt"
    if not first.exists() and is_rank_zero():
        dense = build_model(cfg.model, info, seed=cfg.seed)
        save_ticket(first, Ticket({}, snapshot(dense), provenance(cfg, sparsity=0.0, level=0)))
    theta0 = load_ticket(first).weights
    rewind_path = run_dir / "rewind.pt"
    rows = []
    for level in range(levels + 1):
        level_dir = run_dir / f"level_{level}"
        ticket = load_ticket(level_dir / "ticket.pt")
        module = make_module(cfg, info, cfg.seed, ticket if level > 0 else None)
        callbacks, after_fit = [], None
        if level < levels:
            target = cfg.prune.target_sparsity(level + 1)
            reset_state = (lambda: theta0) if cfg.prune.reset == "init" else (
                lambda: torch.load(rewind_path, weights_only=True))
            pruner = PruneCallback(cfg.prune, target, reset_state,
                                   lambda: build_model(cfg.model, info, seed=cfg.prune.reinit_seed))
            callbacks.append(pruner)
            if level == 0 and cfg.prune.reset == "rewind":
                callbacks.append(WeightSnapshot(cfg.prune.rewind_epoch, rewind_path, cfg.prune.rewind_step))
            after_fit = _ticket_writer(cfg, run_dir / f"level_{level + 1}" / "ticket.pt", level + 1, target)
        result = run_stage(cfg, f"level_{level}", level_dir, module, dm, cfg.trainer.max_epochs,
                           callbacks, after_fit=after_fit)
        rows.append(_row(level, result))
        rank_zero_info(f"level {level}: " + ", ".join(f"{k} {v}" for k, v in rows[-1].items()))
    if is_rank_zero():
        print(write_table(rows, run_dir / "levels"))
    return {"levels": rows}


def _ticket_writer(cfg: Config, path: Path, level: int, target: float):
    def write(module) -> dict[str, Any]:
        if is_rank_zero():
            ticket = Ticket(module.masks.as_dict(), snapshot(module.model),
                            provenance(cfg, sparsity=target, level=level, lr=cfg.optim.lr,
                                       epochs=cfg.trainer.max_epochs, attack=cfg.attack.name))
            save_ticket(path, ticket)
        return {"next_ticket": str(path)}

    return write


def _row(level: int, result: dict[str, Any]) -> dict[str, Any]:
    last = result["history"][-1] if result["history"] else {}
    return {"level": level, "sparsity": round(result["sparsity"] * 100, 2),
            "val_clean": _round(last.get("val_clean")), "val_robust": _round(last.get("val_robust")),
            **{f"test_{k}": v for k, v in result.get("test", {}).items()},
            "train_seconds": round(result["ledger"]["train_seconds"], 1)}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


