"""Send the pipeline summary to the active experiment tracker (W&B table + image, TensorBoard text)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lth_lightning.config import Config

COLUMNS = ["arm", "sparsity", "epochs", "epoch1_val_robust", "best_val_robust", "epochs_to_target",
           "seconds_to_target", "passes_to_target", "test_clean", "test_robust"]


def summary_rows(summary: dict[str, Any]) -> list[list[Any]]:
    rows = []
    for name, r in summary["arms"].items():
        t = r["to_target"]
        rows.append([name, r["sparsity"], r["epochs"], r["epoch1_val_robust"], r["best_val_robust"],
                     t["epochs"], t["seconds"], t["passes"], r["test"].get("clean_acc"),
                     r["test"].get("robust_acc")])
    return rows


def replay_stage(cfg: Config, stage: str, result: dict[str, Any]) -> None:
    """Log a cached stage's per-epoch history as a W&B run in this pipeline's group (marked reused)."""
    import wandb

    from lth_lightning.pipelines.common import wandb_group

    run = wandb.init(project=cfg.logger.project, group=wandb_group(cfg), name=stage, job_type=stage,
                     dir=cfg.run_dir, mode=cfg.logger.mode, tags=[*cfg.logger.tags, "reused"],
                     config={"reused_from": result.get("dir", ""), "stage": stage})
    for h in result["history"]:
        metrics = {"val/clean_acc": h["val_clean"] / 100, "cost/passes": h["passes"],
                   "cost/train_seconds": h["train_seconds"], "epoch": h["epoch"]}
        if h["val_robust"] is not None:
            metrics["val/robust_acc"] = h["val_robust"] / 100
        run.log(metrics)
    run.finish()


def log_summary(cfg: Config, summary: dict[str, Any], markdown: str, png: Path, run_dir: Path) -> None:
    if cfg.logger.name == "wandb":
        import wandb

        from lth_lightning.pipelines.common import wandb_group

        run = wandb.init(project=cfg.logger.project, group=wandb_group(cfg), name="summary",
                         job_type="summary", dir=str(run_dir), mode=cfg.logger.mode, tags=list(cfg.logger.tags))
        run.log({"summary/table": wandb.Table(columns=COLUMNS, data=summary_rows(summary)),
                 "summary/curves": wandb.Image(str(png))})
        pipe = summary.get("pipeline", {})
        for unit in ("seconds", "passes"):
            if unit in pipe:
                run.summary[f"saving_to_target_{unit}_pct"] = pipe[unit]["saving_to_target_pct"]
        run.finish()
    elif cfg.logger.name == "tensorboard":
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(run_dir / "tb" / "summary"))
        writer.add_text("summary", markdown)
        writer.close()
