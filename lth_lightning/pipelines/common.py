"""Pieces every task shares: building the trainer, loggers and module, and running one *stage*.

A stage is one ``fit`` (+ optional ``test``) in its own directory. It is the unit of caching and
resumption: a finished stage leaves ``result.json`` and is never recomputed; an interrupted one
resumes from its ``checkpoints/last.ckpt``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint, RichProgressBar
from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger, WandbLogger
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only

from lth_lightning.callbacks import CatastrophicOverfitting, MaskEnforcer
from lth_lightning.config import Config, TrainerConfig
from lth_lightning.data import DataInfo, ImageDataModule
from lth_lightning.io import atomic_write
from lth_lightning.models import build_model
from lth_lightning.modules import Classifier
from lth_lightning.pruning import MaskSet, Ticket


def write_json(path: Path, payload: Any) -> None:
    """Atomic JSON write: a killed run never leaves a half-written result."""
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(payload, indent=2, default=str)))


def is_rank_zero() -> bool:
    """Global rank 0, as Lightning resolves it (RANK / LOCAL_RANK / SLURM_PROCID, then the Trainer)."""
    return rank_zero_only.rank == 0


def build_logger(cfg: Config, save_dir: Path, stage: str) -> Logger | bool:
    """One logger per stage. W&B: all stages of a run share a group; job_type names the stage."""
    lg = cfg.logger
    if lg.name == "none":
        return False
    if lg.name == "tensorboard":
        return TensorBoardLogger(save_dir=str(save_dir), name="tb")
    if lg.name == "wandb":
        # all of a pipeline's W&B runs live under its run dir (stage dirs may be shared cache entries)
        return WandbLogger(project=lg.project, group=wandb_group(cfg), name=stage, job_type=stage,
                           save_dir=str(cfg.run_dir), tags=list(lg.tags), offline=lg.mode == "offline",
                           config=asdict(cfg), **({} if lg.mode == "offline" else {"mode": lg.mode}))
    return CSVLogger(save_dir=str(save_dir), name="csv")  # version_N per attempt: a resume keeps old logs


def wandb_group(cfg: Config) -> str:
    """All stages of one pipeline run share a W&B group: the configured one, else the run dir's name."""
    return cfg.logger.group or Path(cfg.run_dir).name


def finish_logger(logger: Logger | bool) -> None:
    """Close a W&B run so the next stage starts its own run in the group."""
    if isinstance(logger, WandbLogger) and is_rank_zero():
        import wandb

        wandb.finish()


def build_trainer(tc: TrainerConfig, root: Path, epochs: int, callbacks: Sequence[L.Callback],
                  logger: Logger | bool) -> L.Trainer:
    if tc.num_threads:
        torch.set_num_threads(tc.num_threads)
    extra = [RichProgressBar(leave=True)] if tc.enable_progress_bar else []
    optional = {k: getattr(tc, k) for k in ("limit_train_batches", "limit_val_batches", "limit_test_batches",
                                           "gradient_clip_val") if getattr(tc, k) is not None}
    return L.Trainer(
        max_epochs=epochs, accelerator=tc.accelerator, devices=tc.devices, strategy=tc.strategy,
        num_nodes=tc.num_nodes, precision=tc.precision, sync_batchnorm=tc.sync_batchnorm,
        deterministic=tc.deterministic, log_every_n_steps=tc.log_every_n_steps,
        enable_progress_bar=tc.enable_progress_bar, enable_model_summary=False,
        default_root_dir=str(root), callbacks=[*callbacks, *extra], logger=logger,
        inference_mode=False,  # robust evaluation needs gradients w.r.t. inputs
        num_sanity_val_steps=0, **optional,
    )


def monitor_metric(cfg: Config) -> str:
    """Best checkpoint: by robust accuracy for adversarial training (robust overfitting), else clean."""
    if cfg.eval.checkpoint_metric != "auto":
        return cfg.eval.checkpoint_metric
    robust = cfg.attack.name != "none" and cfg.eval.val_robust_samples != 0
    return "val/robust_acc" if robust else "val/clean_acc"


def make_module(cfg: Config, info: DataInfo, seed: int, ticket: Ticket | None = None,
                reinit_seed: int | None = None) -> Classifier:
    """A classifier from θ0(seed), from a ticket, or (``reinit_seed``) the ticket's mask on a re-init."""
    model = build_model(cfg.model, info, seed=seed if reinit_seed is None else reinit_seed)
    masks = MaskSet()
    if ticket is not None:
        if reinit_seed is None:
            ticket.apply_to(model)
        masks = MaskSet(ticket.masks)
        masks.apply_(model)
    if cfg.model.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if cfg.model.compile:
        model.compile()  # in place: parameter names (and so mask names, checkpoints) stay unprefixed
    meta = {"model": asdict(cfg.model), "data": cfg.data.name}
    return Classifier(model, info.num_classes, cfg.optim, cfg.attack, cfg.eval, masks, meta)


def run_stage(cfg: Config, name: str, out_dir: Path, module: Classifier, dm: ImageDataModule, epochs: int,
              callbacks: Sequence[L.Callback] = (), test: bool = True,
              after_fit: Callable[[Classifier], dict[str, Any]] | None = None) -> dict[str, Any]:
    """Fit (resuming if interrupted), run ``after_fit``, test the best checkpoint, save ``result.json``."""
    done = out_dir / "result.json"
    if done.exists():
        rank_zero_info(f"[{name}] finished before: reusing {done}")
        result = json.loads(done.read_text())
        if cfg.logger.name == "wandb" and is_rank_zero():
            from lth_lightning.pipelines.tracking import replay_stage

            replay_stage(cfg, name, result)  # the group's dashboard still shows every arm
        return result
    last = out_dir / "checkpoints" / "last.ckpt"
    metric = monitor_metric(cfg)
    # no '=' in file names: Hydra's override grammar would reject ckpt_path=.../epoch=3.ckpt
    ckpt = ModelCheckpoint(dirpath=out_dir / "checkpoints", monitor=metric, mode="max", save_last=True,
                           filename="best-epoch{epoch:03d}", auto_insert_metric_name=False)
    cbs: list[L.Callback] = [MaskEnforcer(), ckpt, *callbacks]
    if cfg.eval.catastrophic_drop is not None:
        cbs.append(CatastrophicOverfitting(cfg.eval.catastrophic_drop, metric=metric))
    logger = build_logger(cfg, out_dir, name)
    trainer = build_trainer(cfg.trainer, out_dir, epochs, cbs, logger)
    if last.exists():
        rank_zero_info(f"[{name}] resuming from {last}")
    trainer.fit(module, datamodule=dm, ckpt_path=str(last) if last.exists() else None)
    result: dict[str, Any] = {"stage": name, "epochs": epochs}
    if after_fit is not None:
        result.update(after_fit(module))
    result.update(history=module.history, ledger=module.ledger, sparsity=module.trained_sparsity)
    if test:
        best = "best" if ckpt.best_model_path else None
        metrics = trainer.test(module, datamodule=dm, ckpt_path=best, verbose=False)[0]
        result["test"] = {k.removeprefix("test/"): round(float(v) * 100, 2) for k, v in metrics.items()}
        result["best_checkpoint"] = ckpt.best_model_path
    finish_logger(logger)
    if trainer.is_global_zero:
        write_json(done, result)
    trainer.strategy.barrier()
    return result
