"""A lottery ticket in anyone's LightningModule, with one callback: find it, reset it, train it.

``LotteryTicket`` needs nothing of this package's module: it prunes the module's network (the whole module, or the
submodule named ``net``) and keeps its masks itself. Give it to every ``Trainer`` that trains that network:

- the first ``levels`` fits *find*: the dense net trains, and at the end of each fit the callback prunes (one-shot to
  ``ratio``, or IMP: ``ratio`` of what is left per level), then resets the survivors: θ0 (``init``, the boosting
  ticket), θk (``rewind``, after ``rewind_step`` optimizer steps of the first fit) or a fresh init (``reinit``, the
  control);
- every fit after that *trains the ticket*: pruned weights are zero after every optimizer step (a step post-hook);
- ``structure="channel"`` cuts whole channels (torch-pruning traces which go together; give ``input_shape``) and
  compacts the network in place into the smaller dense net, so every later step is cheaper.

Masks, θ0/θk, the levels done and the kept channels are the callback's state: plain tensors in every checkpoint, so a
resumed fit (``ckpt_path=...``) continues with the same ticket, and ``torch.load(weights_only=True)`` reads it. A
compacted channel ticket's checkpoint holds the smaller net, which Lightning loads before any callback sees the file:
call ``ticket.restore(ckpt_path, module)`` first, and it compacts the new module's net to match.
``save(path)`` writes a ticket file ``lth-lightning tickets show`` reads.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import nn

from lth_lightning.callbacks.masking import MaskEnforcer
from lth_lightning.callbacks.pruning import PruneCallback
from lth_lightning.config import PruneConfig
from lth_lightning.pruning.channels import compact
from lth_lightning.pruning.masks import MaskSet
from lth_lightning.pruning.reset import snapshot
from lth_lightning.pruning.tickets import Ticket, save_ticket


class LotteryTicket(L.Callback):
    """Find and train a lottery ticket in any LightningModule (module docstring)."""

    def __init__(self, ratio: float = 0.8, *, criterion: str = "layer_normalized", reset: str = "init",
                 rewind_step: int = 0, levels: int = 1, structure: str = "unstructured",
                 include_classifier: bool = True, net: str | None = None,
                 input_shape: tuple[int, ...] | None = None, channel_multiple: int = 1, seed: int = 0) -> None:
        if structure == "channel" and input_shape is None:
            raise ValueError("structure='channel' traces the network: give input_shape=(C, H, W) of one example")
        rate = ratio if levels == 1 else 1.0 - (1.0 - ratio) ** (1.0 / levels)  # IMP: the same cut per level
        self.cfg = PruneConfig(name="oneshot" if levels == 1 else "imp", structure=structure, criterion=criterion,
                               ratio=ratio, rate=rate if levels > 1 else 0.2, levels=levels, reset=reset,
                               include_classifier=include_classifier, channel_multiple=channel_multiple,
                               reinit_seed=seed, seed=seed)
        self.net_name, self.input_shape, self.rewind_step = net, input_shape, rewind_step
        self.masks = MaskSet()
        self.levels_done = 0
        self.theta0: dict[str, torch.Tensor] | None = None
        self.theta_k: dict[str, torch.Tensor] | None = None
        self.kept: dict[str, torch.Tensor] = {}
        self._enforcer: MaskEnforcer | None = None
        self.found: Ticket | None = None  # the last prune's ticket (``save``)

    # -- which network ----------------------------------------------------------------------------------------------
    def network(self, pl_module: L.LightningModule) -> nn.Module:
        return pl_module.get_submodule(self.net_name) if self.net_name else pl_module

    @property
    def finding(self) -> bool:
        """Whether the next fit still ends in a prune (else it trains the ticket)."""
        return self.levels_done < self.cfg.levels

    # -- finding: θ0, θk, the prune at the end of a fit ---------------------------------------------------------------
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.theta0 is None and trainer.global_step == 0:
            self.theta0 = snapshot(self.network(pl_module))
            if self.cfg.reset == "rewind" and self.rewind_step == 0:
                self.theta_k = self.theta0

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        if self.cfg.reset == "rewind" and self.theta_k is None and trainer.global_step == self.rewind_step:
            self.theta_k = snapshot(self.network(pl_module))

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.finding:
            return
        net = self.network(pl_module)
        self.levels_done += 1
        target = self.cfg.target_sparsity(self.levels_done)
        state = self.theta_k if self.cfg.reset == "rewind" else self.theta0
        if self.cfg.reset == "rewind" and state is None:
            raise RuntimeError(f"reset='rewind' to step {self.rewind_step}, but the first fit ended before it")
        pruner = PruneCallback(self.cfg, target, lambda: state, lambda: _fresh(net, self.cfg.reinit_seed))
        pruner.prune(net, self.masks, self.input_shape or ())
        if trainer.world_size > 1:  # every rank holds rank 0's ticket
            synced = trainer.strategy.broadcast(self.masks.as_dict(), src=0)
            self.masks.load_masks({k: v.to(pl_module.device) for k, v in synced.items()})
            self.masks.apply_(net)
        self.kept = pruner.kept
        self.found = self._ticket(net, pruner.achieved)  # the mask and the reset weights, as a ticket file holds them
        if self.cfg.structure == "channel":
            compact(net, self.input_shape, self.kept)  # type: ignore[arg-type]
            self.masks = MaskSet()  # the compact net is dense: nothing left to mask

    # -- training the ticket: masks enforced after every step ---------------------------------------------------------
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if len(self.masks):
            self._enforcer = MaskEnforcer(self.masks, self.net_name)
            self._enforcer.on_train_start(trainer, pl_module)

    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: Any) -> None:
        if self._enforcer is not None:
            self._enforcer.on_before_optimizer_step(trainer, pl_module, optimizer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._enforcer is not None:
            self._enforcer.on_train_end(trainer, pl_module)
            self._enforcer = None

    # -- checkpoints and ticket files ---------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Plain tensors and numbers only: a checkpoint holding it loads with ``weights_only=True``."""
        found = None if self.found is None else {"masks": self.found.masks, "weights": self.found.weights,
                                                  "provenance": self.found.provenance}
        return {"masks": self.masks.as_dict(), "levels_done": self.levels_done, "theta0": self.theta0,
                "theta_k": self.theta_k, "kept": self.kept, "found": found}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.masks = MaskSet(state_dict["masks"])
        self.levels_done = int(state_dict["levels_done"])
        self.theta0, self.theta_k, self.kept = state_dict["theta0"], state_dict["theta_k"], state_dict["kept"]
        found = state_dict.get("found")
        self.found = None if found is None else Ticket(found["masks"], found["weights"], found["provenance"],
                                                       dict(self.kept))

    def restore(self, ckpt_path: str | Path, pl_module: L.LightningModule) -> None:
        """This callback's state from a checkpoint, and the module's net compacted as the ticket was: before
        ``fit(ckpt_path=...)`` of a channel ticket (an unstructured one needs nothing of the kind)."""
        checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        states = [v for k, v in checkpoint.get("callbacks", {}).items() if k.startswith(type(self).__name__)]
        if len(states) != 1:
            raise ValueError(f"{ckpt_path} holds {len(states)} LotteryTicket states; restore needs exactly one")
        self.load_state_dict(states[0])
        if self.kept:
            compact(self.network(pl_module), self.input_shape, self.kept)  # type: ignore[arg-type]

    def _ticket(self, net: nn.Module, achieved: dict[str, float]) -> Ticket:
        meta = {"found_by": "LotteryTicket", "criterion": self.cfg.criterion, "reset": self.cfg.reset,
                "structure": self.cfg.structure, "levels": self.levels_done, **achieved,
                "sparsity": self.cfg.target_sparsity(self.levels_done)}
        return Ticket(self.masks.as_dict(), snapshot(net), meta, dict(self.kept))

    def save(self, path: str | Path) -> Path:
        """The ticket file of the last prune: masks, the reset weights of the full net, kept channels."""
        if self.found is None:
            raise RuntimeError("no ticket yet: a fit with this callback prunes at its end")
        return save_ticket(Path(path), self.found)


def _fresh(net: nn.Module, seed: int) -> nn.Module:
    """The same architecture at a fresh default init (``reset="reinit"``): each layer's own ``reset_parameters``. A
    parameter no module of it resets (a bare ``nn.Parameter`` of your own) keeps the value it had: give its module a
    ``reset_parameters`` for the control to redraw it."""
    fresh = copy.deepcopy(net)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for module in fresh.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
    return fresh
