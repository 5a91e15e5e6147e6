"""Adversarial training buys robustness; the eval task re-evaluates a checkpoint without retraining."""

from __future__ import annotations

import pytest
import torch

from lth_lightning.modules import Classifier
from lth_lightning.results import EvalResult, StageResult, read_json
from lth_lightning.tasks.evaluate import run_eval
from lth_lightning.tasks.train import run_train

COMMON = ["model.width=2", "attack.eps=0.2", "trainer.max_epochs=5", "eval.val_robust_samples=64",
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
                           "attack.steps=5", "eval.robust=true"], run_dir)  # natural nets are attacked too
        out[mode] = (run_train(validate(raw)), run_dir)
    return out


def test_adversarial_training_beats_natural_under_pgd(trained):
    natural, adversarial = trained["none"][0].test, trained["pgd"][0].test
    print(f"natural: {natural}  pgd-trained: {adversarial}")
    assert natural.clean > 90
    assert adversarial.robust > natural.robust + 20
    assert adversarial.robust <= adversarial.clean
    assert adversarial.threat.label() == "PGD-10 L∞ ε=0.2"


def test_eval_task_reproduces_test_metrics(make_cfg, trained, tmp_path):
    result, _run_dir = trained["pgd"]
    ckpt = result.best_checkpoint
    cfg = make_cfg(f"ckpt_path={ckpt}", "task=eval", "attack.eps=0.2", "eval.test_restarts=2",
                   "model=mlp")  # the architecture comes from the checkpoint, not from this flag
    out = run_eval(cfg)
    assert read_json(EvalResult, tmp_path / "eval.json") == out
    assert out.test.clean == pytest.approx(result.test.clean, abs=0.01)
    assert out.test.robust <= result.test.robust + 1.0  # 2 restarts: never easier
    assert out.test.threat.restarts == 2


def test_checkpoints_load_with_lightning_and_weights_only(trained):
    """Hyperparameters are plain dicts: Lightning rebuilds the module, and no pickled object is needed."""
    result, _ = trained["pgd"]
    raw = torch.load(result.best_checkpoint, weights_only=True)
    assert raw["hyper_parameters"]["model"]["width"] == 2
    module = Classifier.load_from_checkpoint(result.best_checkpoint, map_location="cpu")
    assert module.attack_cfg.eps == 0.2 and module.model_cfg.name == "lenet"
    weights = {f"model.{k}": v for k, v in module.model.state_dict().items()}
    assert all(torch.equal(raw["state_dict"][k], v) for k, v in weights.items())


def test_bf16_training_evaluates_autoattack_in_fp32(make_cfg, tmp_path):
    """bf16-mixed training used to crash at the test-set AutoAttack (torchattacks calls .numpy() on bf16
    logits). Evaluation now runs outside autocast: the pipeline finishes, and its AutoAttack and clean
    numbers are what a 32-true evaluation of the same checkpoint measures."""
    from lth_lightning.tasks.fast_ticket import run_fast_ticket

    settings = ["experiment=fast_ticket", "pipeline.find.epochs=1", "pipeline.ticket_epochs=1",
                "pipeline.dense_epochs=1", "pipeline.arms=[dense]", "trainer.limit_train_batches=3",
                "attack.steps=2", "eval.autoattack=apgd", "eval.autoattack_samples=32",
                "eval.eps=0.01"]  # small: points survive APGD-CE, so APGD-T (where bf16 crashed) runs
    summary = run_fast_ticket(make_cfg(*settings, "trainer.precision=bf16-mixed"))
    dense = read_json(StageResult, next((tmp_path / "cache").glob("dense-*/result.json")))
    assert dense.test.autoattack is not None and dense.test == summary.arms["dense"].test
    again = run_eval(make_cfg(*settings, "task=eval", f"ckpt_path={dense.best_checkpoint}",
                              "trainer.precision=32-true"))
    assert (again.test.autoattack, again.test.clean) == (dense.test.autoattack, dense.test.clean)
