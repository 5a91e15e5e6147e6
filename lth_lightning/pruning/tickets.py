"""Ticket files: mask + reset weights + provenance, one ``.pt`` file per ticket.

A ticket is everything needed to train it again elsewhere: the masks, the weights the survivors are
reset to (θ0, θk or a re-init), and how it was found (model and data config, criterion, sparsity, LR,
epochs, attack, seed, code version). Loading checks the file is a ticket and fits the model it is
applied to, and says which of those failed.

``python -m lth_lightning.pruning.tickets compare A.pt B.pt`` prints per-layer overlap of two tickets.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lth_lightning.errors import TicketError
from lth_lightning.io import atomic_write

FORMAT = "lth_lightning.ticket/v1"


@dataclass
class Ticket:
    masks: dict[str, torch.Tensor]
    weights: dict[str, torch.Tensor]
    provenance: dict[str, Any] = field(default_factory=dict)

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


def save_ticket(path: str | Path, ticket: Ticket) -> Path:
    """Write atomically (temp file + rename), so a crash never leaves a half-written ticket."""
    payload = {"format": FORMAT, "masks": ticket.masks, "weights": ticket.weights,
               "provenance": ticket.provenance}
    return atomic_write(Path(path), lambda tmp: torch.save(payload, tmp))


def load_ticket(path: str | Path) -> Ticket:
    path = Path(path)
    if not path.is_file():
        raise TicketError(f"ticket file {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise TicketError(f"{path} is not a readable ticket (truncated or not a torch file: "
                          f"{str(err).splitlines()[0][:120]})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise TicketError(f"{path} is a torch file but not an lth_lightning ticket (no '{FORMAT}' tag)")
    return Ticket(payload["masks"], payload["weights"], payload.get("provenance", {}))


def compare_tickets(a: Ticket, b: Ticket) -> dict[str, dict[str, float]]:
    """Per-layer IoU of the kept weights and Hamming distance (fraction of positions that differ)."""
    common = [n for n in a.masks if n in b.masks and a.masks[n].shape == b.masks[n].shape]
    if not common:
        raise TicketError("the two tickets share no layer of the same shape")
    rows, inter_all, union_all, diff_all, total_all = {}, 0, 0, 0, 0
    for name in common:
        ma, mb = a.masks[name].bool(), b.masks[name].bool()
        inter, union, diff = int((ma & mb).sum()), int((ma | mb).sum()), int((ma ^ mb).sum())
        rows[name] = {"iou": inter / union if union else 1.0, "hamming": diff / ma.numel()}
        inter_all, union_all, diff_all = inter_all + inter, union_all + union, diff_all + diff
        total_all += ma.numel()
    rows["overall"] = {"iou": inter_all / union_all if union_all else 1.0, "hamming": diff_all / total_all}
    return rows


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lth_lightning.pruning.tickets")
    sub = parser.add_subparsers(dest="cmd", required=True)
    cmp = sub.add_parser("compare", help="per-layer IoU and Hamming distance of two tickets")
    cmp.add_argument("a")
    cmp.add_argument("b")
    show = sub.add_parser("show", help="provenance and per-layer sparsity of a ticket")
    show.add_argument("path")
    args = parser.parse_args(argv)
    try:
        if args.cmd == "compare":
            rows = compare_tickets(load_ticket(args.a), load_ticket(args.b))
            print(f"{'layer':50s} {'IoU':>7s} {'Hamming':>8s}")
            for name, r in rows.items():
                print(f"{name:50s} {r['iou']:7.4f} {r['hamming']:8.4f}")
        else:
            ticket = load_ticket(args.path)
            for key, value in ticket.provenance.items():
                print(f"{key}: {value}")
            for name, mask in ticket.masks.items():
                print(f"{name:50s} sparsity {1 - mask.float().mean().item():.4f}")
    except TicketError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(_main())
