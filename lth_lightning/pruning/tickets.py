"""Ticket files: mask + reset weights + provenance, one ``.pt`` file per ticket.

A ticket is everything needed to train it again elsewhere: the masks, the weights the survivors are
reset to (θ0, θk or a re-init), and how it was found (model and data config, criterion, sparsity, LR,
epochs, attack, seed, code version). Loading checks the file is a ticket and fits the model it is
applied to, and says which of those failed.

``lth-lightning tickets show|compare`` (``pruning/cli.py``) prints a ticket or the overlap of two.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lth_lightning.config import Config
from lth_lightning.errors import TicketError, first_line
from lth_lightning.io import atomic_write
from lth_lightning.pruning.masks import overlap
from lth_lightning.version import code_version

FORMAT = "lth_lightning.ticket/v1"


@dataclass
class Ticket:
    masks: dict[str, torch.Tensor]
    weights: dict[str, torch.Tensor]
    provenance: dict[str, Any] = field(default_factory=dict)
    channels: dict[str, torch.Tensor] = field(default_factory=dict)  # channel ticket: kept indices per group root

    @property
    def structured(self) -> bool:
        return bool(self.channels)

    def kept(self) -> dict[str, list[int]]:
        """Kept channel indices as plain lists (what a ``Classifier`` takes to rebuild the compact net)."""
        return {k: v.tolist() for k, v in self.channels.items()}

    def apply_to(self, model: nn.Module) -> None:
        """Load the reset weights into ``model``; fails clearly if the architecture differs."""
        own = model.state_dict()
        missing = sorted(set(own) ^ set(self.weights))
        bad = [k for k in own if k in self.weights and own[k].shape != self.weights[k].shape]
        if missing or bad:
            where = (missing + bad)[0]
            model = self.provenance.get("model", "?")
            name = model.get("name", "?") if isinstance(model, dict) else model
            raise TicketError(f"ticket was found on model {name!r} and does not fit this model "
                              f"(first mismatch: {where})")
        model.load_state_dict(self.weights)

    def digest(self) -> str:
        """A content hash of masks and weights: what a stage consuming this ticket depends on."""
        h = hashlib.sha256()
        for group in (self.masks, self.weights, self.channels):
            for name in sorted(group):
                h.update(name.encode())
                h.update(group[name].detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
        return f"ticket-{h.hexdigest()[:12]}"


def provenance(cfg: Config, **extra: Any) -> dict[str, Any]:
    """How a ticket was made: the model and data settings that applied (not, say, WRN's depth on a LeNet), pruning,
    seed, code version, plus ``extra`` (``sparsity``: the cut asked; ``weights_removed``/``channels_removed``: the
    cut achieved after rounding)."""
    skip = cfg.data.unused() | {"root", "download", "num_workers"}
    data = {k: v for k, v in asdict(cfg.data).items() if k not in skip}
    model = {k: v for k, v in asdict(cfg.model).items() if k not in cfg.model.unused()}
    structure = {"channel_multiple": cfg.prune.channel_multiple} if cfg.prune.structure == "channel" else {}
    return {"model": model, "data": data, "structure": cfg.prune.structure, **structure,
            "criterion": cfg.prune.criterion,
            "include_classifier": cfg.prune.include_classifier, "reset": cfg.prune.reset, "seed": cfg.seed,
            "code_version": code_version(), **extra}


def save_ticket(path: str | Path, ticket: Ticket) -> Path:
    """Write atomically (temp file + rename), so a crash never leaves a half-written ticket."""
    payload = {"format": FORMAT, "masks": ticket.masks, "weights": ticket.weights,
               "provenance": ticket.provenance, "channels": ticket.channels}
    return atomic_write(Path(path), lambda tmp: torch.save(payload, tmp))


def load_ticket(path: str | Path) -> Ticket:
    path = Path(path)
    if not path.is_file():
        raise TicketError(f"ticket file {path} does not exist")
    if path.stat().st_size == 0:
        raise TicketError(f"{path} is empty (0 bytes): not a ticket")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise TicketError(f"{path} is not a readable ticket (truncated or not a torch file: "
                          f"{first_line(err)})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise TicketError(f"{path} is a torch file but not an lth_lightning ticket (no '{FORMAT}' tag)")
    return Ticket(payload["masks"], payload["weights"], payload.get("provenance", {}), payload.get("channels", {}))


def compare_tickets(a: Ticket, b: Ticket) -> dict[str, dict[str, float]]:
    """Per-layer and overall IoU of the kept weights and Hamming distance (``masks.overlap``)."""
    rows = overlap(a.masks, b.masks)
    if not rows:
        raise TicketError("the two tickets share no layer of the same shape")
    return rows
