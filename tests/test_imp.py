"""IMP driver: levels with their own dirs and tickets, expected sparsity, restart skips finished levels."""

from __future__ import annotations

import csv

import pytest

from lth_lightning.pruning import load_ticket
from lth_lightning.tasks.train import run_train


def test_imp_levels_table_and_restart(make_cfg, tmp_path):
    cfg = make_cfg("prune=imp", "prune.levels=2", "prune.rate=0.5", "trainer.max_epochs=1",
                   "trainer.limit_train_batches=4", "eval.val_robust_samples=0")
    out = run_train(cfg)
    sparsities = [row.sparsity for row in out.levels]
    assert sparsities == pytest.approx([0.0, 50.0, 75.0], abs=0.01)
    rows = list(csv.DictReader((tmp_path / "levels.csv").read_text().splitlines()))
    assert [float(r["sparsity"]) for r in rows] == pytest.approx(sparsities, abs=0.01)  # one row per level
    assert (tmp_path / "levels.md").read_text().count("\n|") >= len(rows) + 1  # header rule and a row each
    ticket = load_ticket(tmp_path / "level_2" / "ticket.pt")
    prov = ticket.provenance
    assert prov["level"] == 2 and prov["criterion"] == "global" and prov["model"]["name"] == "lenet"
    assert prov["data"]["name"] == "digits" and prov["code_version"].startswith("0.1.0")
    stamps = {p: p.stat().st_mtime_ns for p in tmp_path.glob("level_*/result.json")}
    again = run_train(cfg)
    assert again.levels == out.levels
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # nothing recomputed


def test_train_from_a_ticket_file(make_cfg, tmp_path):
    cfg = make_cfg("prune=oneshot", "prune.ratio=0.6", "trainer.max_epochs=1", "trainer.limit_train_batches=2",
                   "eval.val_robust_samples=0")
    run_train(cfg)
    ticket_path = tmp_path / "level_1" / "ticket.pt"
    cfg2 = make_cfg(f"ticket={ticket_path}", "trainer.max_epochs=1", "trainer.limit_train_batches=2",
                    "eval.val_robust_samples=0", f"run_dir={tmp_path / 'from_ticket'}")
    result = run_train(cfg2)
    assert result.sparsity == pytest.approx(0.6, abs=1e-3)
