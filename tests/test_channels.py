"""Channel tickets: the compact net is the masked full net, made smaller; kept weights are θ0 bit for bit."""

from __future__ import annotations

import copy
from dataclasses import asdict

import lightning as L
import pytest
import torch
from torch import nn

from lth_lightning.config import ConfigError, ModelConfig, PruneConfig
from lth_lightning.data import DataInfo, build_datamodule
from lth_lightning.errors import TicketError
from lth_lightning.models import build_model
from lth_lightning.modules import Classifier
from lth_lightning.pruning import MaskSet
from lth_lightning.pruning.channels import (
    channel_masks,
    channel_scores,
    compact,
    groups,
    keep_channels,
    macs,
    params,
)

ARCHS = {  # every supported architecture, at the data shape it is built for
    "lenet": ((1, 28, 28), {}), "madry_cnn": ((1, 28, 28), {}), "wong_cnn": ((1, 28, 28), {}),
    "mlp": ((1, 8, 8), {}), "vgg11": ((3, 32, 32), {}), "vgg16": ((3, 32, 32), {}), "resnet18": ((3, 32, 32), {}),
    "preact_resnet18": ((3, 32, 32), {}),
    "wrn": ((3, 32, 32), {"depth": 10, "widen": 1}),
}


def _info(shape: tuple[int, int, int]) -> DataInfo:
    return DataInfo(shape[0], shape[1], 10, (0.4,) * shape[0], (0.2,) * shape[0])


def _ticket(name: str, ratio: float = 0.5, multiple: int = 1):
    shape, extra = ARCHS[name]
    model = build_model(ModelConfig(name=name, **extra), _info(shape), seed=0).eval()
    kept = keep_channels(channel_scores(model, shape), ratio, multiple)
    return model, shape, kept, channel_masks(model, shape, kept)


@pytest.mark.parametrize("multiple", [1, 8])
@pytest.mark.parametrize("name", sorted(ARCHS))
def test_compact_net_computes_the_masked_full_nets_logits(name, multiple):
    model, shape, kept, masks = _ticket(name, multiple=multiple)
    masked = copy.deepcopy(model)
    MaskSet(masks).apply_(masked)
    small = compact(copy.deepcopy(model), shape, kept).eval()
    x = torch.rand(3, *shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(small(x), masked(x), rtol=1e-4, atol=1e-5)
    assert params(small) < 0.5 * params(model) and macs(small, shape) < 0.5 * macs(model, shape)
    assert small.net.classifier.out_features == 10  # the classifier's outputs are never pruned


@pytest.mark.parametrize("name", ["lenet", "resnet18", "preact_resnet18"])
def test_kept_weights_are_theta0_exactly(name):
    model, shape, kept, masks = _ticket(name)
    full = dict(model.named_parameters())
    small = dict(compact(copy.deepcopy(model), shape, kept).named_parameters())
    assert small.keys() == full.keys()
    for key, value in small.items():
        expected = full[key][masks[key]] if key in masks else full[key].flatten()
        assert torch.equal(value.flatten(), expected.detach()), key  # a sub-tensor of θ0, bit for bit


def test_residual_additions_prune_their_channels_together():
    model, shape, _, masks = _ticket("resnet18")
    _, found = groups(model, shape)
    assert len(found) == 12  # 8 block-internal convs + 4 residual streams (stem/conv2/shortcuts coupled)
    stream = [masks[k].flatten(1).any(1) for k in ("net.stem.0.weight", "net.layers.0.0.conv2.weight",
                                                     "net.layers.0.1.conv2.weight")]
    assert all(torch.equal(stream[0], s) for s in stream[1:]) and not stream[0].all()
    for key in ("net.layers.1.0.conv2.weight", "net.layers.1.0.shortcut.0.weight", "net.layers.1.1.conv2.weight"):
        assert torch.equal(masks[key].flatten(1).any(1), masks["net.layers.1.0.conv2.weight"].flatten(1).any(1))


def test_global_threshold_removes_the_lowest_channels_and_never_empties_a_layer():
    scores = {"a": torch.tensor([0.5, 2.0, 0.1]), "b": torch.tensor([1.0, 0.2, 3.0, 0.9])}
    kept = keep_channels(scores, 3 / 7)
    assert kept["a"].tolist() == [1] and kept["b"].tolist() == [0, 2, 3]
    with pytest.raises(TicketError, match="every channel of a"):
        keep_channels({"a": torch.tensor([0.1, 0.2]), "b": torch.tensor([1.0, 2.0, 3.0, 4.0])}, 0.34)


def test_alignment_keeps_a_multiple_per_group_so_no_ratio_empties_one():
    """#25's decision: with channel_multiple 8 a group keeps at least 8 channels, so LeNet at 0.93 (whose global
    threshold empties conv 1) is a ticket of 8 + 16 + 16 channels, not an error; a group narrower than the multiple
    keeps every channel; the achieved cut is what removed_fraction says (88.6 % here), not the ratio asked."""
    from lth_lightning.pruning.channels import removed_fraction

    model, shape, _, _ = _ticket("lenet")
    scores = channel_scores(model, shape)
    assert {k: len(v) for k, v in scores.items()} == {"net.features.0": 32, "net.features.3": 64, "net.fc.1": 256}
    kept = keep_channels(scores, 0.93, 8)
    assert [len(v) for v in kept.values()] == [8, 16, 16]
    assert removed_fraction(scores, kept) == pytest.approx(1 - 40 / 352)  # 88.6 % removed, 93 % asked
    narrow = keep_channels({"a": torch.arange(6.0), "b": torch.arange(64.0)}, 0.9, 8)
    assert len(narrow["a"]) == 6 and len(narrow["b"]) == 8


def test_aligned_counts_are_multiples_near_the_global_cut():
    scores = {"a": torch.arange(40.0), "b": torch.arange(20.0) + 100, "c": torch.arange(6.0) + 50}
    plain = keep_channels(scores, 0.5)
    kept = keep_channels(scores, 0.5, multiple=8)
    for root, s in scores.items():
        n = len(kept[root])
        assert n == min(len(s), max(8, 8 * round(len(plain[root]) / 8)))  # nearest multiple, never 0, <= width
        assert n % 8 == 0 or n == len(s)
        assert set(kept[root].tolist()) == set(torch.sort(s, descending=True).indices[:n].tolist())  # its best
    assert [len(kept[k]) for k in "abc"] == [8, 16, 6]


@pytest.mark.parametrize("name", ["vgg16", "resnet18"])
def test_aligned_tickets_on_cifar_nets_keep_multiples_of_8(name):
    model, shape, kept, _ = _ticket(name, multiple=8)
    assert all(len(k) % 8 == 0 for k in kept.values())
    assert 0.2 < macs(compact(copy.deepcopy(model), shape, kept), shape) / macs(model, shape) < 0.35


def test_layer_normalisation_keeps_a_small_weight_layer_alive():
    model, shape, _, _ = _ticket("lenet")
    with torch.no_grad():
        model.net.features[0].weight.mul_(1e-3)  # plain global magnitude would remove the whole layer
    kept = keep_channels(channel_scores(model, shape), 0.5)
    assert 0 < len(kept["net.features.0"]) < 32


def test_an_untraceable_architecture_gets_one_clear_error():
    class Opaque(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.classifier = nn.Conv2d(1, 4, 3), nn.Linear(4, 2)

        def forward(self, x):
            raise RuntimeError("needs a batch of two")

    with pytest.raises(TicketError, match="channel pruning cannot trace Opaque"):
        channel_scores(Opaque(), (1, 8, 8))


@pytest.mark.parametrize("bad", [{"name": "imp"}, {"criterion": "random"}])
def test_channel_structure_refuses_what_it_cannot_do(bad):
    with pytest.raises(ConfigError, match="structure=channel"):
        PruneConfig(**{"name": "oneshot", "structure": "channel", **bad})


def test_compact_classifier_checkpoints_and_reloads_weights_only(tmp_path, make_cfg):
    cfg = make_cfg("experiment=fast_ticket", "attack=none", "pipeline.find.attack=none")
    dm = build_datamodule(cfg.data)
    dm.setup()
    info = dm.info
    full = build_model(cfg.model, info, seed=0)
    kept = keep_channels(channel_scores(full, info.shape), 0.5)
    channels = {k: v.tolist() for k, v in kept.items()}
    module = Classifier(asdict(cfg.model), asdict(info), asdict(cfg.optim), asdict(cfg.attack), asdict(cfg.eval),
                        channels=channels)
    trainer = L.Trainer(max_epochs=1, limit_train_batches=2, limit_val_batches=1, logger=False,
                        enable_progress_bar=False, enable_checkpointing=False, default_root_dir=tmp_path)
    trainer.fit(module, datamodule=dm)
    path = tmp_path / "compact.ckpt"
    trainer.save_checkpoint(path)
    assert torch.load(path, weights_only=True)["hyper_parameters"]["channels"] == channels
    again = Classifier.load_from_checkpoint(path, weights_only=True)
    x = torch.rand(2, *info.shape)
    with torch.no_grad():
        assert torch.equal(again.eval()(x), module.eval()(x))
    assert params(again.model) == params(module.model) < params(full)
    assert module.trained_sparsity == pytest.approx(1 - _weights(module.model) / _weights(full))


def _weights(model: nn.Module) -> int:
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear))


def test_tracing_and_counting_leave_the_net_as_it_was():
    model = build_model(ModelConfig(name="resnet18"), _info((3, 32, 32)), seed=0).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    macs(model, (3, 32, 32))
    channel_scores(model, (3, 32, 32))
    assert all(m.training for m in model.modules())  # BatchNorm keeps training its statistics
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # running stats untouched


def test_fast_ticket_with_channel_tickets_trains_compact_arms(make_cfg, tmp_path, capsys):
    from lth_lightning.pruning import load_ticket
    from lth_lightning.pruning.cli import main as tickets_cli
    from lth_lightning.tasks.fast_ticket import run_fast_ticket

    summary = run_fast_ticket(make_cfg(
        "experiment=fast_ticket", "prune.structure=channel", "prune.ratio=0.5", "pipeline.find.epochs=1",
        "pipeline.ticket_epochs=1", "pipeline.dense_epochs=1", "trainer.limit_train_batches=2", "attack.steps=2"))
    arms = summary.arms
    # half the channels: about three quarters of the weights, and of the MACs, go
    assert 0.6 < arms["ticket"].sparsity / 100 < 0.85 and arms["reinit"].sparsity == arms["ticket"].sparsity
    assert arms["ticket"].macs_per_pass < 0.4 * arms["dense"].macs_per_pass
    assert arms["ticket"].total.passes == arms["dense"].total.passes  # same passes, each one cheaper
    assert arms["ticket"].total.macs < 0.4 * arms["dense"].total.macs
    from lth_lightning.reports.summary import _pipeline_totals

    # the compact arms are costed in MACs (this tiny run's ticket collapses, so its summary shows no pipeline saving)
    assert _pipeline_totals(arms["ticket"], arms["dense"]).macs is not None
    ticket_path = next((tmp_path / "cache").glob("find-*/ticket.pt"))
    ticket = load_ticket(ticket_path)
    assert ticket.structured and ticket.provenance["structure"] == "channel"
    # what was achieved, beside what was asked: channels after rounding, and the weights that takes with it
    prov = ticket.provenance
    widths = {"net.features.0": 64, "net.features.3": 128, "net.fc.1": 512}  # LeNet at width 2
    kept = sum(len(v) for v in ticket.channels.values())
    assert prov["sparsity"] == 0.5 and prov["channels_removed"] == pytest.approx(1 - kept / sum(widths.values()),
                                                                                  abs=1e-4)
    assert prov["weights_removed"] == pytest.approx(arms["ticket"].sparsity / 100, abs=1e-3)
    assert "depth" not in prov["model"] and "shape" not in prov["data"]  # WRN's depth, synthetic data: not applied
    achieved = (f"(achieved: {100 * prov['channels_removed']:.1f} % of channels removed (asked 50 %), "
                f"{100 * prov['weights_removed']:.1f} % of the conv and linear weights)")
    assert achieved in (tmp_path / "summary.md").read_text()
    assert tickets_cli(["show", str(ticket_path)]) == 0
    shown = capsys.readouterr().out
    assert "parameters: dense" in shown and "MACs per example: dense" in shown
    assert f"channels removed: {prov['channels_removed']:.1%}" in shown and "asked 0.5" in shown
    assert f"removes {prov['weights_removed']:.1%} of the conv and linear weights" in shown
    # task=eval of the compacted ticket's checkpoint: its weight sparsity against the full net, as training says
    from lth_lightning.tasks.evaluate import run_eval

    ckpt = next((tmp_path / "cache").glob("ticket-*/checkpoints/last.ckpt"))
    evaluated = run_eval(make_cfg("experiment=fast_ticket", "task=eval", f"ckpt_path={ckpt}"))
    assert evaluated.sparsity == pytest.approx(arms["ticket"].sparsity, abs=0.05)  # the summary rounds to 0.1


def test_frontier_puts_unstructured_and_channel_tickets_side_by_side(make_cfg, tmp_path):
    from lth_lightning.tasks.frontier import run_frontier

    result = run_frontier(make_cfg(
        "experiment=frontier", "frontier.structures=[unstructured,channel]", "frontier.budgets=[1]",
        "frontier.lrs=[0.2]", "frontier.seeds=[0]", "pipeline.find.epochs=1", "trainer.limit_train_batches=2",
        "attack.steps=2", "data.test_subset=64"))
    assert {r.arm for r in result.runs} == {"ticket", "ticket_channel", "dense"}
    finds = {r.arm: r.find_stage for r in result.runs if r.arm != "dense"}
    assert finds["ticket"] != finds["ticket_channel"]  # found separately, from the same θ0 and seed
    first = {r.arm: r.points[0] for r in result.runs}
    assert first["ticket"].passes == first["ticket_channel"].passes  # same schedule and finding ...
    assert first["ticket_channel"].macs < 0.5 * first["ticket"].macs  # ... each pass cheaper
    assert all(lv.unit == "macs" and set(lv.verdicts) == {"ticket", "ticket_channel"} for lv in result.levels)
    assert "The channel ticket" in result.headline
    assert "ticket_channel MACs" in (tmp_path / "frontier.md").read_text()


def test_kept_channels_of_another_architecture_are_refused():
    _, _, kept, _ = _ticket("lenet")
    other = build_model(ModelConfig(name="vgg11"), _info((3, 32, 32)), seed=0)
    with pytest.raises(TicketError, match=r"groups .* are not this model"):
        compact(other, (3, 32, 32), kept)
    model, shape, kept, _ = _ticket("lenet")
    kept["net.features.0"] = torch.tensor([0, 40])  # LeNet's first conv has 32 channels
    with pytest.raises(TicketError, match=r"keeps channels net\.features\.0 does not have"):
        compact(model, shape, kept)
