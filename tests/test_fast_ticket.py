"""The fast_ticket pipeline end to end on tiny settings: arms, summary, reuse, and kill/resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lth_lightning.data import build_datamodule
from lth_lightning.models import build_model
from lth_lightning.pruning import load_ticket
from lth_lightning.reports.summary import cost_to_target
from lth_lightning.results import CostToTarget, EpochRecord, StageResult, Summary, read_json, to_json
from lth_lightning.tasks.fast_ticket import run_fast_ticket
from tests.conftest import assert_png

TINY = ["experiment=fast_ticket", "pipeline.find.epochs=1", "pipeline.ticket_epochs=2", "pipeline.dense_epochs=2",
        "trainer.limit_train_batches=3", "attack.steps=2", "optim.warmup_epochs=0", "optim.lr=0.02"]  # LR 0.1 collapses


def test_pipeline_arms_summary_and_reuse(make_cfg, tmp_path):
    cfg = make_cfg(*TINY)
    summary = run_fast_ticket(cfg)
    assert set(summary.arms) == {"ticket", "reinit", "dense"}
    assert summary.arms["ticket"].sparsity == pytest.approx(80.0, abs=0.1)
    assert summary.arms["dense"].sparsity == 0.0
    assert summary.arms["ticket"].find_cost.passes > 0  # finding is charged to the ticket
    assert summary.arms["dense"].find_cost.passes == 0
    assert read_json(Summary, tmp_path / "summary.json") == summary  # the file holds the result returned
    assert_png(tmp_path / "curves.png")
    md = (tmp_path / "summary.md").read_text()
    assert "Pipeline cost to target" in md
    for arm in ("ticket", "reinit", "dense"):  # a row per arm with its own sparsity
        assert f"| {arm} | {summary.arms[arm].sparsity:.1f}" in md, md
    cache = tmp_path / "cache"
    stamps = {p: p.stat().st_mtime_ns for p in cache.glob("*/result.json")}
    assert len(stamps) == 4  # find, ticket, reinit, dense
    assert read_json(Summary, tmp_path / "summary.json") == summary  # the JSON round-trips to the same object
    # a different pruning ratio reuses the dense baseline but finds a new ticket
    other = make_cfg(*TINY, "prune.ratio=0.5", f"run_dir={tmp_path / 'r2'}")
    run_fast_ticket(other)
    new = set(cache.glob("*/result.json")) - set(stamps)
    assert sorted(p.parent.name.split("-")[0] for p in new) == ["find", "reinit", "ticket"]  # no new dense
    assert all(p.stat().st_mtime_ns == stamp for p, stamp in stamps.items())


def test_cost_to_target_first_crossing():
    hist = [EpochRecord(1, 50.0, None, 100.0, 1.0), EpochRecord(2, 60.0, 30.0, 200.0, 2.0),
            EpochRecord(3, 70.0, 25.0, 300.0, 3.0)]
    assert cost_to_target(hist, 30.0) == CostToTarget(2, 2.0, 200.0)  # the unmeasured epoch 1 never counts
    assert cost_to_target(hist, 31.0) == CostToTarget(None, None, None)
    assert cost_to_target(hist, 65.0, "val_clean") == CostToTarget(3, 3.0, 300.0)


def test_single_arm_pipeline(make_cfg, tmp_path):
    summary = run_fast_ticket(make_cfg(*TINY, "pipeline.arms=[dense]"))
    assert list(summary.arms) == ["dense"] and summary.pipeline is None


def _results_only(data):
    """A result with its wall-clock fields and paths removed: what must be bit-identical on CPU."""
    if isinstance(data, dict):
        return {k: _results_only(v) for k, v in data.items()
                if "seconds" not in k and k not in ("dir", "best_checkpoint", "checkpoint", "ticket")}
    if isinstance(data, list):
        return [_results_only(v) for v in data]
    return data


@pytest.mark.slow  # two full CLI pipelines and a kill: .ci/run runs it after make test
def test_killed_run_resumes_to_the_same_summary(tmp_path):
    """SIGKILL the CLI while the ticket arm trains; the rerun reuses find, resumes the ticket stage, and
    ends with a summary identical, field for field, to an uninterrupted run's (wall-clock aside)."""
    cache = tmp_path / "cache"
    common = [*TINY, "pipeline.ticket_epochs=5", "trainer.limit_train_batches=4", "trainer.enable_progress_bar=false",
              "eval.autoattack=off", "eval.val_robust_samples=64"]
    args = [sys.executable, "-m", "lth_lightning", *common, f"pipeline.cache_dir={cache}",
            f"hydra.run.dir={tmp_path / 'run'}"]
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
    ticket = read_json(StageResult, next(cache.glob("ticket-*/result.json")))
    assert [h.epoch for h in ticket.history] == list(range(1, 6))
    clean = subprocess.run([sys.executable, "-m", "lth_lightning", *common, f"pipeline.cache_dir={tmp_path / 'c2'}",
                            f"hydra.run.dir={tmp_path / 'clean'}"], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=300)
    assert clean.returncode == 0, clean.stderr[-2000:]
    resumed, uninterrupted = (json.loads((tmp_path / d / "summary.json").read_text()) for d in ("run", "clean"))
    assert _results_only(resumed) == _results_only(uninterrupted)


def test_a_stage_alone_equals_the_same_stage_after_others(make_cfg, tmp_path):
    """The dense arm trained alone (a fresh cache) equals the dense arm trained after find/ticket/reinit."""
    full = run_fast_ticket(make_cfg(*TINY))
    alone = run_fast_ticket(make_cfg(*TINY, "pipeline.arms=[dense]", f"pipeline.cache_dir={tmp_path / 'alone'}",
                                     f"run_dir={tmp_path / 'alone_run'}"))
    a, b = (to_json(s.arms["dense"]) for s in (full, alone))
    assert _results_only(a) == _results_only(b)


def test_rewind_ticket_holds_the_theta_k_snapshot(make_cfg, tmp_path):
    """fast_ticket with prune.reset=rewind: survivors equal θk (after epoch 1 of finding) bit for bit."""
    cfg = make_cfg(*TINY, "pipeline.find.epochs=2", "prune.reset=rewind", "prune.rewind_epoch=1",
                   "pipeline.arms=[ticket]")
    run_fast_ticket(cfg)
    find_dir = next((tmp_path / "cache").glob("find-*"))
    theta_k = torch.load(find_dir / "rewind.pt", weights_only=True)
    ticket = load_ticket(find_dir / "ticket.pt")
    assert ticket.provenance["reset"] == "rewind"
    theta0 = build_model(cfg.model, build_datamodule(cfg.data).info, seed=cfg.seed).state_dict()
    for name, mask in ticket.masks.items():
        assert torch.equal(ticket.weights[name][mask], theta_k[name][mask]), name
        assert torch.count_nonzero(ticket.weights[name][~mask]) == 0
    assert not torch.equal(ticket.weights["net.features.0.weight"], theta0["net.features.0.weight"])


def test_extra_find_lr_arms_are_named_by_their_lr(make_cfg):
    summary = run_fast_ticket(make_cfg(*TINY, "pipeline.arms=[dense]", "pipeline.extra_find_lrs=[0.1]"))
    assert set(summary.arms) == {"ticket@lr0.1", "dense"}
    assert summary.arms["ticket@lr0.1"].find_cost.passes > 0


def test_fast_ticket_trains_the_unstructured_controls(make_cfg, tmp_path):
    """pipeline.arms takes the controls: random_mask trains the ticket's per-layer sparsity, charged no finding."""
    summary = run_fast_ticket(make_cfg(*TINY, "pipeline.arms=[ticket,random_mask]"))
    assert set(summary.arms) == {"ticket", "random_mask"}
    control = summary.arms["random_mask"]
    assert control.sparsity == pytest.approx(summary.arms["ticket"].sparsity, abs=0.01)
    assert control.find_cost.passes == 0 and summary.arms["ticket"].find_cost.passes > 0
    assert len(list((tmp_path / "cache").glob("random_mask-*/result.json"))) == 1
    assert "| random_mask |" in (tmp_path / "summary.md").read_text()


def test_summary_says_first_that_the_ticket_missed_and_where_its_files_are(make_cfg, tmp_path, capsys):
    """#26: the summary opens with one verdict line (never a bare "saving" under a footnote about reaching the
    target); summary.json holds each arm's best checkpoint and ticket, linked in the run dir."""
    import dataclasses

    from lth_lightning.reports.summary import verdict_line

    summary = run_fast_ticket(make_cfg(*TINY))
    md = (tmp_path / "summary.md").read_text()
    assert summary.verdict and md.splitlines()[2] == f"**{summary.verdict}**"  # under the title, before any table
    out = capsys.readouterr().out
    assert out.index(summary.verdict) < out.index("| arm |")  # the console too: the verdict before the tables
    # the same run, had the ticket stopped at 40 % robust: it says so, then what the short schedule saved
    ticket, dense = summary.arms["ticket"], summary.arms["dense"]
    assert not ticket.collapsed and not dense.collapsed
    missed = dataclasses.replace(ticket, to_target=CostToTarget(), best_val_robust=40.0)
    summary.arms["ticket"] = missed
    full = summary.pipeline.macs.saving_full_pct
    assert verdict_line(summary) == (
        f"The ticket did not reach the target (best 40.0 vs {summary.target:.1f} %); its shorter schedule costs "
        f"{abs(full):.1f} % {'less' if full > 0 else 'more'} (MACs, finding included) and ends "
        f"{dense.best_val_robust - 40.0:.1f} points below dense ({dense.best_val_robust:.1f} %).")
    # #31: a ticket at chance (collapsed: one class at its best epoch) once showed a full-schedule saving
    summary.arms["ticket"] = dataclasses.replace(ticket, collapsed=True, best_val_robust=8.68)
    assert verdict_line(summary) == ("The ticket (best 8.7 %) collapsed (one class predicted at the best epoch): no "
                                     "saving is reported.")
    from lth_lightning.reports.aggregate import _metrics
    from lth_lightning.reports.summary import render_markdown

    summary.pipeline = None  # as build_summary leaves it when an arm collapsed
    assert _metrics(summary)["saving_full_pct"] is None and "Pipeline cost" not in render_markdown(summary)
    summary.arms["ticket"] = ticket
    assert f"fast_ticket full (best {ticket.best_val_robust:.1f} %)" in md
    saved = json.loads((tmp_path / "summary.json").read_text())["arms"]
    for name, arm in summary.arms.items():
        assert arm.checkpoint and saved[name]["checkpoint"] == arm.checkpoint
        assert (tmp_path / "checkpoints" / f"{name}.ckpt").resolve() == Path(arm.checkpoint).resolve()
        torch.load(tmp_path / "checkpoints" / f"{name}.ckpt", weights_only=True)  # a real, loadable checkpoint
    assert saved["ticket"]["ticket"] and load_ticket(tmp_path / "tickets" / "ticket.pt").masks
    assert saved["dense"]["ticket"] is None
    assert f"task=eval ckpt_path={ticket.checkpoint} data=digits" in md
