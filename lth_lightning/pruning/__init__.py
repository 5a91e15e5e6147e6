"""Lottery-ticket machinery: masks, pruning criteria, weight resets and ticket files."""

from lth_lightning.pruning.criteria import compute_masks
from lth_lightning.pruning.masks import MaskSet, prunable_weights
from lth_lightning.pruning.reset import reset_weights
from lth_lightning.pruning.tickets import Ticket, compare_tickets, load_ticket, save_ticket

__all__ = [
    "MaskSet",
    "Ticket",
    "compare_tickets",
    "compute_masks",
    "load_ticket",
    "prunable_weights",
    "reset_weights",
    "save_ticket",
]
