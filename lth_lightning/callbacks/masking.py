"""Keep pruned weights exactly zero after every optimizer step."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch


class MaskEnforcer(L.Callback):
    """Zeroes pruned weights after every optimizer step (an optimizer step post-hook).

    The post-hook fires on every real step whatever drives it (AMP's GradScaler skipping or not,
    accumulation, manual optimisation), so weight decay and momentum can never regrow a pruned weight:
    that alone makes pruned weights exactly zero. Gradients are masked too, but only when gradient
    clipping is on, and before it (``on_before_optimizer_step``), so the clipping norm is the sparse
    net's; otherwise it would be a second pass over every weight each step for no change in the
    weights. Masks are applied once at train start too, so a resumed run is sparse from its first step.
    """

    def __init__(self, masks: Any = None, net: str | None = None) -> None:
        """``masks``/``net``: a ``MaskSet`` and the network it masks (a submodule name, None: the module itself), for
        a module of your own (``LotteryTicket`` passes its own); by default this package's module's ``masks`` and
        ``model``."""
        self.masks, self.net = masks, net
        self._handles: list[Any] = []
        self._params: list[torch.Tensor] = []
        self._masks: list[torch.Tensor] = []
        self._mask_grads = False

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        masks = self.masks if self.masks is not None else pl_module.masks  # type: ignore[attr-defined]
        if not len(masks):
            return
        owner = (pl_module.get_submodule(self.net) if self.net else pl_module) if self.masks is not None else \
            pl_module.model  # type: ignore[attr-defined]
        params = dict(owner.named_parameters())
        self._params = [params[name] for name in masks.names]
        self._masks = [m.to(device=p.device, dtype=p.dtype) for (_, m), p in zip(masks.items(), self._params,
                                                                                   strict=True)]
        self._apply_weights()
        self._mask_grads = bool(trainer.gradient_clip_val)
        for opt in trainer.optimizers:
            self._handles.append(opt.register_step_post_hook(lambda *_: self._apply_weights()))

    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer) -> None:
        if self._mask_grads and self._params:
            self._apply_grads()

    @torch.no_grad()
    def _apply_weights(self) -> None:
        torch._foreach_mul_(self._params, self._masks)

    @torch.no_grad()
    def _apply_grads(self) -> None:
        pairs = [(p.grad, m) for p, m in zip(self._params, self._masks, strict=True) if p.grad is not None]
        if pairs:
            torch._foreach_mul_([g for g, _ in pairs], [m for _, m in pairs])

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles, self._params, self._masks = [], [], []
