"""Pruning criteria: which surviving weights to remove to reach a target sparsity.

Each criterion turns weights into scores; the lowest-scoring surviving weights are pruned until exactly
``round(target · total)`` prunable weights are zero (already-pruned weights score -inf, so masks only
ever shrink). ``layer_normalized`` is the boosting-ticket paper's criterion: |w| divided by the layer's
mean |w| (over surviving weights), then one global threshold -- so layers with small weights are not
wiped out the way plain global magnitude pruning would.
"""

from __future__ import annotations

import torch

from lth_lightning.config import CRITERIA


def _scores(weights: dict[str, torch.Tensor], masks: dict[str, torch.Tensor], criterion: str,
            seed: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for name, w in weights.items():
        magnitude = w.detach().abs().float().cpu()
        alive = masks[name].cpu()
        if criterion == "random":
            score = torch.rand(w.shape, generator=gen)
        elif criterion == "layer_normalized":
            score = magnitude / magnitude[alive].mean().clamp_min(1e-12)
        else:
            score = magnitude
        out[name] = score.masked_fill(~alive, float("-inf"))
    return out


def _prune_lowest(scores: torch.Tensor, n_pruned: int) -> torch.Tensor:
    """Keep-mask with exactly the ``n_pruned`` lowest scores removed (stable order breaks ties)."""
    keep = torch.ones(scores.numel(), dtype=torch.bool)
    if n_pruned > 0:
        order = torch.sort(scores.flatten(), stable=True).indices
        keep[order[:n_pruned]] = False
    return keep.view(scores.shape)


def compute_masks(weights: dict[str, torch.Tensor], target_sparsity: float, criterion: str,
                  masks: dict[str, torch.Tensor] | None = None, seed: int = 0) -> dict[str, torch.Tensor]:
    """New keep-masks at ``target_sparsity`` (fraction of all given weights pruned).

    ``layerwise`` prunes each layer to the target on its own; the others rank all layers together.
    """
    if criterion not in CRITERIA:
        raise ValueError(f"unknown pruning criterion {criterion!r}")
    if not 0.0 <= target_sparsity < 1.0:
        raise ValueError(f"target sparsity {target_sparsity} must be in [0, 1)")
    masks = masks or {n: torch.ones_like(w, dtype=torch.bool) for n, w in weights.items()}
    scores = _scores(weights, masks, criterion, seed)
    if criterion == "layerwise":
        return {n: _prune_lowest(s, round(target_sparsity * s.numel())) for n, s in scores.items()}
    flat = torch.cat([s.flatten() for s in scores.values()])
    keep = _prune_lowest(flat, round(target_sparsity * flat.numel()))
    out, offset = {}, 0
    for name, s in scores.items():
        out[name] = keep[offset : offset + s.numel()].view(s.shape)
        offset += s.numel()
    return out
