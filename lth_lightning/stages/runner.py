"""Running one *stage*: building its trainer and module, seeding it, fitting, testing, saving its result.

A stage is one ``fit`` (+ optional ``test``) in its own directory. It is the unit of caching and
resumption: a finished stage leaves ``result.json`` and is never recomputed; an interrupted one
resumes from its ``checkpoints/last.ckpt``, RNG state included, and ends bit-identical on CPU to an
uninterrupted run.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint, RichProgressBar
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only

from lth_lightning.callbacks import CatastrophicOverfitting, EpochLine, MaskEnforcer
from lth_lightning.config import Config, TrainerConfig
from lth_lightning.data import DataInfo, ImageDataModule
from lth_lightning.io import write_json
from lth_lightning.models import build_model
from lth_lightning.modules import Classifier
from lth_lightning.pruning import MaskSet, Ticket
from lth_lightning.pruning.channels import compact_state
from lth_lightning.reports.tracking import build_logger, finish_logger, replay_stage
from lth_lightning.results import StageResult, TestResult, read_json
from lth_lightning.stages.identity import Stage


def is_rank_zero() -> bool:
    """Global rank 0, as Lightning resolves it (RANK / LOCAL_RANK / SLURM_PROCID, then the Trainer)."""
    return rank_zero_only.rank == 0


def progress_bar(tc: TrainerConfig) -> bool:
    """Rich progress on a terminal; piped to a file, one compact line per epoch instead."""
    return tc.enable_progress_bar if tc.enable_progress_bar is not None else sys.stdout.isatty()


def build_trainer(tc: TrainerConfig, root: Path, epochs: int, callbacks: Sequence[L.Callback],
                  logger: L.pytorch.loggers.Logger | bool, name: str = "", checks_per_epoch: int = 1) -> L.Trainer:
    if tc.num_threads:
        torch.set_num_threads(tc.num_threads)
    torch.set_float32_matmul_precision(tc.matmul_precision)
    bar = progress_bar(tc)
    extra = [RichProgressBar(leave=True)] if bar else [EpochLine(name)] if name else []
    optional = {k: getattr(tc, k) for k in ("limit_train_batches", "limit_val_batches", "limit_test_batches",
                                           "gradient_clip_val") if getattr(tc, k) is not None}
    if checks_per_epoch > 1:
        optional["val_check_interval"] = 1.0 / checks_per_epoch
    return L.Trainer(
        max_epochs=epochs, accelerator=tc.accelerator, devices=tc.devices, strategy=tc.strategy,
        num_nodes=tc.num_nodes, precision=tc.precision, sync_batchnorm=tc.sync_batchnorm,
        deterministic=tc.deterministic, log_every_n_steps=tc.log_every_n_steps,
        enable_progress_bar=bar, enable_model_summary=False,
        default_root_dir=str(root), callbacks=[*callbacks, *extra], logger=logger,
        inference_mode=False,  # robust evaluation needs gradients w.r.t. inputs
        num_sanity_val_steps=0, **optional,
    )


class EpochCheckpoint(ModelCheckpoint):
    """Names the best checkpoint by the epoch the log, the history and the summaries call it (1-based): the 3rd
    epoch's best is best-epoch003, not Lightning's 0-based best-epoch002 (#31)."""

    def format_checkpoint_name(self, metrics: dict[str, Any], filename: str | None = None, ver: int | None = None,
                               prefix: str | None = None) -> str:
        metrics = {**metrics, "epoch": metrics["epoch"] + 1} if "epoch" in metrics else metrics
        return super().format_checkpoint_name(metrics, filename, ver, prefix)


def monitor_metric(cfg: Config) -> str:
    """Best checkpoint: by robust accuracy for adversarial training (robust overfitting), else clean
    (a naturally trained net is selected on clean accuracy even when its robustness is measured)."""
    if cfg.eval.checkpoint_metric != "auto":
        return cfg.eval.checkpoint_metric
    robust = cfg.attack.name != "none" and cfg.eval.robust_val_for(cfg.attack)
    return "val/robust_acc" if robust else "val/clean_acc"


def make_module(cfg: Config, info: DataInfo, ticket: Ticket | None = None) -> Classifier:
    """A classifier at θ0(``seed``), or from a ticket: its weights and mask, or -- when this run prunes
    nothing and ``prune.reset=reinit`` -- its mask on a fresh init from ``prune.reinit_seed``."""
    reinit = ticket is not None and cfg.prune.name == "none" and cfg.prune.reset == "reinit"
    channels = ticket.kept() if ticket is not None and ticket.structured else None
    module = Classifier(asdict(cfg.model), asdict(info), asdict(cfg.optim), asdict(cfg.attack), asdict(cfg.eval),
                        dataset=cfg.data._target_ or cfg.data.name,
                        init_seed=cfg.prune.reinit_seed if reinit else cfg.seed, channels=channels)
    if ticket is not None and channels:  # compact: the kept weights of the ticket's θ0, and no masks at all
        if not reinit:
            module.model.load_state_dict(compact_state(ticket, build_model(cfg.model, info), info.shape))
    elif ticket is not None:
        if not reinit:
            ticket.apply_to(module.model)
        module.masks = MaskSet(ticket.masks)
        module.masks.apply_(module.model)
    module.cuda_graph = cfg.trainer.cuda_graph is not False  # null: wherever the step can be captured
    module.prepare()
    return module


def run_stage(stage: Stage, out_dir: Path, module: Classifier, dm: ImageDataModule, name: str | None = None,
              callbacks: Sequence[L.Callback] = (), test: bool = True,
              after_fit: Callable[[Classifier], dict[str, Any]] | None = None) -> StageResult:
    """Fit ``stage`` (resuming if interrupted), run ``after_fit`` (it may write a ticket; it returns extra
    ``StageResult`` fields), test the best checkpoint, save ``result.json``. A finished stage is read back."""
    cfg, name = stage.cfg, name or stage.kind
    done = out_dir / "result.json"
    if done.exists():
        result = read_json(StageResult, done)
        result.reused = True
        if result.macs is None:  # cached before MACs were counted: they follow from the net the identity fixes
            result.macs = module.macs
        rank_zero_info(f"[{name}] finished before: reusing {out_dir}")
        if cfg.logger.name == "wandb" and is_rank_zero():
            replay_stage(cfg, name, result)  # the group's dashboard still shows every arm
        return result
    last = out_dir / "checkpoints" / "last.ckpt"
    rank_zero_info(f"[{name}] {'resuming from ' + str(last) if last.exists() else 'starting'}: "
                   f"{stage.epochs} epochs in {out_dir}")
    metric = monitor_metric(cfg)
    # no '=' in file names: Hydra's override grammar would reject ckpt_path=.../epoch=3.ckpt
    ckpt = EpochCheckpoint(dirpath=out_dir / "checkpoints", monitor=metric, mode="max", save_last=True,
                           filename="best-epoch{epoch:03d}", auto_insert_metric_name=False)
    cbs: list[L.Callback] = [MaskEnforcer(), ckpt, *callbacks]
    if cfg.eval.catastrophic_drop is not None:
        cbs.append(CatastrophicOverfitting(cfg.eval.catastrophic_drop, metric=metric))
    logger = build_logger(cfg, out_dir, name)
    trainer = build_trainer(cfg.trainer, out_dir, stage.epochs, cbs, logger, name, cfg.eval.checks_per_epoch)
    L.seed_everything(stage.seed, workers=True, verbose=False)  # a checkpoint's RNG state overrides on resume
    try:
        trainer.fit(module, datamodule=dm, ckpt_path=str(last) if last.exists() else None)
    except BaseException:  # stopped (the search's pruner, a kill): its W&B run ends here, not in the next stage's
        finish_logger(logger, name)
        raise
    extra = after_fit(module) if after_fit is not None else {}
    result = StageResult(name, stage.epochs, module.history, module.ledger, module.trained_sparsity,
                         dir=str(out_dir), macs=module.macs, **extra)
    result.collapsed = result.is_collapsed({"val/clean_acc": "val_clean"}.get(metric, "val_robust"))
    if result.collapsed and trainer.is_global_zero:  # stage.json says so beside the identity
        rank_zero_info(f"[{name}] collapsed: its best epoch predicts one class for every validation input")
        record = out_dir / "stage.json"  # absent where a caller runs a stage outside claim_dir
        if record.exists():
            write_json(record, {**json.loads(record.read_text()), "collapsed": True})
    if test:
        best = "best" if ckpt.best_model_path else None
        metrics = trainer.test(module, datamodule=dm, ckpt_path=best, verbose=False)[0]
        result.test = test_result(metrics, module)
        result.best_checkpoint = ckpt.best_model_path
    finish_logger(logger, name)
    if trainer.is_global_zero:
        write_json(done, result)
    trainer.strategy.barrier()
    return result


def test_result(metrics: dict[str, float], module: Classifier) -> TestResult:
    """Lightning's test metrics (fractions) as a typed result in %, labelled with their threat model."""
    pct = {k.removeprefix("test/"): round(float(v) * 100, 2) for k, v in metrics.items()}
    return TestResult(pct["clean_acc"], pct.get("robust_acc"), pct.get("autoattack_acc"), module.threat)
