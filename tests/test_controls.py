"""Control arms: each keeps exactly what it is named for and draws the rest; they run as stages of their own."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from lth_lightning.config import ModelConfig
from lth_lightning.data import DataInfo
from lth_lightning.errors import TicketError
from lth_lightning.models import build_model
from lth_lightning.modules import Classifier
from lth_lightning.pruning import MaskSet, Ticket, compute_masks, prunable_weights
from lth_lightning.pruning.channels import channel_masks, channel_scores, compact, keep_channels
from lth_lightning.pruning.controls import control_ticket, default_init
from lth_lightning.pruning.reset import snapshot

INFO = DataInfo(1, 28, 10, (0.4,), (0.2,))
SHAPE = INFO.shape


def _channel_ticket(name: str = "lenet", ratio: float = 0.5) -> tuple[nn.Module, Ticket]:
    model = build_model(ModelConfig(name=name), INFO, seed=0)
    kept = keep_channels(channel_scores(model, SHAPE), ratio, 8)
    return model, Ticket(channel_masks(model, SHAPE, kept), snapshot(model), {"model": {"name": name}}, kept)


def _unstructured_ticket(name: str = "vgg11") -> tuple[nn.Module, Ticket]:
    model = build_model(ModelConfig(name=name), INFO, seed=0)
    masks = MaskSet(compute_masks(prunable_weights(model), 0.8, "layer_normalized"))
    masks.add_bn_masks(model)
    return model, Ticket(masks.as_dict(), snapshot(model), {"model": {"name": name}})


@pytest.mark.parametrize("name", ["lenet", "madry_cnn"])
def test_random_channels_keep_the_tickets_counts_and_theta0_slices(name):
    model, ticket = _channel_ticket(name)
    control = control_ticket(ticket, "random_channels", copy.deepcopy(model), SHAPE, seed=7)
    assert {k: len(v) for k, v in control.channels.items()} == {k: len(v) for k, v in ticket.channels.items()}
    assert any(not torch.equal(control.channels[k], ticket.channels[k]) for k in ticket.channels)  # drawn anew
    assert all(torch.equal(control.weights[k], ticket.weights[k]) for k in ticket.weights)  # θ0, untouched
    # compacted like the ticket: the compact net holds θ0's rows and columns of the drawn channels, bit for bit
    small = compact(copy.deepcopy(model), SHAPE, control.channels)
    first, root = small.net.features[0].weight, "net.features.0"
    assert torch.equal(first, ticket.weights[f"{root}.weight"][control.channels[root]])
    again = control_ticket(ticket, "random_channels", copy.deepcopy(model), SHAPE, seed=7)
    other = control_ticket(ticket, "random_channels", copy.deepcopy(model), SHAPE, seed=8)
    assert all(torch.equal(again.channels[k], control.channels[k]) for k in ticket.channels)  # seeded
    assert any(not torch.equal(other.channels[k], control.channels[k]) for k in ticket.channels)
    # its masks are the drawn channels' masks: same kept fraction of every layer as the ticket's
    for key, mask in control.masks.items():
        assert mask.sum() == ticket.masks[key].sum(), key


def test_random_mask_keeps_each_layers_sparsity_at_new_positions():
    model, ticket = _unstructured_ticket()
    control = control_ticket(ticket, "random_mask", copy.deepcopy(model), SHAPE, seed=3)
    weights = {k for k, m in ticket.masks.items() if m.dim() > 1}
    assert weights <= set(control.masks) and weights
    for key in weights:
        assert control.masks[key].sum() == ticket.masks[key].sum(), key  # the ticket's per-layer sparsity ...
        assert not torch.equal(control.masks[key], ticket.masks[key]), key  # ... at other positions
    assert all(torch.equal(control.weights[k], ticket.weights[k]) for k in ticket.weights)  # θ0 values
    # BatchNorm channels follow the drawn weights, as the ticket's followed its own
    bn = MaskSet(control.masks)
    assert bn.bn_names and all(control.masks[n].dtype == torch.bool for n in bn.bn_names)


def test_narrow_is_the_default_init_of_the_compact_shape():
    """Not θ0 sliced, not a full-width init sliced: the layers' own reset at the narrow fan-ins."""
    _, ticket = _channel_ticket()
    kept = {k: v.tolist() for k, v in ticket.channels.items()}
    hp = ({"name": "lenet"}, {**INFO.__dict__}, {}, {"name": "none"}, {})
    narrow = Classifier(*hp, init_seed=0, channels=kept)
    sliced = narrow.model.net.features[3].weight.detach().clone()
    default_init(narrow.model, seed=11)
    conv = narrow.model.net.features[3]
    assert not torch.equal(conv.weight, sliced)
    # PyTorch's conv default: kaiming_uniform(a=√5) -> U(±1/√fan_in), fan_in of the *narrow* layer
    bound = 1 / (conv.in_channels * 9) ** 0.5
    assert conv.weight.abs().max() <= bound and conv.weight.abs().max() > 0.9 * bound
    # the same net a practitioner builds at that width: LeNet at width 0.5 has this ticket's shape when counts match
    again = Classifier(*hp, init_seed=0, channels=kept)
    default_init(again.model, seed=11)
    assert all(torch.equal(a, b) for a, b in zip(again.model.parameters(), narrow.model.parameters(), strict=True))


def test_a_control_of_the_other_structure_is_refused():
    model, channel = _channel_ticket()
    with pytest.raises(TicketError, match="random_mask is no control of a channel ticket"):
        control_ticket(channel, "random_mask", model, SHAPE, seed=0)
    model, unstructured = _unstructured_ticket()
    with pytest.raises(TicketError, match="random_channels is no control of an unstructured ticket"):
        control_ticket(unstructured, "random_channels", model, SHAPE, seed=0)
