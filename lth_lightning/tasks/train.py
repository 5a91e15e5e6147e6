"""``task=train``: train one model (dense, or from ``ticket=<file>``); with ``prune=...`` run IMP."""

from __future__ import annotations

from pathlib import Path

from lth_lightning.config import Config
from lth_lightning.data import build_datamodule
from lth_lightning.pruning import load_ticket
from lth_lightning.results import ImpResult, StageResult, fmt
from lth_lightning.stages.identity import Stage, claim_dir
from lth_lightning.stages.runner import make_module, monitor_metric, run_stage


def run_train(cfg: Config) -> StageResult | ImpResult:
    if cfg.prune.name != "none":
        from lth_lightning.tasks.imp import run_imp

        return run_imp(cfg)
    dm = build_datamodule(cfg.data)
    ticket = load_ticket(cfg.ticket) if cfg.ticket else None
    stage = Stage("train", cfg, (ticket.digest(),) if ticket else ())
    out = claim_dir(stage, Path(cfg.run_dir))
    result = run_stage(stage, out, make_module(cfg, dm.info, ticket), dm)
    print(format_result(result, "val_clean" if monitor_metric(cfg) == "val/clean_acc" else "val_robust"))
    return result


def format_result(result: StageResult, metric: str = "val_robust") -> str:
    """One line: the validation numbers of the epoch the test ran on (the best checkpoint's by ``metric``, the one
    the checkpoint was chosen by), never the last epoch's beside the best checkpoint's test (#31)."""
    scored = [h for h in result.history if h.metric(metric) is not None]
    last = max(scored, key=lambda h: h.metric(metric)) if scored else None  # type: ignore[arg-type,return-value]
    test = result.test
    threat = f" [{test.threat.label()}]" if test and test.threat else ""
    parts = [f"sparsity {result.sparsity:.1%}"]
    if last is not None:
        parts.append(f"best epoch {last.epoch}: val clean {last.val_clean:.2f}")
        if last.val_robust is not None:
            parts.append(f"val robust{threat} {last.val_robust:.2f}")
    if test is not None:
        parts.append(f"test clean {test.clean:.2f}")
        if test.robust is not None:
            parts.append(f"test robust{threat} {test.robust:.2f}")
        if test.autoattack is not None:
            parts.append(f"test AutoAttack {fmt(test.autoattack)}")
    parts.append(f"train {result.ledger.train_seconds:.1f}s")
    return f"[{result.stage}] " + " | ".join(parts)
