"""Hydra multirun: one shared dense baseline, per-job dirs, aggregate table + heatmap; W&B offline; Optuna."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import assert_png

TINY = ["+experiment=fast_ticket", "pipeline.find.epochs=1", "pipeline.ticket_epochs=1", "pipeline.dense_epochs=1",
        "trainer.limit_train_batches=2", "eval.autoattack=off", "eval.val_robust_samples=32", "attack.steps=2",
        "data.test_subset=64"]


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    out = subprocess.run([sys.executable, "-m", "lth_lightning", *args], cwd=tmp_path, capture_output=True,
                         text=True, env=env, timeout=400)
    assert out.returncode == 0, out.stderr[-3000:]
    return out


@pytest.mark.slow  # a 4-job Hydra multirun in subprocesses (~20 s): .ci/run runs it after make test
def test_sweep_shares_dense_and_aggregates(tmp_path):
    sweep = tmp_path / "sweep"
    out = _cli(tmp_path, "-m", *TINY, "prune.ratio=0.5,0.8", "pipeline.find.lr=0.01,0.1",
               f"pipeline.cache_dir={tmp_path / 'cache'}", f"hydra.sweep.dir={sweep}")
    assert len(list((tmp_path / "cache").glob("dense-*"))) == 1  # trained once for four jobs
    assert (out.stdout + out.stderr).count("[dense] finished before: reusing") == 3
    assert all((sweep / str(j) / "summary.json").exists() for j in range(4))
    rows = list(csv.DictReader((sweep / "aggregate.csv").read_text().splitlines()))
    assert len(rows) == 4 and {r["status"] for r in rows} == {"ok"}
    assert {"prune.ratio", "pipeline.find.lr", "boost", "saving_full_pct"} <= set(rows[0])
    assert_png(sweep / "aggregate.png")
    md = (sweep / "aggregate.md").read_text()
    assert "prune.ratio" in md and md.count("\n|") >= len(rows) + 1  # the swept axis and a row per job
    assert out.stdout.count("swept axes: ") == 1  # printed once, at the end (jobs only update the files)


def test_heatmap_centres_signed_values_on_zero_and_formats_float_axes():
    """#26: a boost of -1.7 beside +0.4 is pale red, not dark green: a diverging scale symmetric about 0 for signed
    quantities; the ticket's top on a sequential one; Optuna's float ratios label the axes to 3 digits."""
    import numpy as np

    from lth_lightning.reports.aggregate import _colours, _tick

    grid = np.array([[-1.7, 0.4], [np.nan, 0.2]])
    for metric in ("boost", "saving_pct", "saving_full_pct", "saving_to_target_pct"):
        assert _colours(metric, grid) == {"cmap": "RdYlGn", "vmin": -1.7, "vmax": 1.7}
    assert _colours("ticket_top", grid) == {"cmap": "viridis"}
    assert _tick("0.7195254015709299") == "0.72" and _tick("lenet") == "lenet" and _tick("5") == "5"


@pytest.mark.slow  # a W&B-logged pipeline in a subprocess (~12 s): .ci/run runs it after make test
def test_wandb_offline_groups_every_stage(tmp_path):
    run = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k != "WANDB_SILENT"}  # W&B as a user has it: quiet by our default
    out = subprocess.run([sys.executable, "-m", "lth_lightning", *TINY, "logger=wandb", "logger.group=ft-test",
                          f"pipeline.cache_dir={tmp_path / 'cache'}", f"hydra.run.dir={run}"], cwd=tmp_path,
                         capture_output=True, text=True, env={**env, "WANDB_MODE": "offline"}, timeout=400)
    assert out.returncode == 0, out.stderr[-3000:]
    runs = sorted((run / "wandb").glob("offline-run-*"))
    assert len(runs) == 5  # find, ticket, reinit, dense, summary
    lines = (out.stdout + out.stderr).splitlines()
    assert sum(line.startswith("wandb:") for line in lines) <= 2  # no banners, no run summaries (#26)
    said = [line for line in lines if "W&B offline run: " in line]
    assert len(said) == 5 and all(f"wandb sync {r}" in "\n".join(said) for r in runs)  # one line per stage
    for r in runs:
        assert b"ft-test" in next(r.glob("run-*.wandb")).read_bytes()  # every run in the group
    media = list((run / "wandb").glob("offline-run-*/files/media"))
    assert len(media) == 1
    table = json.loads(next(media[0].glob("table/summary/*.table.json")).read_text())
    assert [row[0] for row in table["data"]] == ["ticket", "reinit", "dense"]
    assert_png(next(media[0].glob("images/summary/*.png")))
    history = b"".join(next(r.glob("run-*.wandb")).read_bytes() for r in runs)
    assert b"val/robust_acc" in history and b"sparsity/overall" in history


def test_failed_job_keeps_the_others_and_the_table(tmp_path):
    sweep = tmp_path / "sweep"
    env = {**os.environ, "WANDB_MODE": "offline"}
    out = subprocess.run([sys.executable, "-m", "lth_lightning", "-m", *TINY, "pipeline.arms=[dense]",
                          "optim.lr=0.05,-1", f"pipeline.cache_dir={tmp_path / 'cache'}", f"hydra.sweep.dir={sweep}"],
                         cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300)
    # #31: one refused job once ended the sweep in a traceback; now it says why in one line, the good job still
    # runs, and the sweep exits 2 naming the failed job
    assert out.returncode == 2 and "Traceback" not in out.stderr  # the sweep reports the failure...
    assert "error: optim.lr=-1.0 must be positive" in out.stderr
    assert "error: 1 job(s) of the multirun failed: job 1 (" in out.stderr and "optim.lr=-1" in out.stderr
    rows = list(csv.DictReader((sweep / "aggregate.csv").read_text().splitlines()))
    assert [r["status"] for r in rows] == ["ok", "failed"]  # ...and keeps the finished job's result
    assert (sweep / "0" / "summary.json").exists()


def test_wandb_group_is_the_experiment_and_the_overrides_on_top():
    """A pipeline's W&B group reads as what was run (paths and logging left out), not a timestamp."""
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    from lth_lightning.cli import CONF_DIR
    from lth_lightning.config import validate
    from lth_lightning.reports.tracking import wandb_group

    overrides = ["experiment=fast_ticket", "prune.ratio=0.5", "seed=3", "data.root=/x", "logger=wandb"]
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        raw = compose("config", overrides=[*overrides, "run_dir=/tmp/run"], return_hydra_config=True)
    HydraConfig.instance().set_config(raw)
    try:
        cfg = validate(OmegaConf.masked_copy(raw, [k for k in raw if k != "hydra"]))
        assert wandb_group(cfg) == "fast_ticket:prune.ratio=0.5,seed=3"
    finally:
        HydraConfig.instance().cfg = None
