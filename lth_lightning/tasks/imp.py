"""Iterative magnitude pruning (one-shot is IMP with a single level).

Layout: ``<run>/level_<L>/`` holds ``ticket.pt`` (the mask and reset weights level L starts from),
Lightning checkpoints, metrics, ``stage.json`` (its identity) and ``result.json``. Level L's
end-of-training prune (``level.prune_step``) writes level L+1's ticket; a level whose result exists is
skipped, so restarting the command continues where it stopped, and a run dir holding levels of another
config is refused. ``<run>/levels.md`` / ``levels.csv`` tabulate sparsity and accuracy per level.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from lightning.pytorch.utilities import rank_zero_info

from lth_lightning.config import Config
from lth_lightning.data import build_datamodule
from lth_lightning.io import write_table
from lth_lightning.models import build_model
from lth_lightning.pruning import Ticket, load_ticket, save_ticket
from lth_lightning.pruning.reset import snapshot
from lth_lightning.pruning.tickets import provenance
from lth_lightning.results import ImpResult, LevelRow
from lth_lightning.results import fmt as _fmt
from lth_lightning.stages.identity import Stage, claim_dir
from lth_lightning.stages.prune_step import prune_step
from lth_lightning.stages.runner import is_rank_zero, make_module, run_stage


def run_imp(cfg: Config) -> ImpResult:
    run_dir = Path(cfg.run_dir)
    dm = build_datamodule(cfg.data)
    levels = 1 if cfg.prune.name == "oneshot" else cfg.prune.levels
    first = run_dir / "level_0" / "ticket.pt"
    if not first.exists() and is_rank_zero():
        dense = build_model(cfg.model, dm.info, seed=cfg.seed)
        save_ticket(first, Ticket({}, snapshot(dense), provenance(cfg, sparsity=0.0, level=0)))
    theta0 = load_ticket(first).weights
    rows: list[LevelRow] = []
    previous: Stage | None = None
    for level in range(levels + 1):
        stage_cfg = dataclasses.replace(cfg, task="train", ticket=None)
        stage = Stage(f"level{level}", stage_cfg, (previous.identity,) if previous else ())
        level_dir = claim_dir(stage, run_dir / f"level_{level}")
        ticket = load_ticket(level_dir / "ticket.pt") if level > 0 else None
        module = make_module(cfg, dm.info, ticket)
        if level < levels:
            result = prune_step(stage, level_dir, module, dm, target=cfg.prune.target_sparsity(level + 1),
                                 theta0=theta0, rewind_path=run_dir / "rewind.pt",
                                 ticket_path=run_dir / f"level_{level + 1}" / "ticket.pt", level=level + 1,
                                 first_run=level == 0, name=f"level_{level}")
        else:
            result = run_stage(stage, level_dir, module, dm, f"level_{level}")
        rows.append(LevelRow.of(level, result))
        rank_zero_info(f"level {level}: sparsity {rows[-1].sparsity} % | val clean {_fmt(rows[-1].val_clean)} "
                       f"robust {_fmt(rows[-1].val_robust)}")
        previous = stage
    threat = module.threat.label() if module.threat else None
    if is_rank_zero():
        print(write_table([_table_row(r, threat) for r in rows], run_dir / "levels"))
    return ImpResult(rows, threat)


def _table_row(row: LevelRow, threat: str | None) -> dict[str, object]:
    """Robust columns carry their threat model in the header, and are left out when it was not measured."""
    out = dataclasses.asdict(row)
    labels = {"val_robust": f"val_robust [{threat}]", "test_robust": f"test_robust [{threat}]",
              "test_autoattack": "test_autoattack [AutoAttack, same ε]"}
    for key, label in labels.items():
        value = out.pop(key)
        if threat is not None:
            out[label] = value
    return out
