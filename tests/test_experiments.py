"""Every experiment config runs its whole pipeline for a step on tiny synthetic data of its shape,
with its own attack, eval and pipeline settings: only sizes (data, epochs, batches, samples) shrink, and the
CIFAR experiments skip AutoAttack (minutes per stage on CPU; the digits and MNIST ones run it)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest

from lth_lightning.cli import CONF_DIR
from lth_lightning.config import with_overrides
from lth_lightning.tasks.fast_ticket import run_fast_ticket
from lth_lightning.tasks.frontier import arm_names, run_frontier
from lth_lightning.tasks.search import run_search
from lth_lightning.tasks.train import run_train

EXPERIMENTS = sorted(p.stem for p in (Path(CONF_DIR) / "experiment").glob("*.yaml"))
SHAPE = {"digits": "[1,8,8]", "mnist": "[1,28,28]", "cifar10": "[3,32,32]"}


# the CIFAR-shaped ones build VGG/ResNet/WRN and run PGD-10 through them on CPU (20-30 s each): slow, so make test
# stays inside its budget; .ci/run runs them after make test
CIFAR = [pytest.param(e, marks=pytest.mark.slow) if "cifar10" in e else e for e in EXPERIMENTS]


@pytest.mark.parametrize("experiment", CIFAR)
def test_experiment_smoke_runs(make_cfg, experiment):
    base = make_cfg(f"experiment={experiment}", fast=False)
    # stages shrink to 1 epoch, or to the longest ε ramp the experiment trains (a ramp must fit its schedule);
    # a frontier keeps its full schedule, which only sets how budgets compress
    ramp = max(with_overrides(base, ov, where).attack.eps_warmup_epochs for where, ov in base.variants().items())
    epochs = max(1, math.ceil(ramp))
    lengths = {"frontier": [], "search": [], "train": [f"trainer.max_epochs={epochs}"]}.get(
        base.task, ["pipeline.find.epochs=1", f"pipeline.ticket_epochs={epochs}", f"pipeline.dense_epochs={epochs}"])
    overrides = [
        f"experiment={experiment}", "data=synthetic", f"data.shape={SHAPE[base.data.name]}",
        "data.synthetic_size=16", "data.batch_size=4", "data.eval_batch_size=8", "data.num_workers=0",
        "trainer=cpu", "trainer.precision=32-true", "trainer.limit_train_batches=1", "trainer.limit_val_batches=1",
        "trainer.limit_test_batches=1", "trainer.enable_progress_bar=false", *lengths, "eval.autoattack_samples=2",
        *(["pipeline.find.epochs=1"] if base.task in ("frontier", "search") else []),
    ]
    if base.model.name == "wrn":
        overrides.append("model.widen=1")  # WRN-34-10 is 46M parameters: too slow for a CPU smoke test
    if base.data.name == "cifar10":  # AutoAttack (standard's Square: 5000 queries) costs minutes per stage on
        overrides.append("eval.autoattack=off")  # CPU for VGG/ResNet; the digits and MNIST experiments keep it
    cfg = make_cfg(*overrides, fast=False)
    own = dataclasses.replace(base.eval, autoattack_samples=2, autoattack=cfg.eval.autoattack)
    assert cfg.eval == own and cfg.attack == base.attack and cfg.optim == base.optim
    assert base.task == "train" or cfg.pipeline.find == dataclasses.replace(base.pipeline.find, epochs=1)
    if base.task == "train":  # a published recipe reproduced (wong_mnist): its own net, attack and schedule
        result = run_train(cfg)
        assert result.ledger.passes == 2 * 4 and result.test is not None and result.test.robust is not None  # 2 a pass
        return
    if base.task == "frontier":
        overrides += ["frontier.budgets=[1]", f"frontier.lrs=[{base.frontier.lrs[0]}]", "frontier.seeds=[0]",
                      "frontier.final_samples=4"]  # the strong final evaluation runs, on 4 test images
        result = run_frontier(make_cfg(*overrides, fast=False))
        assert {r.arm for r in result.runs} == set(arm_names(base)) and result.headline  # variants and structures too
        return
    if base.task == "search":  # two trials on its own space, one recipe confirmed on two fresh seeds
        overrides += ["search.trials=2", "search.startup_trials=1", "search.confirm=1", "search.confirm_seeds=[1,2]",
                      f"search.space.budget=[{min(base.search.space.budget)}]", "frontier.budgets=[1]",
                      f"frontier.lrs=[{base.frontier.lrs[0]}]", "frontier.final_samples=4"]
        result = run_search(make_cfg(*overrides, fast=False))
        assert len(result.trials) == 2 and result.headline
        assert len(result.confirmed) == (1 if result.front else 0)  # one synthetic batch often collapses every trial
        if result.confirmed:  # the standard recipe and the baselines beside it, on the confirmation seeds
            assert {r.arm for r in result.runs} >= {"dense", *base.frontier.baselines, result.confirmed[0].arm}
        return
    summary = run_fast_ticket(cfg)
    expected = {"dense", "ticket", "reinit"} | {f"ticket@lr{lr:g}" for lr in base.pipeline.extra_find_lrs}
    assert set(summary.arms) == expected
    assert summary.arms["ticket"].sparsity == pytest.approx(100 * base.prune.ratio, abs=0.5)
    robust = base.attack.name != "none"
    assert summary.target_metric == ("val_robust" if robust else "val_clean")
    assert (summary.arms["dense"].best_val_robust is not None) == robust  # natural: "not measured", not 0
