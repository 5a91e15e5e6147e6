"""Control arms: what a ticket must beat for its mask to matter.

A saving is the ticket's only if the same budget spent on a net of the same size, without the mask the finding
chose, does not give it too. Each control keeps one thing of the ticket and draws the rest at random, from a
generator seeded by the finding and the control's name (``stages.arms.control_seed``: each seed's control differs,
every budget and LR of one seed trains the same control net, and a rerun draws the same). Values come from the
*unmasked* state the ticket was reset to, never from the ticket's weights, which are 0 wherever the ticket cut:

- ``random_mask`` (unstructured): each layer's sparsity, at random positions; θ0 values.
- ``random_channels`` (channel): each group's kept count (after alignment), random channels; θ0 slices, then
  compacted like the ticket.
- ``narrow`` (channel): the ticket's compact shape at the model's own default initialisation -- the net a
  practitioner gets by building the model with fewer channels (Liu et al. 2019, "Rethinking the Value of
  Network Pruning"). Its fan-ins are the narrow net's, unlike a full-width init sliced down.

None of them needs the finding, so no ledger charges them for it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from lth_lightning.errors import TicketError
from lth_lightning.pruning.channels import channel_masks
from lth_lightning.pruning.masks import MaskSet
from lth_lightning.pruning.tickets import Ticket


def control_ticket(ticket: Ticket, control: str, full: nn.Module, shape: Sequence[int], seed: int,
                   source: dict[str, torch.Tensor]) -> Ticket:
    """The ticket ``control`` trains from (``narrow`` trains the ticket's shape: see ``default_init``).

    ``full`` is a net of the ticket's model (its masks are rebuilt on it); ``source`` the *unmasked* state the
    ticket was reset to (θ0 or θk): the control's kept units take their values from it, never from the ticket's
    weights, where every unit the ticket removed is 0 (a ReLU unit that starts at 0 gets no gradient and stays
    dead). ``seed`` draws the random positions or channels."""
    if (control == "random_mask") == ticket.structured:
        kind = "a channel" if ticket.structured else "an unstructured"
        raise TicketError(f"{control} is no control of {kind} ticket")
    gen = torch.Generator().manual_seed(seed)
    if control == "random_mask":
        return Ticket(random_masks(ticket.masks, full, gen), source, _provenance(ticket, control, seed))
    kept = random_channels(ticket, gen) if control == "random_channels" else ticket.channels
    full.load_state_dict(source)
    return Ticket(channel_masks(full, shape, kept), source, _provenance(ticket, control, seed), kept)


def random_masks(masks: dict[str, torch.Tensor], full: nn.Module, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Each weight mask's kept count at random positions. BatchNorm masks follow the new weight masks, as the
    ticket's followed its own (a BN channel is masked when every weight feeding it is)."""
    out = MaskSet()
    for name in sorted(masks):
        mask = masks[name]
        if mask.dim() == 1:  # BatchNorm: derived below
            continue
        drawn = torch.zeros(mask.numel(), dtype=torch.bool)
        drawn[torch.randperm(mask.numel(), generator=gen)[: int(mask.sum())]] = True
        out.set(name, drawn.view_as(mask))
    if any(m.dim() == 1 for m in masks.values()):
        out.add_bn_masks(full)
    return out.as_dict()


def random_channels(ticket: Ticket, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Per group root: as many channels as the ticket keeps, drawn at random from the group's width."""
    out = {}
    for root in sorted(ticket.channels):
        width = ticket.weights[f"{root}.weight"].shape[0]
        out[root] = torch.randperm(width, generator=gen)[: len(ticket.channels[root])].sort().values
    return out


@torch.no_grad()
def default_init(model: nn.Module, seed: int) -> None:
    """Re-initialise every layer as its constructor does (``reset_parameters``), at ``seed``: a compacted net
    becomes the narrow net built from scratch (BatchNorm statistics reset too)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in model.modules():
            if hasattr(module, "reset_parameters"):  # BatchNorm's resets its running statistics too
                module.reset_parameters()


def _provenance(ticket: Ticket, control: str, seed: int) -> dict:
    return {**ticket.provenance, "control": control, "control_seed": seed}
