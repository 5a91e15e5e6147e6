"""The fast_ticket pipeline end to end on tiny settings: arms, summary, reuse, and kill/resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from lth_lightning.pipelines.fast_ticket import run_fast_ticket
from lth_lightning.pipelines.report import cost_to_target

TINY = ["experiment=fast_ticket", "pipeline.find.epochs=1", "pipeline.ticket_epochs=2", "pipeline.dense_epochs=2",
        "trainer.limit_train_batches=3", "attack.steps=2", "optim.warmup_epochs=0"]


def test_pipeline_arms_summary_and_reuse(make_cfg, tmp_path):
    cfg = make_cfg(*TINY)
    summary = run_fast_ticket(cfg)
    assert set(summary["arms"]) == {"ticket", "reinit", "dense"}
    assert summary["arms"]["ticket"]["sparsity"] == pytest.approx(80.0, abs=0.1)
    assert summary["arms"]["dense"]["sparsity"] == 0.0
    assert summary["arms"]["ticket"]["find_cost"]["passes"] > 0  # finding is charged to the ticket
    for name in ("summary.json", "summary.md", "curves.png"):
        assert (tmp_path / name).stat().st_size > 0
    md = (tmp_path / "summary.md").read_text()
    assert "| ticket |" in md and "Pipeline cost to target" in md
    cache = tmp_path / "cache"
    stamps = {p: p.stat().st_mtime_ns for p in cache.glob("*/result.json")}
    assert len(stamps) == 4  # find, ticket, reinit, dense
    # a different pruning ratio reuses the dense baseline but finds a new ticket
    other = make_cfg(*TINY, "prune.ratio=0.5", f"run_dir={tmp_path / 'r2'}")
    run_fast_ticket(other)
    new = set(cache.glob("*/result.json")) - set(stamps)
    assert sorted(p.parent.name.split("-")[0] for p in new) == ["find", "reinit", "ticket"]  # no new dense
    assert all(p.stat().st_mtime_ns == stamp for p, stamp in stamps.items())


def test_cost_to_target_first_crossing():
    hist = [{"epoch": 1, "val_robust": 10.0, "train_seconds": 1.0, "passes": 100.0},
            {"epoch": 2, "val_robust": 30.0, "train_seconds": 2.0, "passes": 200.0},
            {"epoch": 3, "val_robust": 25.0, "train_seconds": 3.0, "passes": 300.0}]
    assert cost_to_target(hist, 30.0) == {"epochs": 2, "seconds": 2.0, "passes": 200.0}
    assert cost_to_target(hist, 31.0)["epochs"] is None


def test_single_arm_pipeline(make_cfg, tmp_path):
    summary = run_fast_ticket(make_cfg(*TINY, "pipeline.arms=[dense]"))
    assert list(summary["arms"]) == ["dense"] and "pipeline" not in summary


def test_killed_run_resumes_without_redoing_finished_stages(tmp_path):
    """SIGKILL the CLI while the ticket arm trains; the rerun reuses find and resumes the ticket stage."""
    cache = tmp_path / "cache"
    args = [sys.executable, "-m", "lth_lightning", *TINY, "pipeline.ticket_epochs=6", "trainer.limit_train_batches=4",
            "trainer.enable_progress_bar=false", "eval.autoattack=off", "eval.val_robust_samples=64",
            f"pipeline.cache_dir={cache}", f"hydra.run.dir={tmp_path / 'run'}"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    ticket_ckpt = None
    while time.time() < deadline and proc.poll() is None:
        found = list(cache.glob("ticket-*/checkpoints/last.ckpt"))
        if found:
            ticket_ckpt = found[0]
            break
        time.sleep(0.05)
    assert ticket_ckpt is not None, "ticket stage never checkpointed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    find_result = next(cache.glob("find-*/result.json"))
    find_stamp = find_result.stat().st_mtime_ns
    assert not list(cache.glob("ticket-*/result.json"))  # killed mid-stage
    rerun = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    log = rerun.stdout + rerun.stderr
    assert "[find@lr0.01] finished before: reusing" in log
    assert "[ticket] resuming from" in log
    assert find_result.stat().st_mtime_ns == find_stamp
    ticket = json.loads(next(cache.glob("ticket-*/result.json")).read_text())
    assert [h["epoch"] for h in ticket["history"]] == list(range(1, 7))
    assert (tmp_path / "run" / "summary.json").exists()


def test_extra_find_lr_arms_are_named_by_their_lr(make_cfg):
    summary = run_fast_ticket(make_cfg(*TINY, "pipeline.arms=[dense]", "pipeline.extra_find_lrs=[0.1]"))
    assert set(summary["arms"]) == {"ticket@lr0.1", "dense"}
    assert summary["arms"]["ticket@lr0.1"]["find_cost"]["passes"] > 0
