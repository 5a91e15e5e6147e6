"""What the surviving weights are reset to after pruning."""

from __future__ import annotations

import torch
from torch import nn

from lth_lightning.pruning.masks import MaskSet


@torch.no_grad()
def reset_weights(model: nn.Module, masks: MaskSet, mode: str, snapshot: dict[str, torch.Tensor] | None,
                  reinit: nn.Module | None = None) -> None:
    """Reset ``model`` in place, then apply the masks.

    - ``init`` / ``rewind``: every parameter and buffer (BN statistics too) from ``snapshot`` (θ0 / θk);
    - ``reinit``: from ``reinit``, a fresh model built with another seed (the random re-init control);
    - ``finetune``: keep the trained weights.
    """
    if mode in ("init", "rewind"):
        if snapshot is None:
            raise ValueError(f"reset={mode} needs a weight snapshot, but none was captured")
        model.load_state_dict(snapshot)
    elif mode == "reinit":
        if reinit is None:
            raise ValueError("reset=reinit needs a freshly initialised model")
        model.load_state_dict(reinit.state_dict())
    elif mode != "finetune":
        raise ValueError(f"unknown reset mode {mode!r}")
    masks.apply_(model)


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of the full state (parameters and buffers)."""
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
