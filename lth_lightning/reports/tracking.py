"""Experiment trackers in one place: per-stage loggers, W&B groups, cached-stage replay, the summary.

Every stage of a pipeline is its own W&B run in one group (``job_type`` = the stage); a stage reused
from the cache is replayed into the group (tagged ``reused``), so the dashboard always shows every arm.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict
from pathlib import Path

from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only

from lth_lightning.config import Config
from lth_lightning.results import FrontierResult, SearchResult, StageResult, Summary

COLUMNS = ["arm", "sparsity", "epochs", "epoch1_val_robust", "best_val_robust", "epochs_to_target",
           "seconds_to_target", "passes_to_target", "test_clean", "test_robust"]


_PLUMBING = ("experiment=", "hydra.", "hydra/", "run_dir=", "data.root=", "pipeline.cache_dir=", "logger",
             "trainer.enable_progress")


def wandb_group(cfg: Config) -> str:
    """All stages of one pipeline run share a W&B group: the configured one, else a readable experiment name --
    the experiment config's name plus the overrides given on top of it (paths and logging left out), shortened
    to W&B's 128 characters -- else (outside Hydra) the run dir's name."""
    if cfg.logger.group:
        return cfg.logger.group
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return Path(cfg.run_dir).name
    given = [o.lstrip("+") for o in HydraConfig.get().overrides.task]
    experiment = next((o.split("=", 1)[1] for o in given if o.startswith("experiment=")), cfg.task)
    rest = sorted(o for o in given if not o.startswith(_PLUMBING))
    name = f"{experiment}:{','.join(rest)}" if rest else experiment
    return name if len(name) <= 128 else f"{name[:119]}~{hashlib.sha1(name.encode()).hexdigest()[:8]}"


def build_logger(cfg: Config, save_dir: Path, stage: str) -> Logger | bool:
    """One logger per stage."""
    lg = cfg.logger
    if lg.name == "none":
        return False
    if lg.name == "tensorboard":
        return TensorBoardLogger(save_dir=str(save_dir), name="tb")
    if lg.name == "wandb":
        quiet_wandb()
        # all of a pipeline's W&B runs live under its run dir (stage dirs may be shared cache entries)
        return WandbLogger(project=lg.project, group=wandb_group(cfg), name=stage, job_type=stage,
                           save_dir=str(cfg.run_dir), tags=list(lg.tags), offline=lg.mode == "offline",
                           config=asdict(cfg), **({} if lg.mode == "offline" else {"mode": lg.mode}))
    return CSVLogger(save_dir=str(save_dir), name="csv")  # version_N per attempt: a resume keeps old logs


def quiet_wandb() -> None:
    """W&B's banners and run summaries were 149 of a small pipeline's 181 lines: silent unless the user set
    WANDB_SILENT, and one line per stage instead (``finish_logger``)."""
    os.environ.setdefault("WANDB_SILENT", "true")


def finish_logger(logger: Logger | bool, name: str = "") -> None:
    """Close a W&B run so the next stage starts its own run in the group; say where it is, in one line."""
    if isinstance(logger, WandbLogger) and rank_zero_only.rank == 0:
        import wandb

        run = wandb.run
        if run is not None:
            print(run_line(name or run.name, run))
        wandb.finish()


def run_line(name: str, run: object) -> str:
    """Where a W&B run went: an offline run's folder and the command that uploads it, or an online run's page."""
    settings = run.settings  # type: ignore[attr-defined]
    if getattr(settings, "mode", "") == "offline" or getattr(settings, "_offline", False):
        folder = Path(settings.sync_dir)
        return f"[{name}] W&B offline run: {folder} (upload: wandb sync {folder})"
    return f"[{name}] W&B run: {getattr(run, 'url', '') or getattr(settings, 'run_url', '')}"


def _wandb_run(cfg: Config, name: str, run_dir: str | Path, config: dict[str, object], reused: bool = False):
    """A W&B run in this pipeline's group, named and typed after ``name``."""
    import wandb

    quiet_wandb()
    tags = [*cfg.logger.tags, "reused"] if reused else list(cfg.logger.tags)
    return wandb.init(project=cfg.logger.project, group=wandb_group(cfg), name=name, job_type=name,
                      dir=str(run_dir), mode=cfg.logger.mode, tags=tags, config=config)


def replay_stage(cfg: Config, stage: str, result: StageResult) -> None:
    """Log a cached stage's per-epoch history as a W&B run in this pipeline's group (marked reused)."""
    run = _wandb_run(cfg, stage, cfg.run_dir, {"reused_from": result.dir, "stage": stage}, reused=True)
    for h in result.history:
        metrics = {"val/clean_acc": h.val_clean / 100, "cost/passes": h.passes,
                   "cost/train_seconds": h.train_seconds, "epoch": h.epoch}
        if h.val_robust is not None:
            metrics["val/robust_acc"] = h.val_robust / 100
        run.log(metrics)
    print(run_line(stage, run))
    run.finish()


def summary_rows(summary: Summary) -> list[list[object]]:
    rows = []
    for name, r in summary.arms.items():
        t = r.to_target
        rows.append([name, r.sparsity, r.epochs, r.epoch1_val_robust, r.best_val_robust, t.epochs, t.seconds,
                     t.passes, r.test.clean if r.test else None, r.test.robust if r.test else None])
    return rows


def _log_report(cfg: Config, name: str, run_dir: Path, markdown: str, keys: tuple[str, str], png: Path,
                table: tuple[list[str], list], config: dict[str, object], summary: dict[str, object]) -> None:
    """A report as a W&B run (its table and plot under ``keys``, summary values), or TensorBoard text."""
    if cfg.logger.name == "wandb":
        import wandb

        run = _wandb_run(cfg, name, run_dir, config)
        columns, rows = table
        run.log({keys[0]: wandb.Table(columns=columns, data=rows), keys[1]: wandb.Image(str(png))})
        run.summary.update(summary)
        print(run_line(name, run))
        run.finish()
    elif cfg.logger.name == "tensorboard":
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(run_dir / "tb" / name))
        writer.add_text(name, markdown)
        writer.close()


def log_summary(cfg: Config, summary: Summary, markdown: str, png: Path, run_dir: Path) -> None:
    """The fast_ticket comparison table and curves as a W&B ``summary`` run, or TensorBoard text."""
    pipe = summary.pipeline
    savings = {} if pipe is None else {"saving_to_target_seconds_pct": pipe.seconds.saving_to_target_pct,
                                       "saving_to_target_passes_pct": pipe.passes.saving_to_target_pct}
    _log_report(cfg, "summary", run_dir, markdown, ("summary/table", "summary/curves"), png,
                (COLUMNS, summary_rows(summary)),
                {"threat_model": summary.config.threat}, savings)


def _ticket_saving(lv: object) -> tuple[float | None, str]:
    """The ticket's saving only where every seed reached the level; its verdict says "k of n seeds" otherwise."""
    v = lv.judged.get("ticket")  # type: ignore[attr-defined]
    if v is None:
        return lv.saving_pct, lv.verdict  # type: ignore[attr-defined]
    return (v.saving if v.seeds == v.n else None), v.text


def log_frontier(cfg: Config, result: FrontierResult, markdown: str, png: Path, run_dir: Path) -> None:
    """The frontier's level table and fronts plot as a W&B ``frontier`` run, or TensorBoard text."""
    unit = result.levels[0].unit if result.levels else "passes"  # the verdicts' unit, for every arm
    arms = sorted(result.levels[0].passes) if result.levels else []
    cost = {"macs": lambda lv, a: lv.macs[a].mean, "passes": lambda lv, a: lv.passes[a].mean}[unit]
    rows = [[lv.level, *(cost(lv, a) for a in arms), *_ticket_saving(lv)] for lv in result.levels]
    _log_report(cfg, "frontier", run_dir, markdown, ("frontier/levels", "frontier/fronts"), png,
                (["level", *(f"{a}_{unit}" for a in arms), "saving_pct", "verdict"], rows),
                {"threat_model": result.threat, "budgets": result.budgets, "lrs": result.lrs},
                {"headline": result.headline})


def log_search(cfg: Config, result: SearchResult, markdown: str, png: Path, run_dir: Path) -> None:
    """The study's Pareto table and plot as a W&B ``search`` run in the trials' group (each trial's stage logged a run
    of its own), or TensorBoard text."""
    rows = [[p.trial, p.macs, p.accuracy, next(t.recipe.label() for t in result.trials if t.number == p.trial)]
            for p in result.front]
    _log_report(cfg, "search", run_dir, markdown, ("search/pareto", "search/plot"), png,
                (["trial", "macs", "best_val", "recipe"], rows),
                {"threat_model": result.threat, "sampler": result.sampler, "trials": len(result.trials)},
                {"headline": result.headline, "tickets": result.ticket_line})
