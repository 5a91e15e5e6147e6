"""Masks as buffers of a separate module, so the network's own state_dict stays that of a dense net.

A ``MaskSet`` maps a parameter name ("net.features.0.weight") to a 0/1 buffer of the same shape. It is
owned by the LightningModule (so masks travel in Lightning checkpoints) but not by the network: the
network's ``state_dict`` has no extra keys and loads into an unpruned model; pruned entries are zero.
BatchNorm channels whose incoming conv filters are all pruned get masks for their weight and bias too.
"""

from __future__ import annotations

import torch
from torch import nn

from lth_lightning.models import classifier_name


def overlap(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> dict[str, dict[str, float]]:
    """How two sets of keep-masks agree, per layer both hold with the same shape and ``overall``: IoU of the
    kept entries and normalised Hamming distance (the fraction of positions that differ). The one measure
    early-bird stopping, ``tickets compare`` and the benchmarks share."""
    rows: dict[str, dict[str, float]] = {}
    inter_all = union_all = diff_all = total_all = 0
    for name in [n for n in a if n in b and a[n].shape == b[n].shape]:
        ma, mb = a[name].bool(), b[name].bool()
        inter, union, diff = int((ma & mb).sum()), int((ma | mb).sum()), int((ma ^ mb).sum())
        rows[name] = {"iou": inter / union if union else 1.0, "hamming": diff / ma.numel()}
        inter_all, union_all, diff_all, total_all = inter_all + inter, union_all + union, diff_all + diff, \
            total_all + ma.numel()
    if rows:
        rows["overall"] = {"iou": inter_all / union_all if union_all else 1.0, "hamming": diff_all / total_all}
    return rows


def prunable_weights(model: nn.Module, include_classifier: bool = True) -> dict[str, nn.Parameter]:
    """Conv and linear weights (never biases or BatchNorm), optionally without the classifier."""
    skip = f"{classifier_name(model)}.weight" if not include_classifier else None
    return {
        f"{name}.weight": module.weight
        for name, module in model.named_modules()
        if isinstance(module, nn.Conv2d | nn.Linear) and f"{name}.weight" != skip
    }


def conv_bn_pairs(model: nn.Module) -> dict[str, str]:
    """BatchNorm modules fed directly by a conv (traced with torch.fx): ``{bn_name: conv_name}``.

    Tracing (rather than guessing from module order) keeps pre-activation nets right: there a BN after a
    residual addition is not fed by one conv, and masking it would be wrong.
    """
    try:
        graph = torch.fx.symbolic_trace(model).graph
    except Exception:  # an untraceable model simply gets no BN masks
        return {}
    modules = dict(model.named_modules())
    pairs = {}
    for node in graph.nodes:
        if node.op != "call_module" or not isinstance(modules.get(node.target), nn.BatchNorm2d):
            continue
        src = node.args[0]
        if getattr(src, "op", None) == "call_module" and isinstance(modules.get(src.target), nn.Conv2d):
            pairs[str(node.target)] = str(src.target)
    return pairs


def _key(name: str) -> str:
    return name.replace(".", "__")


class MaskSet(nn.Module):
    """0/1 masks over a model's parameters, stored as (persistent) buffers."""

    def __init__(self, masks: dict[str, torch.Tensor] | None = None) -> None:
        super().__init__()
        self.names: list[str] = []
        for name, mask in (masks or {}).items():
            self.set(name, mask)

    def set(self, name: str, mask: torch.Tensor) -> None:
        key = _key(name)
        if name not in self.names:
            self.names.append(name)
            self.register_buffer(key, mask.detach().to(torch.bool).clone())
        else:
            setattr(self, key, mask.detach().to(torch.bool).to(getattr(self, key).device).clone())

    def get(self, name: str) -> torch.Tensor:
        return getattr(self, _key(name))

    def items(self) -> list[tuple[str, torch.Tensor]]:
        return [(n, self.get(n)) for n in self.names]

    def __len__(self) -> int:
        return len(self.names)

    def as_dict(self) -> dict[str, torch.Tensor]:
        return {n: m.cpu().clone() for n, m in self.items()}

    @staticmethod
    def masks_in(state_dict: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
        """The masks a MaskSet stored under ``prefix`` in a (checkpoint) state_dict, by parameter name."""
        return {k[len(prefix):].replace("__", "."): v for k, v in state_dict.items() if k.startswith(prefix)}

    def load_masks(self, masks: dict[str, torch.Tensor]) -> None:
        """Replace every mask (e.g. before loading a checkpoint that holds them)."""
        for name in list(self.names):
            delattr(self, _key(name))
        self.names = []
        for name, mask in masks.items():
            self.set(name, mask)

    @torch.no_grad()
    def apply_(self, model: nn.Module) -> None:
        """Zero every masked entry of ``model`` in place (weights and, for BN, weight and bias)."""
        params = dict(model.named_parameters())
        for name, mask in self.items():
            params[name].mul_(mask.to(params[name].dtype))

    @torch.no_grad()
    def mask_grads_(self, model: nn.Module) -> None:
        """Zero gradients of pruned entries, so momentum buffers never accumulate for them."""
        params = dict(model.named_parameters())
        for name, mask in self.items():
            grad = params[name].grad
            if grad is not None:
                grad.mul_(mask.to(grad.dtype))

    def sparsity(self, weights_only: bool = True) -> dict[str, float]:
        """Per-layer fraction of pruned entries, plus the overall fraction under ``"overall"``."""
        stats, pruned, total = {}, 0, 0
        for name, mask in self.items():
            if weights_only and name in self.bn_names:
                continue
            zeros = int((~mask).sum())
            stats[name] = zeros / mask.numel()
            pruned, total = pruned + zeros, total + mask.numel()
        stats["overall"] = pruned / total if total else 0.0
        return stats

    @property
    def bn_names(self) -> set[str]:
        """BatchNorm masks are the 1-D ones (conv and linear weights are 4-D and 2-D)."""
        return {n for n, m in self.items() if m.dim() == 1}

    def add_bn_masks(self, model: nn.Module) -> int:
        """Mask BN channels whose incoming conv filters are entirely pruned; returns channels masked."""
        masked = 0
        for bn_name, conv_name in conv_bn_pairs(model).items():
            conv_key = f"{conv_name}.weight"
            if conv_key not in self.names:
                continue
            alive = self.get(conv_key).flatten(1).any(dim=1)
            masked += int((~alive).sum())
            for part in ("weight", "bias"):
                self.set(f"{bn_name}.{part}", alive)
        return masked
