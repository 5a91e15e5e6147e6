"""``task=train``: train one model (dense, or from ``ticket=<file>``); with ``prune=...`` run IMP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lth_lightning.config import Config
from lth_lightning.data import build_datamodule
from lth_lightning.pipelines.common import make_module, run_stage
from lth_lightning.pruning import load_ticket


def run_train(cfg: Config) -> dict[str, Any]:
    if cfg.prune.name != "none":
        from lth_lightning.pipelines.imp import run_imp

        return run_imp(cfg)
    dm = build_datamodule(cfg.data)
    ticket = load_ticket(cfg.ticket) if cfg.ticket else None
    module = make_module(cfg, dm.info, cfg.seed, ticket)
    result = run_stage(cfg, "train", Path(cfg.run_dir), module, dm, cfg.trainer.max_epochs)
    print(format_result(result))
    return result


def format_result(result: dict[str, Any]) -> str:
    last = result["history"][-1] if result["history"] else {}
    test = result.get("test", {})
    parts = [f"sparsity {result['sparsity']:.1%}"]
    parts += [f"val {k.removeprefix('val_')} {last[k]:.2f}" for k in ("val_clean", "val_robust")
              if last.get(k) is not None]
    parts += [f"test {k} {v:.2f}" for k, v in test.items()]
    parts.append(f"train {result['ledger']['train_seconds']:.1f}s")
    return f"[{result['stage']}] " + " | ".join(parts)
