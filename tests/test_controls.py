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


def _masked(model: nn.Module, masks: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The weights a ticket file holds: θ0 under its mask (zero wherever it cut), as ``prune_step`` writes them."""
    net = copy.deepcopy(model)
    MaskSet(masks).apply_(net)
    return snapshot(net)


def _channel_ticket(name: str = "lenet", ratio: float = 0.5) -> tuple[nn.Module, Ticket]:
    model = build_model(ModelConfig(name=name), INFO, seed=0)
    kept = keep_channels(channel_scores(model, SHAPE), ratio, 8)
    masks = channel_masks(model, SHAPE, kept)
    return model, Ticket(masks, _masked(model, masks), {"model": {"name": name}}, kept)


def _unstructured_ticket(name: str = "vgg11") -> tuple[nn.Module, Ticket]:
    model = build_model(ModelConfig(name=name), INFO, seed=0)
    masks = MaskSet(compute_masks(prunable_weights(model), 0.8, "layer_normalized"))
    masks.add_bn_masks(model)
    return model, Ticket(masks.as_dict(), _masked(model, masks.as_dict()), {"model": {"name": name}})


def _control(model: nn.Module, ticket: Ticket, control: str, seed: int) -> Ticket:
    return control_ticket(ticket, control, copy.deepcopy(model), SHAPE, seed, snapshot(model))


@pytest.mark.parametrize("name", ["lenet", "madry_cnn"])
def test_random_channels_keep_the_tickets_counts_and_theta0_slices(name):
    model, ticket = _channel_ticket(name)
    control = _control(model, ticket, "random_channels", 7)
    assert {k: len(v) for k, v in control.channels.items()} == {k: len(v) for k, v in ticket.channels.items()}
    assert any(not torch.equal(control.channels[k], ticket.channels[k]) for k in ticket.channels)  # drawn anew
    theta0 = snapshot(model)
    assert all(torch.equal(control.weights[k], theta0[k]) for k in theta0)  # θ0 unmasked, not the ticket's zeros
    # compacted like the ticket: the compact net holds θ0's rows and columns of the drawn channels, bit for bit
    small = compact(copy.deepcopy(model), SHAPE, control.channels)
    first, root = small.net.features[0].weight, "net.features.0"
    assert torch.equal(first, theta0[f"{root}.weight"][control.channels[root]])
    again = _control(model, ticket, "random_channels", 7)
    other = _control(model, ticket, "random_channels", 8)
    assert all(torch.equal(again.channels[k], control.channels[k]) for k in ticket.channels)  # seeded
    assert any(not torch.equal(other.channels[k], control.channels[k]) for k in ticket.channels)
    # its masks are the drawn channels' masks: same kept fraction of every layer as the ticket's
    for key, mask in control.masks.items():
        assert mask.sum() == ticket.masks[key].sum(), key


def test_random_mask_keeps_each_layers_sparsity_at_new_positions():
    model, ticket = _unstructured_ticket()
    control = _control(model, ticket, "random_mask", 3)
    weights = {k for k, m in ticket.masks.items() if m.dim() > 1}
    assert weights <= set(control.masks) and weights
    for key in weights:
        assert control.masks[key].sum() == ticket.masks[key].sum(), key  # the ticket's per-layer sparsity ...
        assert not torch.equal(control.masks[key], ticket.masks[key]), key  # ... at other positions
    theta0 = snapshot(model)
    assert all(torch.equal(control.weights[k], theta0[k]) for k in theta0)  # θ0 values, unmasked
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
        _control(model, channel, "random_mask", 0)
    model, unstructured = _unstructured_ticket()
    with pytest.raises(TicketError, match="random_channels is no control of an unstructured ticket"):
        _control(model, unstructured, "random_channels", 0)


def test_a_collapsed_run_is_labelled_and_a_healthy_one_is_not(make_cfg, tmp_path):
    """LR 1000 drives the net to one class: its validation accuracy is that class's frequency, result.json and
    stage.json say collapsed. At LR 0.1 the same run predicts several classes."""
    import dataclasses
    import json

    from lth_lightning.data import build_datamodule
    from lth_lightning.tasks.train import run_train

    common = ["trainer.max_epochs=1", "optim.weight_decay=0", "data.train_subset=256", "eval.val_robust_samples=0"]
    fell = run_train(dataclasses.replace(make_cfg(*common, "optim.lr=1000"), run_dir=str(tmp_path / "fell")))
    (epoch,) = fell.history
    labels = build_datamodule(make_cfg(*common).data)
    labels.setup()
    counts = torch.bincount(labels.val_set.labels, minlength=10).tolist()
    assert fell.collapsed and epoch.val_classes == 1
    assert round(epoch.val_clean * len(labels.val_set) / 100) in counts  # clean accuracy = one class's frequency
    assert json.loads((tmp_path / "fell" / "stage.json").read_text())["collapsed"] is True
    assert json.loads((tmp_path / "fell" / "result.json").read_text())["collapsed"] is True
    healthy = run_train(dataclasses.replace(make_cfg(*common, "optim.lr=0.1"), run_dir=str(tmp_path / "ok")))
    assert not healthy.collapsed and healthy.history[0].val_classes > 1
    assert "collapsed" not in json.loads((tmp_path / "ok" / "stage.json").read_text())


def test_frontier_controls_and_cheap_baselines_are_costed_in_one_ledger(make_cfg, tmp_path):
    """A channel ticket with both controls, dense at width 0.5 and FGSM-RS dense, one tiny frontier: the controls
    are charged no finding and their stages are their own; FGSM-RS costs 2 passes an example to PGD-2's 3; MACs are
    passes x each net's MACs per pass (narrow = the ticket's shape; width 0.5 fewer than dense)."""
    from lth_lightning.tasks.frontier import run_frontier

    cfg = make_cfg("experiment=frontier", "prune.structure=channel", "prune.ratio=0.5", "frontier.seeds=[0]",
                   "frontier.budgets=[1]", "frontier.lrs=[0.2]", "pipeline.find.epochs=1", "attack.steps=2",
                   "trainer.limit_train_batches=3", "data.test_subset=32",
                   "frontier.arms=[ticket,dense,random_channels,narrow]",
                   "++frontier.baselines={dense_w050:['model.width=0.5'],dense_fgsm_rs:['attack.name=fgsm_rs',"
                   "'eval.catastrophic_drop=10']}")
    result = run_frontier(cfg)
    runs = {r.arm: r for r in result.runs}
    assert set(runs) == {"ticket", "dense", "dense_w050", "dense_fgsm_rs", "random_channels", "narrow"}
    assert runs["ticket"].find_passes > 0
    for control in ("random_channels", "narrow"):  # no finding charged, but the mask they came from is named
        assert runs[control].find_passes == 0 and runs[control].find_stage == runs["ticket"].find_stage
    first = {a: r.points[0] for a, r in runs.items()}
    assert first["dense_fgsm_rs"].passes / first["dense"].passes == pytest.approx(2 / 3)
    per_pass = {a: p.macs / p.passes for a, p in first.items() if a != "ticket"}
    assert per_pass["narrow"] == per_pass["random_channels"] < per_pass["dense"]
    assert per_pass["dense_w050"] < per_pass["dense"]  # width 0.5 of the published LeNet (this experiment's is 2)
    assert per_pass["dense_fgsm_rs"] == per_pass["dense"]
    cache = tmp_path / "cache"
    assert len(list(cache.glob("narrow-*/result.json"))) == len(list(cache.glob("random_channels-*/result.json"))) == 1
    assert result.controls == {"ticket": ["random_channels", "narrow"]}
    # the strong final evaluation: each arm's best run of the seed, its best checkpoint under PGD-50 x 3 restarts on
    # the first test images; never above clean accuracy, written once beside the stage and read back on a rerun
    assert [f.arm for f in result.final] == list(runs) and all(f.threat == "PGD-50×3 L∞ ε=0.2" for f in result.final)
    assert all(0.0 <= f.strong <= f.clean and f.samples == 32 for f in result.final)
    first = result.final[0]
    from lth_lightning.tasks.evaluate import strong_eval

    blank = torch.zeros(32, 1, 8, 8), torch.zeros(32, dtype=torch.long)  # recomputed, these would score otherwise
    assert strong_eval(first.checkpoint, *blank, 50, 3)[1:] == (first.strong, first.threat)  # read from the record
    md = (tmp_path / "frontier.md").read_text()
    assert "ticket vs best control: saving | verdict" in md and "charged none" in md and "cheapest arm" in md
