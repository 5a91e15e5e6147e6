"""Masks through real Lightning training: exact zeros, resets to θ0/θk/re-init, checkpoint resume."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import lightning as L
import pytest
import torch

from lth_lightning.callbacks import MaskEnforcer, PruneCallback, WeightSnapshot
from lth_lightning.config import PruneConfig
from lth_lightning.data import build_datamodule
from lth_lightning.models import build_model
from lth_lightning.pruning import MaskSet, compute_masks, prunable_weights
from lth_lightning.pruning.reset import snapshot
from lth_lightning.stages.identity import Stage
from lth_lightning.stages.runner import build_trainer, make_module, run_stage


class ZeroCheck(L.Callback):
    """Asserts after every optimizer step that every pruned entry is exactly zero."""

    def __init__(self) -> None:
        self.checked = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        params = dict(pl_module.model.named_parameters())
        for name, mask in pl_module.masks.items():
            assert torch.count_nonzero(params[name][~mask]) == 0, name
        self.checked += 1


def _pruned_module(cfg, sparsity=0.8):
    dm = build_datamodule(cfg.data)
    module = make_module(cfg, dm.info)
    masks = MaskSet(compute_masks(prunable_weights(module.model), sparsity, "layer_normalized"))
    masks.add_bn_masks(module.model)
    module.masks.load_masks(masks.as_dict())
    return module, dm


@pytest.mark.parametrize("extra", [[], ["trainer.gradient_clip_val=0.1"], ["optim=adam", "optim.weight_decay=0.01"]])
def test_pruned_weights_stay_exactly_zero(make_cfg, tmp_path, extra):
    cfg = make_cfg("model=vgg11", "model.width=0.25", "data=synthetic", "data.shape=[3,16,16]",
                   "data.synthetic_size=128",
                   "data.batch_size=32", "optim.weight_decay=0.1", "optim.momentum=0.9", "attack=fgsm",
                   "trainer.limit_val_batches=0", *extra)  # the invariant is about training steps
    module, dm = _pruned_module(cfg)
    assert len(module.masks.bn_names) > 0  # 80 % layer-normalised pruning empties some VGG filters
    check = ZeroCheck()
    trainer = build_trainer(cfg.trainer, tmp_path, 2, [MaskEnforcer(), check], False)
    trainer.fit(module, datamodule=dm)
    assert check.checked >= 6
    sparsity = module.masks.sparsity()["overall"]
    params = dict(module.model.named_parameters())
    zeros = sum(int((params[n] == 0).sum()) for n in module.masks.names if n not in module.masks.bn_names)
    total = sum(params[n].numel() for n in module.masks.names if n not in module.masks.bn_names)
    assert zeros / total >= sparsity


class Trained(L.Callback):
    """Keeps the trained weights as they are just before the pruner (listed after it) resets them."""

    state: dict

    def on_fit_end(self, trainer, pl_module):
        self.state = snapshot(pl_module.model)


def _fit_and_prune(cfg, tmp_path, prune: PruneConfig):
    dm = build_datamodule(cfg.data)
    theta0 = snapshot(build_model(cfg.model, dm.info, seed=cfg.seed))
    module = make_module(cfg, dm.info)
    fresh = build_model(cfg.model, dm.info, seed=prune.reinit_seed)
    pruner = PruneCallback(prune, 0.8, lambda: theta0 if prune.reset == "init" else torch.load(
        tmp_path / "rewind.pt", weights_only=True), lambda: fresh)
    trained = Trained()
    callbacks = [MaskEnforcer(), WeightSnapshot(prune.rewind_epoch, tmp_path / "rewind.pt"), trained, pruner]
    build_trainer(cfg.trainer, tmp_path, 2, callbacks, False).fit(module, datamodule=dm)
    return module, {"init": theta0, "reinit": fresh.state_dict(), "finetune": trained.state,
                    "rewind": torch.load(tmp_path / "rewind.pt", weights_only=True)}


@pytest.mark.parametrize("reset", ["init", "rewind", "reinit", "finetune"])
def test_reset_modes(make_cfg, tmp_path, reset):
    """Survivors equal exactly the source their reset names, and none of the other three."""
    cfg = make_cfg("trainer.limit_train_batches=4", "eval.val_robust_samples=0")
    prune = PruneConfig(name="oneshot", criterion="global", reset=reset, rewind_epoch=1)
    module, sources = _fit_and_prune(cfg, tmp_path, prune)
    state = module.model.state_dict()
    assert abs(module.masks.sparsity()["overall"] - 0.8) < 1e-3
    for name, mask in module.masks.items():
        assert torch.count_nonzero(state[name][~mask]) == 0
        survivors = state[name][mask]
        for source, weights in sources.items():
            assert torch.equal(survivors, weights[name][mask]) == (source == reset), (name, source)


def test_checkpoint_resume_keeps_the_mask(make_cfg, tmp_path):
    cfg = make_cfg("trainer.limit_train_batches=3", "eval.val_robust_samples=0")
    module, dm = _pruned_module(cfg)
    masks = module.masks.as_dict()
    first = run_stage(Stage("a", _epochs(cfg, 1)), tmp_path / "a", module, dm, test=False)
    assert first.sparsity == pytest.approx(0.8, abs=1e-3)
    last = tmp_path / "a" / "checkpoints" / "last.ckpt"
    (tmp_path / "a" / "result.json").unlink()  # pretend the stage was interrupted after epoch 1
    fresh = make_module(cfg, dm.info)  # dense module: the mask must come from the checkpoint
    check = ZeroCheck()
    result = run_stage(Stage("a", _epochs(cfg, 2)), tmp_path / "a", fresh, dm, callbacks=[check], test=False)
    assert last.exists() and check.checked == 3  # only the second epoch ran
    assert all(torch.equal(fresh.masks.get(n).cpu(), m) for n, m in masks.items())
    assert [h.epoch for h in result.history] == [1, 2]  # history and ledger carried over
    assert result.ledger.passes > first.ledger.passes


def test_ledger_counts_attack_passes(make_cfg, tmp_path):
    cfg = make_cfg("attack=pgd", "attack.steps=3", "trainer.limit_train_batches=2", "data.batch_size=16",
                   "eval.val_robust_samples=0")
    dm = build_datamodule(cfg.data)
    module = make_module(cfg, dm.info)
    build_trainer(cfg.trainer, Path(tmp_path), 1, [], False).fit(module, datamodule=dm)
    assert module.ledger.passes == 2 * 16 * (3 + 1)
    assert module.ledger.train_seconds > 0


def test_rewind_to_an_iteration(make_cfg, tmp_path):
    cfg = make_cfg("trainer.limit_train_batches=4", "eval.val_robust_samples=0")
    dm = build_datamodule(cfg.data)
    module = make_module(cfg, dm.info)
    seen = {}

    class Record(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, *args):
            if trainer.global_step == 3:
                seen.update(snapshot(pl_module.model))

    snap = WeightSnapshot(epoch=1, path=tmp_path / "k3.pt", step=3)
    build_trainer(cfg.trainer, tmp_path, 2, [Record(), snap], False).fit(module, datamodule=dm)
    saved = torch.load(tmp_path / "k3.pt", weights_only=True)
    assert all(torch.equal(saved[k], v) for k, v in seen.items())  # θ at iteration 3, not epoch end


def test_catastrophic_overfitting_warns_and_stops():
    from types import SimpleNamespace

    from lth_lightning.callbacks import CatastrophicOverfitting

    watch = CatastrophicOverfitting(drop=20)
    trainer = SimpleNamespace(sanity_checking=False, should_stop=False, callback_metrics={})
    for robust in (0.30, 0.45, 0.40):
        trainer.callback_metrics["val/robust_acc"] = torch.tensor(robust)
        watch.on_validation_end(trainer, None)
    assert not trainer.should_stop and watch.best == pytest.approx(45.0)
    trainer.callback_metrics["val/robust_acc"] = torch.tensor(0.05)  # FGSM collapse: 45 -> 5
    with pytest.warns(UserWarning, match="catastrophic overfitting"):
        watch.on_validation_end(trainer, None)
    assert trainer.should_stop and watch.triggered


def test_the_guards_best_travels_in_checkpoints(tmp_path):
    """#31: a resumed run measures its drop from the best before the kill, not from 0 (plain numbers in the file)."""
    from types import SimpleNamespace

    from lth_lightning.callbacks import CatastrophicOverfitting

    watch = CatastrophicOverfitting(drop=20)
    trainer = SimpleNamespace(sanity_checking=False, should_stop=False, callback_metrics={})
    trainer.callback_metrics["val/robust_acc"] = torch.tensor(0.45)
    watch.on_validation_end(trainer, None)
    torch.save({"callbacks": {"guard": watch.state_dict()}}, tmp_path / "ckpt.pt")
    resumed = CatastrophicOverfitting(drop=20)
    resumed.load_state_dict(torch.load(tmp_path / "ckpt.pt", weights_only=True)["callbacks"]["guard"])
    trainer.callback_metrics["val/robust_acc"] = torch.tensor(0.05)  # the collapse comes after the resume
    with pytest.warns(UserWarning, match="from a best of 45.0"):
        resumed.on_validation_end(trainer, None)
    assert trainer.should_stop


def test_gradients_masked_before_clipping(make_cfg, tmp_path):
    """With clipping on, pruned gradients are zeroed before the clip, so momentum never sees them."""
    cfg = make_cfg("trainer.limit_train_batches=3", "eval.val_robust_samples=0", "trainer.gradient_clip_val=0.5")
    module, dm = _pruned_module(cfg)
    build_trainer(cfg.trainer, tmp_path, 1, [MaskEnforcer()], False).fit(module, datamodule=dm)
    opt = module.trainer.optimizers[0]
    params = dict(module.model.named_parameters())
    for name, mask in module.masks.items():
        buf = opt.state[params[name]]["momentum_buffer"]
        assert torch.count_nonzero(buf[~mask]) == 0, name
        assert torch.count_nonzero(buf[mask]) > 0


def test_compiled_model_keeps_parameter_and_mask_names(make_cfg):
    cfg = make_cfg("model.compile=true")
    dm = build_datamodule(cfg.data)
    module = make_module(cfg, dm.info)
    names = [n for n, _ in module.model.named_parameters()]
    assert names and not any("_orig_mod" in n for n in names)
    assert set(prunable_weights(module.model)) <= set(names)


def _epochs(cfg, epochs):
    return dataclasses.replace(cfg, trainer=dataclasses.replace(cfg.trainer, max_epochs=epochs))


def test_eps_ramp_trains_at_the_ramped_eps_and_logs_it(make_cfg, tmp_path):
    """attack.eps_warmup_epochs=1 over 4 steps an epoch: the last step of epoch 1 attacks at 3/4 of ε, every
    step of epoch 2 at ε; train/eps is logged per epoch; the passes are those of unramped PGD."""
    import csv

    from lth_lightning.tasks.train import run_train

    cfg = make_cfg("attack=pgd", "attack.eps=0.2", "attack.steps=2", "attack.eps_warmup_epochs=1",
                   "trainer.max_epochs=2", "trainer.limit_train_batches=4", "data.batch_size=32")
    result = run_train(cfg)
    rows = [r for path in tmp_path.rglob("metrics.csv") for r in csv.DictReader(path.open()) if r.get("train/eps")]
    assert [round(float(r["train/eps"]), 6) for r in rows] == [0.15, 0.2]
    assert result.ledger.passes == 2 * 4 * 32 * 3  # epochs × steps × batch × (2 attack steps + 1 update)


def test_the_cuda_graph_is_refused_where_a_replay_would_be_wrong():
    """Checked on any machine: the rules that keep a CUDA-graphed step eager (tests/test_gpu.py runs the graph)."""
    from lth_lightning.modules.graphed import graph_blocker

    cuda = torch.device("cuda")  # a device object needs no GPU
    ok = {"device": cuda, "world_size": 1, "precision": "bf16-mixed", "loss": "ce", "compiled": False}
    assert graph_blocker(**ok) is None
    assert "accumulate over 2 batches" in graph_blocker(**ok, accumulate=2)  # replays overwrite the gradients
    assert "DDP" in graph_blocker(**{**ok, "world_size": 2})
    assert "fp16" in graph_blocker(**{**ok, "precision": "16-mixed"})
    assert "TRADES" in graph_blocker(**{**ok, "loss": "kl"})
    assert graph_blocker(**{**ok, "device": torch.device("cpu")}) == "not on a CUDA device"


def test_train_line_and_checkpoint_name_agree_with_the_best_epoch(make_cfg, tmp_path):
    """#31: task=train's line printed the last epoch's validation beside the best checkpoint's test, and the best
    checkpoint was named by Lightning's 0-based epoch while the log counts from 1."""
    from lth_lightning.results import EpochRecord, Ledger, StageResult
    from lth_lightning.tasks.train import format_result, run_train

    history = [EpochRecord(e, c, r, 100.0 * e, 1.0 * e) for e, c, r in ((1, 60.0, 30.0), (2, 70.0, 50.0),
                                                                        (3, 80.0, 40.0))]
    line = format_result(StageResult("train", 3, history, Ledger(300.0, 3.0), 0.0))
    assert "best epoch 2: val clean 70.00" in line and "val robust 50.00" in line and "80.00" not in line
    cfg = make_cfg("attack=pgd", "attack.eps=0.1", "attack.steps=1", "trainer.max_epochs=3",
                   "trainer.limit_train_batches=4", "eval.val_robust_samples=32")
    result = run_train(dataclasses.replace(cfg, run_dir=str(tmp_path / "run")))
    best = max(result.history, key=lambda h: h.val_robust)
    assert Path(result.best_checkpoint).name == f"best-epoch{best.epoch:03d}.ckpt"
