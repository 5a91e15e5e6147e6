"""The classification LightningModule: natural, FGSM, PGD or TRADES training, robust evaluation.

It also keeps the *cost ledger* later pipelines compare arms by: forward+backward passes summed over examples
spent on training (attack steps included) and wall-clock training seconds (validation excluded), plus
a per-epoch history of clean/robust validation accuracy. Ledger and history live in checkpoints, so a
resumed run keeps counting where it stopped.
"""

from __future__ import annotations

import dataclasses
import functools
import random
import time
from dataclasses import asdict
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from lth_lightning.attacks import (
    Attack,
    adversarial_batch,
    attack_passes,
    build_attack,
    build_eval_attack,
    threat_model,
)
from lth_lightning.config import AttackConfig, EvalConfig, ModelConfig, OptimConfig
from lth_lightning.data import DataInfo
from lth_lightning.models import build_model
from lth_lightning.modules.graphed import GraphedStep, graph_blocker
from lth_lightning.modules.schedule import eps_factor, lr_factor
from lth_lightning.pruning.channels import compact, macs
from lth_lightning.pruning.masks import MaskSet, prunable_weights
from lth_lightning.results import EpochRecord, Ledger, ThreatModel


class Classifier(L.LightningModule):
    """One module for dense, pruned (``masks``) and adversarially trained (``attack``) classifiers.

    The training attack crafts inputs inside ``training_step``; evaluation runs PGD on validation every
    epoch and PGD with restarts (plus optional AutoAttack) on test. Masks are enforced by
    ``MaskEnforcer``; the module only owns them, so they are saved in and restored from checkpoints.
    """

    def __init__(self, model: dict[str, Any], data: dict[str, Any], optim: dict[str, Any], attack: dict[str, Any],
                 evaluation: dict[str, Any], dataset: str = "", init_seed: int = 0,
                 channels: dict[str, list[int]] | None = None) -> None:
        """Plain-dict hyperparameters (saved in checkpoints, so ``load_from_checkpoint`` rebuilds the net and
        the file stays ``weights_only``-loadable). The network is θ0 of ``init_seed``; masks start empty.
        ``channels`` (a channel ticket's kept indices per group) compacts it into the smaller dense net."""
        super().__init__()
        self.save_hyperparameters()
        self.model_cfg = ModelConfig(**model)
        self.optim_cfg, self.attack_cfg = OptimConfig(**optim), AttackConfig(**attack)
        self.eval_cfg = EvalConfig(**evaluation)
        self.info = DataInfo(**data)
        self.model: nn.Module = build_model(self.model_cfg, self.info, seed=init_seed)
        full = _weights(self.model)
        if channels:
            compact(self.model, self.info.shape, {k: torch.tensor(v) for k, v in channels.items()})
        self.compact_sparsity = 1.0 - _weights(self.model) / full  # 0 unless compacted
        self.masks = MaskSet()
        self.train_attack = build_attack(self.attack_cfg)
        self.eval_attack = build_eval_attack(self.eval_cfg, self.attack_cfg.eps)
        self.robust_eval = self.eval_cfg.robust_for(self.attack_cfg)
        self.num_classes = data["num_classes"]
        acc = lambda: MulticlassAccuracy(self.num_classes, average="micro")  # noqa: E731
        self.train_acc, self.val_clean, self.val_robust = acc(), acc(), acc()
        self.test_clean, self.test_robust, self.test_aa = acc(), acc(), acc()
        self.train_acc.validate_args = False  # its value checks read the GPU every step (a host sync)
        self.train_loss = MeanMetric(nan_strategy="disable")  # synced across ranks once per epoch, not every step
        self.ledger = Ledger()
        self.history: list[EpochRecord] = []
        self._epoch_t0: float | None = None
        self._quota_seen = 0  # robust / AutoAttack samples evaluated so far this epoch (this rank)
        self._val_predicted = torch.zeros(0)  # clean validation predictions per class this epoch (collapse)
        self.trained_sparsity = 0.0
        self.cuda_graph = False  # trainer.cuda_graph: capture the train step where ``graph_blocker`` allows
        self._eps_scale: torch.Tensor | None = None  # the ε ramp's multiplier (attack.eps_warmup_epochs)
        self._steps_per_epoch = 1.0  # optimizer steps per epoch, counted once per fit (configure_optimizers)
        self.train_eps = self.attack_cfg.eps  # the training attack's ε at the last step (logged per epoch)
        self._graphed: GraphedStep | None = None
        self._after: Attack | None = None  # attack.switch_at: the PGD the single-step attack hands over to

    @functools.cached_property
    def macs(self) -> int:
        """MACs of one forward pass of one example (counted once, when a stage records its cost)."""
        return macs(self.model, self.info.shape)

    def prepare(self) -> None:
        """Speed levers, applied after weights and masks are set: channels_last, in-place compile (so
        parameter and mask names stay unprefixed)."""
        _ = self.macs  # counted on the eager net, before any compile
        if self.model_cfg.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        if self.model_cfg.compile:
            self.model.compile()

    @property
    def threat(self) -> ThreatModel | None:
        """The threat model of every robust number this module reports (None: robust evaluation off)."""
        return threat_model(self.eval_cfg, self.attack_cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    # -- training -------------------------------------------------------------------------------
    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        self._ramp_eps()
        self._switch_attack()
        loss, logits = self._graphed(x, y) if self._graphed is not None else self._loss_and_logits(x, y)
        self.ledger.passes += attack_passes(self.train_attack) * len(x) * self.trainer.world_size
        self.train_acc.update(logits.detach(), y)  # update, not forward: a per-batch value would read the
        self.train_loss.update(loss.detach())      # GPU (a host sync every step); epoch values are logged
        self.log("train/loss_step", loss.detach(), on_step=True, on_epoch=False, prog_bar=True)
        self.log("train/loss", self.train_loss, on_step=False, on_epoch=True)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def _loss_and_logits(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The training loss on this batch (the attack crafts its inputs first) and the logits it scored: the same
        ``adversarial_batch`` a user's own module calls."""
        loss, logits, _ = adversarial_batch(self.model, x, y, self.train_attack, self.attack_cfg.beta)
        return loss, logits

    def _ramp_eps(self) -> None:
        """The training ε of this step (``attack.eps_warmup_epochs``): the attack's scale tensor, set in place."""
        if self._eps_scale is None:
            return
        factor = eps_factor(self.trainer.global_step, self._steps_per_epoch, self.attack_cfg.eps_warmup_epochs)
        self._eps_scale.fill_(factor)
        self.train_eps = self.attack_cfg.eps * factor

    def _switch_attack(self) -> None:
        """``attack.switch_at``: from this step on, PGD instead of the single-step attack (a captured CUDA graph of
        the old step is dropped and the new one captured at its first call). A resumed fit switches at the same step."""
        if self._after is None or self.train_attack is self._after:
            return
        total = self._steps_per_epoch * (self.trainer.max_epochs or 1)
        if self.trainer.global_step >= round(self.attack_cfg.switch_at * total):
            self.train_attack = self._after
            if self._graphed is not None:
                params = [p for p in self.model.parameters() if p.requires_grad]
                self._graphed = GraphedStep(self._loss_and_logits, params)

    def on_fit_start(self) -> None:
        """Put the ε ramp's scale on the device; capture the train step as a CUDA graph where it can be
        (``trainer.cuda_graph``), or say why not."""
        base = build_attack(self.attack_cfg)
        ramped = base is not None and self.attack_cfg.eps_warmup_epochs > 0
        self._eps_scale = torch.zeros((), device=self.device) if ramped else None
        self.train_attack = dataclasses.replace(base, scale=self._eps_scale) if ramped else base  # type: ignore
        after = build_attack(self.attack_cfg.after_switch()) if self.attack_cfg.switch_at < 1 else None
        self._after = dataclasses.replace(after, scale=self._eps_scale) if after is not None and ramped else after
        self._graphed = None
        if not self.cuda_graph:
            return
        why = graph_blocker(device=self.device, world_size=self.trainer.world_size,
                            precision=str(self.trainer.precision), compiled=self.model_cfg.compile,
                            accumulate=self.trainer.accumulate_grad_batches,
                            loss=self.train_attack.loss if self.train_attack is not None else "ce")
        if why is None:
            self._graphed = GraphedStep(self._loss_and_logits, [p for p in self.model.parameters() if p.requires_grad])
        elif self.device.type == "cuda":
            rank_zero_info(f"trainer.cuda_graph: the train step runs eagerly ({why})")

    def backward(self, loss: torch.Tensor, *args: Any, **kwargs: Any) -> None:
        if self._graphed is None:  # a graphed step has already written the gradients
            super().backward(loss, *args, **kwargs)

    def optimizer_zero_grad(self, epoch: int, batch_idx: int, optimizer: torch.optim.Optimizer) -> None:
        if self._graphed is None:  # a replay overwrites the graph's gradient buffers; nothing accumulates
            super().optimizer_zero_grad(epoch, batch_idx, optimizer)

    @property
    def weight_sparsity(self) -> float:
        """Fraction of the full net's conv and linear weights that are zero: masked, or cut by compaction."""
        return self.masks.sparsity()["overall"] if len(self.masks) else self.compact_sparsity

    def on_train_start(self) -> None:
        # the sparsity this run trains at (an end-of-fit prune changes the masks afterwards)
        self.trained_sparsity = self.weight_sparsity
        if self.logger is not None and len(self.masks):
            sparsity = self.masks.sparsity()
            self.logger.log_metrics({f"sparsity/{name}": value for name, value in sparsity.items()}, step=0)

    def on_train_epoch_start(self) -> None:
        self._epoch_t0 = time.perf_counter()

    def _stop_epoch_clock(self) -> None:
        """Add the epoch's training time to the ledger (called when validation starts or epoch ends)."""
        if self._epoch_t0 is None:
            return
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - self._epoch_t0
        self._epoch_t0 = None
        self.ledger.train_seconds += elapsed
        self.log("time/epoch_train_s", elapsed, sync_dist=False, rank_zero_only=True)

    def on_train_epoch_end(self) -> None:
        self._stop_epoch_clock()
        self.log("cost/passes", self.ledger.passes, rank_zero_only=True)
        if self.train_attack is not None:
            self.log("train/eps", self.train_eps, rank_zero_only=True)
        self.log("cost/train_seconds", self.ledger.train_seconds, rank_zero_only=True)

    # -- evaluation -----------------------------------------------------------------------------
    def _take_quota(self, x: torch.Tensor, y: torch.Tensor, total: int | None) -> tuple[torch.Tensor, torch.Tensor]:
        """The part of this batch still inside this rank's share of ``total`` samples (None: all)."""
        if total is None:
            return x, y
        world, rank = self.trainer.world_size, self.trainer.global_rank
        share = total // world + (1 if rank < total % world else 0)
        take = max(0, min(len(x), share - self._quota_seen))
        self._quota_seen += take
        return x[:take], y[:take]

    def on_validation_epoch_start(self) -> None:
        if not self.trainer.sanity_checking:
            self._stop_epoch_clock()
        self._quota_seen = 0
        self._val_predicted = torch.zeros(self.num_classes, dtype=torch.long, device=self.device)

    def full_precision(self) -> torch.autocast:
        """Evaluation runs in fp32 outside autocast whatever ``trainer.precision`` is: attacks (AutoAttack's
        numpy calls above all) and accuracies are those of the fp32 weights, as a 32-true evaluation sees."""
        return torch.autocast(self.device.type, enabled=False)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        with self.full_precision():
            self._validate(*batch)

    def _validate(self, x: torch.Tensor, y: torch.Tensor) -> None:
        logits = self.model(x)
        self.val_clean(logits, y)
        self._val_predicted += torch.bincount(logits.argmax(1), minlength=self.num_classes)
        if self.robust_eval:
            xr, yr = self._take_quota(x, y, self.eval_cfg.val_robust_samples)
            if len(xr):
                self.val_robust(self.model(self.eval_attack(self.model, xr, yr)), yr)

    def on_validation_epoch_end(self) -> None:
        clean = self.val_clean.compute()
        robust = self.val_robust.compute() if self.val_robust.update_count else torch.tensor(float("nan"))
        self.val_clean.reset()
        self.val_robust.reset()
        self.log("val/clean_acc", clean)
        if not robust.isnan():
            self.log("val/robust_acc", robust)
        if self.trainer.sanity_checking:
            return
        predicted = self.trainer.strategy.reduce(self._val_predicted, reduce_op="sum")  # every rank's inputs
        self.history.append(EpochRecord(self.current_epoch + 1, float(clean) * 100,
                                        None if robust.isnan() else float(robust) * 100,  # None: not measured
                                        self.ledger.passes, self.ledger.train_seconds,
                                        int((predicted > 0).sum())))
        if self.trainer.state.fn == "fit":  # training goes on after this check (eval.checks_per_epoch): its clock too
            self._epoch_t0 = time.perf_counter()

    def on_test_epoch_start(self) -> None:
        self._quota_seen = 0

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        with self.full_precision():
            self._test(*batch)

    def _test(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.test_clean(self.model(x), y)
        if not self.robust_eval:
            return
        correct = torch.ones_like(y, dtype=torch.bool)
        for _ in range(self.eval_cfg.test_restarts):  # robust only if every restart fails
            correct &= self.model(self.eval_attack(self.model, x, y)).argmax(1) == y
        self.test_robust.update(correct.long(), torch.ones_like(y))
        if self.eval_cfg.autoattack != "off":
            xa, ya = self._take_quota(x, y, self.eval_cfg.autoattack_samples)
            if len(xa):
                from lth_lightning.attacks.autoattack import autoattack

                x_aa = autoattack(self.model, xa, ya, self.eval_attack.eps, self.eval_cfg, self.num_classes)
                self.test_aa(self.model(x_aa), ya)

    def on_test_epoch_end(self) -> None:
        self.log("test/clean_acc", self.test_clean.compute())
        self.test_clean.reset()
        if self.test_robust.update_count:
            self.log("test/robust_acc", self.test_robust.compute())
            self.test_robust.reset()
        if self.test_aa.update_count:
            self.log("test/autoattack_acc", self.test_aa.compute())
            self.test_aa.reset()

    # -- optimisation ---------------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, Any]:
        c = self.optim_cfg
        params = self.model.parameters()
        if c.name == "sgd":
            opt = torch.optim.SGD(params, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay,
                                  nesterov=c.nesterov)
        else:
            opt = torch.optim.Adam(params, lr=c.lr, weight_decay=c.weight_decay)
        total = int(self.trainer.estimated_stepping_batches)
        per_epoch = self._steps_per_epoch = total / max(1, self.trainer.max_epochs or 1)  # the ε ramp's unit too
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: lr_factor(step, total, per_epoch, c))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    # -- checkpoints: masks, ledger, history and RNG state travel with the weights ----------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["lth_ledger"] = asdict(self.ledger)
        checkpoint["lth_history"] = [asdict(h) for h in self.history]
        checkpoint["lth_rng"] = rng_state()  # a resumed stage continues the uninterrupted run's stream

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # buffers must exist before Lightning loads the state_dict
        self.masks.load_masks(MaskSet.masks_in(checkpoint["state_dict"], "masks."))
        self.ledger = Ledger(**checkpoint.get("lth_ledger", {}))
        self.history = [EpochRecord(**h) for h in checkpoint.get("lth_history", [])]
        if "lth_rng" in checkpoint:
            set_rng_state(checkpoint["lth_rng"])


def rng_state() -> dict[str, Any]:
    """Every RNG a stage draws from, as plain tensors and ints (``weights_only``-loadable)."""
    _, keys, pos, has_gauss, gauss = np.random.get_state()
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": torch.tensor(random.getstate()[1]),
                             "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": pos,
                                       "has_gauss": has_gauss, "gauss": gauss}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate((3, tuple(int(v) for v in state["python"]), None))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _weights(model: nn.Module) -> int:
    """Conv and linear weights: what sparsity is a fraction of, masked or compacted."""
    return sum(w.numel() for w in prunable_weights(model).values())
