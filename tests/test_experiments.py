"""Every experiment config runs its whole pipeline for a step on tiny synthetic data of its shape."""

from __future__ import annotations

from pathlib import Path

import pytest

from lth_lightning.cli import CONF_DIR
from lth_lightning.pipelines.fast_ticket import run_fast_ticket

EXPERIMENTS = sorted(p.stem for p in (Path(CONF_DIR) / "experiment").glob("*.yaml"))
SHAPE = {"digits": "[1,8,8]", "mnist": "[1,28,28]", "cifar10": "[3,32,32]"}


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_smoke_runs(make_cfg, experiment):
    base = make_cfg(f"experiment={experiment}")
    shape = SHAPE[base.data.name]
    overrides = [
        f"experiment={experiment}", "data=synthetic", f"data.shape={shape}", "data.synthetic_size=16",
        "data.batch_size=4", "data.eval_batch_size=8", "data.num_workers=0",
        "trainer=cpu", "trainer.precision=32-true", "trainer.limit_train_batches=1", "trainer.limit_val_batches=1",
        "trainer.limit_test_batches=1", "trainer.enable_progress_bar=false", "attack.steps=1",
        "pipeline.find.epochs=1", "pipeline.ticket_epochs=1", "pipeline.dense_epochs=1",
        "eval.autoattack=off", "eval.steps=1", "optim.warmup_epochs=0",
    ]
    if base.model.name == "wrn":
        overrides.append("model.width=1")  # WRN-34-10 is 46M parameters: too slow for a CPU smoke test
    cfg = make_cfg(*overrides)
    assert cfg.pipeline.find.lr == base.pipeline.find.lr and cfg.attack.name == base.attack.name
    summary = run_fast_ticket(cfg)
    expected = {"dense", "ticket", "reinit"} | {f"ticket@lr{lr:g}" for lr in base.pipeline.extra_find_lrs}
    assert set(summary["arms"]) == expected
    assert summary["arms"]["ticket"]["sparsity"] == pytest.approx(100 * base.prune.ratio, abs=0.5)
