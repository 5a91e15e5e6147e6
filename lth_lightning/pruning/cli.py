"""``lth-lightning tickets show T.pt`` / ``lth-lightning tickets compare A.pt B.pt``.

A subcommand of the one entry point (``python -m lth_lightning tickets ...`` too): provenance and
per-layer sparsity of a ticket, or per-layer IoU and Hamming distance of two.
"""

from __future__ import annotations

import argparse
import sys

from lth_lightning.errors import TicketError
from lth_lightning.pruning.tickets import Ticket, compare_tickets, load_ticket


def _sizes(ticket: Ticket) -> str:
    """Parameters and MACs per forward pass, dense vs compacted: what a channel ticket saves per step."""
    from lth_lightning.config import ModelConfig
    from lth_lightning.data import DataInfo
    from lth_lightning.models import build_model
    from lth_lightning.pruning import MaskSet
    from lth_lightning.pruning.channels import compact_state, macs, params

    prov = ticket.provenance
    if "info" not in prov:
        raise TicketError("the ticket's provenance has no data shape ('info'): cannot rebuild its network")
    info = DataInfo(**{k: tuple(v) if isinstance(v, list) else v for k, v in prov["info"].items()})
    cfg = ModelConfig(**prov["model"])
    net = build_model(cfg, info)
    dense_params, dense_macs = params(net), macs(net, info.shape)
    compact_state(ticket, net, info.shape)  # net is now the compact net, at the ticket's weights
    small_params, small_macs = params(net), macs(net, info.shape)
    kept = ", ".join(f"{k} {len(v)}" for k, v in ticket.channels.items())
    widths = {k: ticket.weights[f"{k}.weight"].shape[0] for k in ticket.channels}
    n_kept, n_all = sum(len(v) for v in ticket.channels.values()), sum(widths.values())
    weights = MaskSet(ticket.masks).sparsity()["overall"]
    return (f"channels kept: {kept}\nchannels removed: {1 - n_kept / n_all:.1%} ({n_all - n_kept} of {n_all}; "
            f"asked {prov.get('sparsity', '?')}), which removes {weights:.1%} of the conv and linear weights\n"
            f"parameters: dense {dense_params:,} -> compact {small_params:,} "
            f"({small_params / dense_params:.1%})\nMACs per example: dense {dense_macs:,} -> compact "
            f"{small_macs:,} ({small_macs / dense_macs:.1%})")


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
            if ticket.structured:
                print(_sizes(ticket))
    except TicketError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
