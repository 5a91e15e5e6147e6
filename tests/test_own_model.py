"""#33: the ticket callback and adversarial training on modules this package does not define -- with BatchNorm and
without, a classifier that is not called ``classifier``, a frozen layer -- and the example script as written."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lth_lightning.attacks import adversarial_batch, make_attack
from lth_lightning.callbacks import LotteryTicket
from lth_lightning.pruning import load_ticket
from lth_lightning.pruning.reset import snapshot

ROOT = Path(__file__).resolve().parents[1]
QUIET = {"logger": False, "enable_progress_bar": False, "enable_model_summary": False, "accelerator": "cpu"}


def bn_cnn() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1),
                         nn.BatchNorm2d(16), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))


def plain_cnn() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(16 * 64, 32), nn.ReLU(),
                         nn.Linear(32, 10))


class Headed(nn.Module):
    """A classifier called ``head.out`` (not ``classifier``)."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Flatten())
        self.head = nn.Sequential(nn.Linear(8 * 64, 32), nn.ReLU())
        self.head.add_module("out", nn.Linear(32, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def frozen_cnn() -> nn.Module:
    net = plain_cnn()
    net[0].requires_grad_(False)  # a frozen stem, as in fine-tuning
    return net


ZOO = {"batchnorm": bn_cnn, "no_batchnorm": plain_cnn, "head_out": Headed, "frozen": frozen_cnn}


class User(L.LightningModule):
    """A user's module: its own attribute name for the net, its own optimiser, adversarial_batch in its step."""

    def __init__(self, net: nn.Module, attack: str = "fgsm") -> None:
        super().__init__()
        self.backbone, self.attack, self.passes = net, make_attack(attack, eps=0.1), 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

    def training_step(self, batch, _):
        loss, _, passes = adversarial_batch(self.backbone, *batch, self.attack)
        self.passes += passes
        return loss

    def configure_optimizers(self):
        params = [p for p in self.parameters() if p.requires_grad]
        return torch.optim.SGD(params, lr=0.05, momentum=0.9, weight_decay=0.05)  # decay would regrow pruned weights


def loader(n: int = 64) -> DataLoader:
    g = torch.Generator().manual_seed(0)
    return DataLoader(TensorDataset(torch.rand(n, 1, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g)),
                      batch_size=16)


class Zeros(L.Callback):
    """After every optimizer step: every pruned weight of the ticket is exactly zero."""

    def __init__(self, ticket: LotteryTicket) -> None:
        self.ticket, self.steps = ticket, 0

    def on_train_batch_end(self, trainer, pl_module, *args):
        params = dict(pl_module.backbone.named_parameters())
        for name, mask in self.ticket.masks.items():
            assert torch.count_nonzero(params[name][~mask]) == 0, name
        self.steps += 1


@pytest.mark.parametrize("kind", list(ZOO))
def test_a_ticket_in_a_users_module_is_theta0_under_its_mask_and_stays_masked(kind, tmp_path):
    torch.manual_seed(0)
    module = User(ZOO[kind]())
    theta0 = snapshot(module.backbone)
    ticket = LotteryTicket(ratio=0.8, net="backbone")
    L.Trainer(max_epochs=1, callbacks=[ticket], default_root_dir=tmp_path, **QUIET).fit(module, loader())
    assert ticket.masks.sparsity()["overall"] == pytest.approx(0.8, abs=0.01)
    masks, now = ticket.masks.as_dict(), snapshot(module.backbone)
    for key, value in theta0.items():  # bit-exact reset: θ0 where kept, 0 where cut; BN statistics back to θ0
        expected = value * masks[key] if key in masks else value
        assert torch.equal(now[key], expected), key
    if kind == "frozen":
        assert not module.backbone[0].weight.requires_grad and "0.weight" in masks  # frozen, and pruned all the same
    zeros = Zeros(ticket)
    trainer = L.Trainer(max_epochs=2, callbacks=[ticket, zeros], default_root_dir=tmp_path, **QUIET)
    trainer.fit(module, loader())
    assert zeros.steps == 8 and module.passes > 0
    ckpt = tmp_path / "ticket.ckpt"
    trainer.save_checkpoint(ckpt)
    state = torch.load(ckpt, weights_only=True)  # masks and θ0 travel as plain tensors
    (saved,) = [v for k, v in state["callbacks"].items() if "LotteryTicket" in k]
    assert saved["levels_done"] == 1 and all(torch.equal(saved["masks"][k], m) for k, m in masks.items())
    resumed = LotteryTicket(ratio=0.8, net="backbone")  # a new process: the ticket comes back from the checkpoint
    more = User(ZOO[kind]())
    L.Trainer(max_epochs=3, callbacks=[resumed, Zeros(resumed)], default_root_dir=tmp_path, **QUIET).fit(
        more, loader(), ckpt_path=str(ckpt))
    assert not resumed.finding and resumed.masks.as_dict().keys() == masks.keys()


def test_rewind_and_reinit_reset_to_what_they_name(tmp_path):
    class At(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, *args):
            if trainer.global_step == 2:
                self.state = snapshot(pl_module.backbone)

    torch.manual_seed(0)
    module, at = User(bn_cnn()), At()
    rewind = LotteryTicket(ratio=0.5, reset="rewind", rewind_step=2, net="backbone")
    L.Trainer(max_epochs=1, callbacks=[rewind, at], default_root_dir=tmp_path, **QUIET).fit(module, loader())
    masks, now = rewind.masks.as_dict(), snapshot(module.backbone)
    assert all(torch.equal(now[k], v * masks[k] if k in masks else v) for k, v in at.state.items())

    torch.manual_seed(0)
    module = User(bn_cnn())
    theta0 = snapshot(module.backbone)
    reinit = LotteryTicket(ratio=0.5, reset="reinit", net="backbone", seed=7)
    L.Trainer(max_epochs=1, callbacks=[reinit], default_root_dir=tmp_path, **QUIET).fit(module, loader())
    torch.manual_seed(7)
    fresh = bn_cnn()  # the same layers' own default init, from the callback's seed
    masks, now = reinit.masks.as_dict(), snapshot(module.backbone)
    assert all(torch.equal(now[k], fresh.state_dict()[k] * masks[k]) for k in masks)
    assert not torch.equal(now["0.weight"], theta0["0.weight"] * masks["0.weight"])


def test_a_channel_ticket_compacts_a_users_net_to_its_theta0_slices(tmp_path):
    torch.manual_seed(0)
    module = User(bn_cnn())
    theta0 = snapshot(module.backbone)
    ticket = LotteryTicket(ratio=0.5, structure="channel", input_shape=(1, 8, 8), net="backbone")
    L.Trainer(max_epochs=1, callbacks=[ticket], default_root_dir=tmp_path, **QUIET).fit(module, loader())
    kept = {k: v.tolist() for k, v in ticket.kept.items()}
    first = module.backbone[0]
    assert first.out_channels == 8 and len(ticket.masks) == 0  # compact: half the channels, nothing left to mask
    rows = next(v for k, v in kept.items() if k.startswith("0"))
    assert torch.equal(first.weight, theta0["0.weight"][rows])  # θ0's rows of the kept channels, bit for bit
    L.Trainer(max_epochs=1, default_root_dir=tmp_path, **QUIET).fit(module, loader())  # the small net trains
    ticket.save(tmp_path / "ticket.pt")
    assert load_ticket(tmp_path / "ticket.pt").structured


def _example():
    spec = importlib.util.spec_from_file_location("own_model", ROOT / "examples" / "own_model.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)  # type: ignore[union-attr]
    return example


def test_the_example_finds_and_pgd_trains_a_ticket_in_its_own_module():
    text = (ROOT / "examples" / "own_model.py").read_text().split('"""', 2)[2]  # after the module docstring
    code = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith(
        ("#", "import ", "from ", "if __name__", "main(*sys"))]
    assert len(code) <= 40  # the user's code (the module, two nets, the data, the two fits, the test) in 40 lines
    assert _example().main("own") > 0.15  # robust, well above chance (10 %) after 3 PGD epochs


@pytest.mark.slow  # MobileNetV3 on the CPU: ~1 minute
def test_the_example_runs_a_torchvision_net_the_same_way():
    assert 0.0 <= _example().main("mobilenet") <= 1.0  # BatchNorm, SE blocks, Hardswish: the same callback and step


# -- model._target_: every task on a network this package does not define ---------------------------------------------
TARGET = ["model._target_=examples.nets.small_cnn", "+model.args.width=8",  # the CLI adds the + itself
          "data._target_=examples.data.digits_module"]  # a LightningDataModule of the user's
TINY_TASK = {
    "train": ["trainer.max_epochs=1", "attack=fgsm", "attack.eps=0.1"],
    "fast_ticket": ["experiment=fast_ticket", "pipeline.find.epochs=1", "pipeline.ticket_epochs=1",
                    "pipeline.dense_epochs=1", "pipeline.arms=[ticket,dense,reinit]"],
    "frontier": ["experiment=frontier", "frontier.budgets=[1]", "frontier.lrs=[0.2]", "pipeline.find.epochs=1",
                 "frontier.final_samples=16", "frontier.final_steps=3"],
    "search": ["experiment=search", "search.trials=2", "search.startup_trials=1", "search.confirm=1",
               "search.confirm_seeds=[1,2]", "search.space.budget=[1]", "search.space.width=[1.0]",
               "frontier.budgets=[1]", "frontier.lrs=[0.2]", "pipeline.find.epochs=1", "frontier.final_samples=16",
               "frontier.final_steps=3", "search.space.ticket=[none,unstructured]"],
}


@pytest.mark.parametrize("task", list(TINY_TASK))
def test_every_task_runs_on_a_model_of_your_own(make_cfg, task, tmp_path):
    from lth_lightning import cli
    from lth_lightning.modules import Classifier
    from lth_lightning.tasks.evaluate import run_eval

    cli.run(compose_raw(tmp_path, *TINY_TASK[task], *TARGET, "trainer.limit_train_batches=3", "data.test_subset=32"))
    ckpt = next(tmp_path.rglob("best-epoch*.ckpt"))
    net = Classifier.load_from_checkpoint(ckpt, weights_only=True).model.net  # rebuilt from the plain hparams
    assert isinstance(net, nn.Sequential) and net[0].out_channels == 8  # small_cnn(width=8), not a package model
    evaluated = run_eval(make_cfg("task=eval", f"ckpt_path={ckpt}", *TARGET))
    assert evaluated.test.clean is not None


def compose_raw(tmp_path, *overrides):
    from tests.conftest import FAST, compose_cfg

    return compose_cfg([*FAST, f"pipeline.cache_dir={tmp_path / 'cache'}", *overrides], tmp_path)


def test_what_a_model_of_your_own_cannot_do_is_one_line_before_anything_trains(tmp_path, monkeypatch, capsys):
    from lth_lightning import cli
    from lth_lightning.pruning import channels

    def untraceable(*args, **kwargs):
        raise RuntimeError("graph break\nmore")

    monkeypatch.setattr(channels, "groups", untraceable)
    for args, expected in [
        (["experiment=fast_ticket", "prune.structure=channel", *TARGET],
         "error: a channel ticket needs torch-pruning to trace model._target_=examples.nets.small_cnn, and it cannot "
         "(RuntimeError: graph break); use prune.structure=unstructured"),
        (["model._target_=examples.nets.small_cnn", "model.width=0.5"],
         "error: model.width is not read by task=train: model._target_=examples.nets.small_cnn builds its own net"),
        (["model._target_=examples.nets.nothing"], "error: model._target_=examples.nets.nothing does not import"),
        (["model._target_=examples.nets.small_cnn", "model.args.in_channels=3"],
         "error: model._target_=examples.nets.small_cnn does not take this data's (1, 8, 8) images"),
        (["model._target_=examples.nets.small_cnn", "model.args.num_classes=5"],
         "error: model._target_=examples.nets.small_cnn gives (5,) outputs an image; this data has 10 classes"),
        (["experiment=search", "search.space.ticket=[none]", "model._target_=examples.nets.small_cnn"],
         "error: search.space.width=[0.5, 1.0] scales"),
        (["model._target_=examples.nets.small_cnn", "model.args.depth=3"],  # as typed: the CLI makes it ++
         "error: model._target_=examples.nets.small_cnn(depth, num_classes, in_channels): small_cnn() got an "
         "unexpected keyword argument 'depth'"),
    ]:
        monkeypatch.setattr("sys.argv", ["lth-lightning", *args, f"hydra.run.dir={tmp_path / 'run'}"])
        with pytest.raises(SystemExit) as exit_:
            cli.main()
        err = capsys.readouterr().err.strip().splitlines()
        assert exit_.value.code == 2 and len(err) == 1 and err[0].startswith(expected), err
        assert not any((tmp_path / "run").glob("*"))  # refused before Hydra wrote anything


def test_data_of_your_own_is_read_once_split_like_any_dataset_and_checked(make_cfg, tmp_path, monkeypatch, capsys):
    """A (train, test) pair and a LightningDataModule give the same 8-bit splits (exact: digits are 17 grey levels);
    our seeded validation split applies; images outside [0, 1] are one line before anything trains."""
    from lth_lightning import cli
    from lth_lightning.data import build_datamodule

    pair = build_datamodule(make_cfg("data._target_=examples.data.digits_pair").data)
    module = build_datamodule(make_cfg("data._target_=examples.data.digits_module").data)
    for dm in (pair, module):
        dm.setup("fit")
    assert torch.equal(pair.test_set.images, module.test_set.images)
    assert torch.equal(pair.train_set.images, module.train_set.images)  # the dataset's order, not its shuffled loader
    assert torch.equal(pair.val_set.labels, module.val_set.labels)  # so our seeded split decides what validates
    assert len(pair.train_set) + len(pair.val_set) == 1500 and len(pair.val_set) == 150  # val_fraction 0.1
    assert pair.info.shape == (1, 8, 8) and pair.info.num_classes == 10
    from examples.data import digits_pair

    train, _ = digits_pair()
    assert torch.equal(torch.stack([x for x, _ in train]).mul(255).round().to(torch.uint8).sort(0).values,
                       torch.cat([pair.train_set.images, pair.val_set.images]).sort(0).values)  # 8-bit, exact
    monkeypatch.setattr("sys.argv", ["lth-lightning", "data._target_=examples.data.digits_pair", "data.args.flip=false",
                                     f"hydra.run.dir={tmp_path / 'run'}"])  # a factory argument, as typed
    monkeypatch.setattr("examples.data._digits", lambda flip: tuple(
        TensorDataset(torch.full((4, 1, 8, 8), 2.0), torch.zeros(4, dtype=torch.long)) for _ in range(2)))
    with pytest.raises(SystemExit):
        cli.main()
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: data._target_=examples.data.digits_pair: images must be in [0, 1] (the model normalises); "
                   "got [2, 2]"]


def test_imp_levels_prune_at_the_end_of_each_finding_fit_then_train(tmp_path):
    torch.manual_seed(0)
    module = User(plain_cnn())
    theta0 = snapshot(module.backbone)
    ticket = LotteryTicket(ratio=0.64, levels=2, net="backbone")  # 40 % of what is left, twice
    seen = []
    for _ in range(3):
        L.Trainer(max_epochs=1, callbacks=[ticket], default_root_dir=tmp_path, **QUIET).fit(module, loader())
        seen.append(round(ticket.masks.sparsity()["overall"], 2))
    assert seen == [0.4, 0.64, 0.64] and not ticket.finding  # the third fit trains the 2-level ticket
    nested = ticket.found.masks  # the second level's mask keeps only weights the first kept, reset to θ0
    assert all(torch.equal(ticket.found.weights[k], theta0[k] * m) for k, m in nested.items())


def test_the_overfitting_guard_stops_a_users_run_from_its_logged_metric(tmp_path):
    from lth_lightning.callbacks import CatastrophicOverfitting

    class Falling(User):
        def validation_step(self, batch, _):
            self.log("val/robust_acc", [0.5, 0.1, 0.1][self.current_epoch])  # a collapse after epoch 1

    guard = CatastrophicOverfitting(drop=20, metric="val/robust_acc")
    trainer = L.Trainer(max_epochs=3, callbacks=[guard], default_root_dir=tmp_path, **QUIET)
    trainer.fit(Falling(plain_cnn()), loader(), loader(16))
    assert guard.triggered and trainer.current_epoch == 2  # stopped after the second epoch's check


def test_a_torchvision_factory_gets_the_datas_classes():
    from lth_lightning.config import ModelConfig
    from lth_lightning.data import DataInfo
    from lth_lightning.models import build_model

    info = DataInfo(3, 32, 7, (0.5,) * 3, (0.25,) * 3)
    net = build_model(ModelConfig(_target_="torchvision.models.resnet18"), info, seed=0)
    again = build_model(ModelConfig(_target_="torchvision.models.resnet18"), info, seed=0)  # θ0 of the seed
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), again.state_dict().values(), strict=True))
    assert net.eval()(torch.rand(2, 3, 32, 32)).shape == (2, 7) and net.net.fc.out_features == 7  # via **kwargs


def test_a_compacted_channel_ticket_resumes_after_restore(tmp_path):
    torch.manual_seed(0)
    module = User(bn_cnn())
    ticket = LotteryTicket(ratio=0.5, structure="channel", input_shape=(1, 8, 8), net="backbone")
    L.Trainer(max_epochs=1, callbacks=[ticket], default_root_dir=tmp_path, **QUIET).fit(module, loader())
    trainer = L.Trainer(max_epochs=1, callbacks=[ticket], default_root_dir=tmp_path, **QUIET)
    trainer.fit(module, loader())
    trainer.save_checkpoint(tmp_path / "compact.ckpt")
    again = LotteryTicket(ratio=0.5, structure="channel", input_shape=(1, 8, 8), net="backbone")
    fresh = User(bn_cnn())  # a new process builds the full net
    again.restore(tmp_path / "compact.ckpt", fresh)
    assert fresh.backbone[0].out_channels == module.backbone[0].out_channels == 8 and not again.finding
    L.Trainer(max_epochs=2, callbacks=[again], default_root_dir=tmp_path, **QUIET).fit(
        fresh, loader(), ckpt_path=str(tmp_path / "compact.ckpt"))
    assert fresh.backbone[0].out_channels == 8  # trained on, compact, no second prune


def test_make_attack_refuses_what_belongs_to_the_training_step():
    with pytest.raises(ValueError, match="beta belong to the training step"):
        make_attack("trades", eps=0.1, beta=1.0)
