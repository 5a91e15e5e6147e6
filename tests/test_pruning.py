"""Criteria pick the weights they should (property tests); masks are clean buffers; tickets round-trip."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lth_lightning.config import ModelConfig
from lth_lightning.data import DataInfo
from lth_lightning.errors import TicketError
from lth_lightning.models import build_model
from lth_lightning.pruning import MaskSet, Ticket, compare_tickets, compute_masks, load_ticket, prunable_weights
from lth_lightning.pruning import save_ticket as save

shapes = st.lists(st.tuples(st.integers(1, 12), st.integers(1, 12)), min_size=1, max_size=4)


def _weights(shape_list, seed, scales=None):
    gen = torch.Generator().manual_seed(seed)
    scales = scales or [1.0] * len(shape_list)
    return {f"l{i}.weight": torch.randn(s, generator=gen) * c for i, (s, c) in enumerate(zip(shape_list, scales,
                                                                                               strict=True))}


def _pruned(masks):
    return sum(int((~m).sum()) for m in masks.values())


@settings(max_examples=40, deadline=None)
@given(shape_list=shapes, target=st.floats(0.0, 0.95), seed=st.integers(0, 100))
def test_global_magnitude_prunes_exactly_the_smallest(shape_list, target, seed):
    w = _weights(shape_list, seed)
    masks = compute_masks(w, target, "global")
    total = sum(t.numel() for t in w.values())
    assert _pruned(masks) == round(target * total)
    pruned = torch.cat([w[n].abs()[~m] for n, m in masks.items()])
    kept = torch.cat([w[n].abs()[m] for n, m in masks.items()])
    if len(pruned) and len(kept):
        assert pruned.max() <= kept.min()


@settings(max_examples=40, deadline=None)
@given(shape_list=shapes, target=st.floats(0.0, 0.95), seed=st.integers(0, 100))
def test_layerwise_prunes_each_layer_to_target(shape_list, target, seed):
    w = _weights(shape_list, seed)
    masks = compute_masks(w, target, "layerwise")
    for name, m in masks.items():
        assert int((~m).sum()) == round(target * m.numel())
        if (~m).any() and m.any():
            assert w[name].abs()[~m].max() <= w[name].abs()[m].min()


@settings(max_examples=40, deadline=None)
@given(shape_list=shapes, target=st.floats(0.0, 0.95), seed=st.integers(0, 100),
       scale=st.floats(0.01, 100.0))
def test_layer_normalized_is_invariant_to_layer_scale(shape_list, target, seed, scale):
    """Dividing by the layer's mean |w| makes the mask independent of each layer's overall scale."""
    w = _weights(shape_list, seed)
    scaled = {n: t * (scale if i == 0 else 1.0) for i, (n, t) in enumerate(w.items())}
    a = compute_masks(w, target, "layer_normalized")
    b = compute_masks(scaled, target, "layer_normalized")
    assert _pruned(a) == round(target * sum(t.numel() for t in w.values()))
    # scores equal up to float rounding: masks agree except possibly at exact ties
    disagree = sum(int((a[n] ^ b[n]).sum()) for n in a)
    assert disagree <= 2


def test_layer_normalized_spares_a_small_scale_layer_that_global_wipes_out():
    w = _weights([(50, 50), (50, 50)], 0, scales=[1.0, 0.01])
    glob = compute_masks(w, 0.5, "global")
    norm = compute_masks(w, 0.5, "layer_normalized")
    assert glob["l1.weight"].float().mean() < 0.02  # global magnitude all but wipes out the small layer
    assert 0.4 < norm["l1.weight"].float().mean() < 0.6


def test_random_criterion_hits_count_and_depends_on_seed():
    w = _weights([(20, 20), (10, 5)], 0)
    a, b = compute_masks(w, 0.7, "random", seed=1), compute_masks(w, 0.7, "random", seed=2)
    assert _pruned(a) == _pruned(b) == round(0.7 * 450)
    assert any(not torch.equal(a[n], b[n]) for n in a)


@pytest.mark.parametrize("criterion", ["global", "layerwise", "layer_normalized", "random"])
def test_iterative_pruning_hits_expected_sparsity_and_masks_only_shrink(criterion):
    w = _weights([(30, 30), (20, 10)], 3)
    masks = None
    for level in range(1, 5):
        new = compute_masks(w, 1 - 0.8**level, criterion, masks, seed=level)
        total = sum(t.numel() for t in w.values())
        assert abs(_pruned(new) / total - (1 - 0.8**level)) < 0.01
        if masks is not None:
            assert all(not (new[n] & ~masks[n]).any() for n in new)  # never regrow
        masks = new


def _vgg():
    return build_model(ModelConfig(name="vgg11"), DataInfo(3, 32, 10, (0.5,) * 3, (0.25,) * 3), seed=0)


def test_bn_channel_masked_when_all_its_filters_are_pruned():
    model = _vgg()
    masks = MaskSet({n: torch.ones_like(p, dtype=torch.bool) for n, p in prunable_weights(model).items()})
    first = "net.features.0.weight"
    dead = masks.get(first).clone()
    dead[3] = False
    masks.set(first, dead)
    assert masks.add_bn_masks(model) == 1
    bn = masks.get("net.features.1.weight")
    assert not bn[3] and bn.sum() == bn.numel() - 1
    masks.apply_(model)
    assert model.net.features[1].bias[3] == 0 and model.net.features[1].weight[3] == 0
    assert "net.features.1.weight" not in masks.sparsity()  # BN masks do not count as pruned weights


def test_classifier_can_be_excluded():
    model = _vgg()
    assert "net.classifier.weight" in prunable_weights(model, include_classifier=True)
    assert "net.classifier.weight" not in prunable_weights(model, include_classifier=False)
    assert not any(n.endswith("bias") for n in prunable_weights(model))


def test_network_state_dict_stays_dense_loadable():
    model = _vgg()
    masks = MaskSet(compute_masks(prunable_weights(model), 0.8, "layer_normalized"))
    masks.apply_(model)
    fresh = _vgg()
    fresh.load_state_dict(model.state_dict(), strict=True)  # no mask keys leak into the network
    assert abs(masks.sparsity()["overall"] - 0.8) < 1e-3
    restored = MaskSet()
    restored.load_masks({n: m for n, m in masks.items()})
    assert set(restored.state_dict()) == set(masks.state_dict())


def _ticket(model, sparsity=0.8):
    masks = compute_masks(prunable_weights(model), sparsity, "global")
    return Ticket(masks, model.state_dict(), {"model": "vgg11", "sparsity": sparsity})


def test_ticket_round_trip_and_clear_errors(tmp_path):
    model = _vgg()
    path = save(tmp_path / "t.pt", _ticket(model))
    loaded = load_ticket(path)
    assert loaded.provenance["model"] == "vgg11"
    assert all(torch.equal(loaded.masks[n], m) for n, m in _ticket(model).masks.items())
    with pytest.raises(TicketError, match="does not fit this model"):
        loaded.apply_to(build_model(ModelConfig(name="lenet"), DataInfo(3, 32, 10, (0.5,) * 3, (0.25,) * 3)))
    truncated = tmp_path / "cut.pt"
    truncated.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(TicketError, match="not a readable ticket"):
        load_ticket(truncated)
    other = tmp_path / "other.pt"
    torch.save({"weights": 1}, other)
    with pytest.raises(TicketError, match="not an lth_lightning ticket"):
        load_ticket(other)
    with pytest.raises(TicketError, match="does not exist"):
        load_ticket(tmp_path / "missing.pt")


def test_compare_tickets_iou_and_hamming():
    model = _vgg()
    a, b = _ticket(model, 0.8), _ticket(model, 0.9)
    same = compare_tickets(a, a)["overall"]
    assert same == {"iou": 1.0, "hamming": 0.0}
    rows = compare_tickets(a, b)["overall"]
    # b's survivors are a subset of a's: IoU = 10 % / 20 %, Hamming = 10 % of positions
    assert rows["iou"] == pytest.approx(0.5, abs=0.01) and rows["hamming"] == pytest.approx(0.1, abs=0.01)
