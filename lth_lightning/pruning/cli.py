"""``lth-lightning tickets show T.pt`` / ``lth-lightning tickets compare A.pt B.pt``.

A subcommand of the one entry point (``python -m lth_lightning tickets ...`` too): provenance and
per-layer sparsity of a ticket, or per-layer IoU and Hamming distance of two.
"""

from __future__ import annotations

import argparse
import sys

from lth_lightning.errors import TicketError
from lth_lightning.pruning.tickets import compare_tickets, load_ticket


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="lth-lightning tickets")
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
