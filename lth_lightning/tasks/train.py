"""``task=train``: train one model (dense, or from ``ticket=<file>``); with ``prune=...`` run IMP."""

from __future__ import annotations

from pathlib import Path

from lth_lightning.config import Config
from lth_lightning.data import build_datamodule
from lth_lightning.pruning import load_ticket
from lth_lightning.results import ImpResult, StageResult, fmt
from lth_lightning.stages.identity import Stage, claim_dir
from lth_lightning.stages.runner import make_module, run_stage


def run_train(cfg: Config) -> StageResult | ImpResult:
    if cfg.prune.name != "none":
        from lth_lightning.tasks.imp import run_imp

        return run_imp(cfg)
    dm = build_datamodule(cfg.data)
    ticket = load_ticket(cfg.ticket) if cfg.ticket else None
    stage = Stage("train", cfg, (ticket.digest(),) if ticket else ())
    out = claim_dir(stage, Path(cfg.run_dir))
    result = run_stage(stage, out, make_module(cfg, dm.info, ticket), dm)
    print(format_result(result))
    return result


def format_result(result: StageResult) -> str:
    last = result.history[-1] if result.history else None
    test = result.test
    threat = f" [{test.threat.label()}]" if test and test.threat else ""
    parts = [f"sparsity {result.sparsity:.1%}"]
    if last is not None:
        parts.append(f"val clean {last.val_clean:.2f}")
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
