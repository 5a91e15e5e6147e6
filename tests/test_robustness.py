"""Adversarial training buys robustness; the eval task re-evaluates a checkpoint without retraining."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lth_lightning.pipelines.evaluate import run_eval
from lth_lightning.pipelines.train import run_train

COMMON = ["model.width=2", "attack.eps=0.2", "trainer.max_epochs=8", "eval.val_robust_samples=200",
          "optim.lr=0.05", "optim.warmup_epochs=1"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, request):
    """A naturally and an adversarially (PGD) trained lenet on digits, same seed and schedule."""
    from lth_lightning.config import validate
    from tests.conftest import FAST, compose_cfg

    out = {}
    for mode in ("none", "pgd"):
        run_dir = tmp_path_factory.mktemp(mode)
        raw = compose_cfg([*FAST, *COMMON, f"attack={mode}", "attack.eps=0.2", "attack.step_size=0.05",
                           "attack.steps=5"], run_dir)
        out[mode] = (run_train(validate(raw)), run_dir)
    return out


def test_adversarial_training_beats_natural_under_pgd(trained):
    natural, adversarial = trained["none"][0]["test"], trained["pgd"][0]["test"]
    print(f"natural: {natural}  pgd-trained: {adversarial}")
    assert natural["clean_acc"] > 90
    assert adversarial["robust_acc"] > natural["robust_acc"] + 20
    assert adversarial["robust_acc"] <= adversarial["clean_acc"]


def test_eval_task_reproduces_test_metrics(make_cfg, trained, tmp_path):
    result, _run_dir = trained["pgd"]
    ckpt = result["best_checkpoint"]
    cfg = make_cfg(f"ckpt_path={ckpt}", "task=eval", "attack.eps=0.2", "eval.test_restarts=2",
                   "model=mlp")  # the architecture comes from the checkpoint, not from this flag
    out = run_eval(cfg)
    assert json.loads((tmp_path / "eval.json").read_text()) == out
    assert out["accuracy"]["clean_acc"] == pytest.approx(result["test"]["clean_acc"], abs=0.01)
    assert out["accuracy"]["robust_acc"] <= result["test"]["robust_acc"] + 1.0  # 2 restarts: never easier


def test_eval_rejects_a_bad_checkpoint_with_one_line(tmp_path):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint")
    out = subprocess.run([sys.executable, "-m", "lth_lightning", "task=eval", f"ckpt_path={bad}",
                          f"hydra.run.dir={tmp_path / 'run'}"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1].startswith(f"error: {bad} is not a readable checkpoint")
