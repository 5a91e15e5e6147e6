"""The classification LightningModule: natural, FGSM, PGD or TRADES training, robust evaluation.

It also keeps the *cost ledger* later pipelines compare arms by: forward+backward passes per example
spent on training (attack steps included) and wall-clock training seconds (validation excluded), plus
a per-epoch history of clean/robust validation accuracy. Ledger and history live in checkpoints, so a
resumed run keeps counting where it stopped.
"""

from __future__ import annotations

import math
import time
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from lth_lightning.attacks import attack_passes, build_attack, build_eval_attack, trades_loss
from lth_lightning.config import AttackConfig, EvalConfig, OptimConfig
from lth_lightning.modules.schedule import lr_factor
from lth_lightning.pruning.masks import MaskSet


class Classifier(L.LightningModule):
    """One module for dense, pruned (``masks``) and adversarially trained (``attack``) classifiers.

    The training attack crafts inputs inside ``training_step``; evaluation runs PGD on validation every
    epoch and PGD with restarts (plus optional AutoAttack) on test. Masks are enforced by
    ``MaskEnforcer``; the module only owns them, so they are saved in and restored from checkpoints.
    """

    def __init__(self, model: nn.Module, num_classes: int, optim: OptimConfig, attack: AttackConfig,
                 evaluation: EvalConfig, masks: MaskSet | None = None,
                 meta: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.model = model
        self.masks = masks if masks is not None else MaskSet()
        self.optim_cfg, self.attack_cfg, self.eval_cfg = optim, attack, evaluation
        self.train_attack = build_attack(attack)
        self.eval_attack = build_eval_attack(evaluation, attack.eps)
        self.num_classes = num_classes
        self.meta = meta or {}  # model/data config, saved in checkpoints so eval can rebuild the net
        acc = lambda: MulticlassAccuracy(num_classes, average="micro")  # noqa: E731
        self.train_acc, self.val_clean, self.val_robust = acc(), acc(), acc()
        self.test_clean, self.test_robust, self.test_aa = acc(), acc(), acc()
        self.train_loss = MeanMetric()  # synced across ranks once per epoch, not every step
        self.ledger: dict[str, float] = {"passes": 0.0, "train_seconds": 0.0}
        self.history: list[dict[str, float]] = []
        self._epoch_t0: float | None = None
        self.trained_sparsity = 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    # -- training -------------------------------------------------------------------------------
    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        attack = self.train_attack
        if attack is not None and attack.loss == "kl":
            x_adv = attack(self.model, x, y)
            loss, logits = trades_loss(self.model, x, x_adv, y, self.attack_cfg.beta)
        else:
            inputs = attack(self.model, x, y) if attack is not None else x
            logits = self.model(inputs)
            loss = F.cross_entropy(logits.float(), y)
        self.ledger["passes"] += attack_passes(attack) * len(x) * self.trainer.world_size
        self.train_acc(logits.detach(), y)
        self.train_loss(loss.detach())
        self.log("train/loss_step", loss.detach(), on_step=True, on_epoch=False, prog_bar=True)
        self.log("train/loss", self.train_loss, on_step=False, on_epoch=True)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def on_train_start(self) -> None:
        # the sparsity this run trains at (an end-of-fit prune changes the masks afterwards)
        sparsity = self.masks.sparsity()
        self.trained_sparsity = sparsity["overall"]
        if self.logger is not None and len(self.masks):
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
        self.ledger["train_seconds"] += elapsed
        self.log("time/epoch_train_s", elapsed, sync_dist=False, rank_zero_only=True)

    def on_validation_epoch_start(self) -> None:
        if not self.trainer.sanity_checking:
            self._stop_epoch_clock()

    def on_train_epoch_end(self) -> None:
        self._stop_epoch_clock()
        self.log("cost/passes", self.ledger["passes"], rank_zero_only=True)
        self.log("cost/train_seconds", self.ledger["train_seconds"], rank_zero_only=True)

    # -- evaluation -----------------------------------------------------------------------------
    def _robust_batches(self, batch_size: int) -> float:
        n = self.eval_cfg.val_robust_samples
        if n is None:
            return math.inf
        return math.ceil(n / (batch_size * self.trainer.world_size))

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        self.val_clean(self.model(x), y)
        if batch_idx < self._robust_batches(len(x)):
            self.val_robust(self.model(self.eval_attack(self.model, x, y)), y)

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
        self.history.append({
            "epoch": self.current_epoch + 1,
            "val_clean": float(clean) * 100,
            "val_robust": None if robust.isnan() else float(robust) * 100,  # None: not measured
            "passes": self.ledger["passes"],
            "train_seconds": self.ledger["train_seconds"],
        })

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        self.test_clean(self.model(x), y)
        correct = torch.ones_like(y, dtype=torch.bool)
        for _ in range(self.eval_cfg.test_restarts):  # robust only if every restart fails
            correct &= self.model(self.eval_attack(self.model, x, y)).argmax(1) == y
        self.test_robust.update(correct.long(), torch.ones_like(y))
        seen = batch_idx * len(x) * self.trainer.world_size
        if self.eval_cfg.autoattack != "off" and seen < self.eval_cfg.autoattack_samples:
            from lth_lightning.attacks.autoattack import autoattack

            x_aa = autoattack(self.model, x, y, self.eval_attack.eps, self.eval_cfg, self.num_classes)
            self.test_aa(self.model(x_aa), y)

    def on_test_epoch_end(self) -> None:
        self.log("test/clean_acc", self.test_clean.compute())
        self.log("test/robust_acc", self.test_robust.compute())
        self.test_clean.reset()
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
        per_epoch = total / max(1, self.trainer.max_epochs or 1)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: lr_factor(step, total, per_epoch, c))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    # -- checkpoints: masks, ledger and history travel with the weights ---------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["lth_meta"] = self.meta
        checkpoint["lth_ledger"] = dict(self.ledger)
        checkpoint["lth_history"] = list(self.history)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # buffers must exist before Lightning loads the state_dict
        self.masks.load_masks(MaskSet.masks_in(checkpoint["state_dict"], "masks."))
        self.ledger = dict(checkpoint.get("lth_ledger", self.ledger))
        self.history = list(checkpoint.get("lth_history", self.history))
