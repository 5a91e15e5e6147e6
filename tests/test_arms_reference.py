"""Every arm trains what its name says: the real find -> prune -> arm path against ``tests/reference.py``.

``reference.py`` is plain PyTorch written from each arm's definition and shares no code with the project. Here the
project's own pipeline (``find_ticket`` and ``train_arm``, as fast_ticket and the frontier call them) runs each arm
for a few steps while a callback records what it trained on (the batches, the RNG state before each step, the
starting and final weights). The reference then builds the arm's starting weights from θ0 by its definition and
replays the same steps; the project's weights must match. Two arms once shipped wrong and hand-made tickets missed
both: controls that started from the ticket's zeroed weights, and FGSM-RS stepping ε/3. Each check here fails on
that code.
"""

from __future__ import annotations

import copy
import dataclasses

import lightning as L
import pytest
import torch

from lth_lightning.config import Config, validate, with_overrides
from lth_lightning.data import build_datamodule
from lth_lightning.models import build_model
from lth_lightning.pruning import load_ticket
from lth_lightning.pruning.reset import snapshot
from lth_lightning.stages import runner
from lth_lightning.stages.arms import find_ticket, train_arm
from lth_lightning.tasks.frontier import budget_config
from tests import reference as ref
from tests.conftest import FAST, compose_cfg

STEPS = 3  # optimizer steps each arm is replayed for
ROOTS = ("net.features.0", "net.features.3", "net.fc.1")  # LeNet's prunable channel groups
TOL = {"atol": 2e-6, "rtol": 1e-5}


class Recorder(L.Callback):
    """What a stage trained: start and end weights, and each step's batch and RNG state (read before the attack)."""

    def __init__(self) -> None:
        self.batches: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.rng: list[torch.Tensor] = []
        self.start: dict[str, torch.Tensor] = {}
        self.end: dict[str, torch.Tensor] = {}
        self.masks: dict[str, torch.Tensor] = {}
        self.step = 0.0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.start = snapshot(pl_module.model)
        self.masks = {k: v.clone() for k, v in pl_module.masks.items()}
        attack = pl_module.train_attack
        self.step = attack.step_size if attack is not None else 0.0

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        self.batches.append((batch[0].clone(), batch[1].clone()))
        self.rng.append(torch.get_rng_state())

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.end = snapshot(pl_module.model)  # before the fit-end prune and the test's best-checkpoint load


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """``run(fn)`` runs ``fn`` with every stage it trains recorded; returns (fn's result, [Recorder per stage])."""
    patch = pytest.MonkeyPatch()
    stages: list[Recorder] = []
    build = runner.build_trainer

    def recording(tc, root, epochs, callbacks, logger, *args):
        stages.append(Recorder())
        return build(tc, root, epochs, [*callbacks, stages[-1]], logger, *args)

    patch.setattr(runner, "build_trainer", recording)

    def run(fn):
        stages.clear()
        out = fn()
        return out, list(stages)

    yield run
    patch.undo()


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """Digits, LeNet, PGD-2 at ε 0.2; every stage 3 steps, small validation and test."""
    tmp = tmp_path_factory.mktemp("arms")

    def make(*overrides: str, experiment: str = "fast_ticket") -> Config:
        raw = compose_cfg([*FAST, f"experiment={experiment}", f"pipeline.cache_dir={tmp / 'cache'}",
                           "model.width=1", "attack.steps=2", "pipeline.find.epochs=1", "optim.warmup_epochs=0",
                           f"trainer.limit_train_batches={STEPS}", "trainer.limit_val_batches=1",
                           "eval.val_robust_samples=16", "data.test_subset=16", "eval.autoattack=off", *overrides],
                          tmp)
        return validate(raw)

    return make


def _theta0(cfg: Config, info) -> dict[str, torch.Tensor]:
    return snapshot(build_model(cfg.model, info, seed=cfg.seed))


def _prunable(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Conv and linear weights (the classifier included, as the paper prunes it)."""
    return {k: v for k, v in state.items() if k.endswith(".weight") and v.dim() >= 2}


def _attack_fn(cfg: Config, steps_per_epoch: int):
    """The reference attack of ``cfg.attack`` at the documented step, ε ramp included."""
    a = cfg.attack

    def make_adv(i: int, model, x, y):
        factor = ref.eps_factor(i, steps_per_epoch, a.eps_warmup_epochs) if a.eps_warmup_epochs else None
        model.train(a.bn_mode == "train")
        if a.name == "fgsm":
            return ref.fgsm(model, x, y, a.eps, factor=factor)
        if a.name == "fgsm_rs":
            return ref.fgsm_rs(model, x, y, a.eps, 1.25 * a.eps, factor=factor)
        if a.name == "n_fgsm":
            return ref.n_fgsm(model, x, y, a.eps, noise=2.0, alpha=1.0, factor=factor)
        if a.name == "trades":
            return ref.trades_adv(model, x, a.eps, a.step_size, a.steps, factor=factor)
        return ref.pgd(model, x, y, a.eps, a.step_size, a.steps, factor=factor)

    return make_adv


def _replay(cfg: Config, rec: Recorder, start: dict[str, torch.Tensor], net: torch.nn.Module,
            masks: dict[str, torch.Tensor] | None = None, attack_fn=None) -> dict[str, torch.Tensor]:
    """The reference's training of ``start`` on the recorded steps; returns its final weights."""
    model = copy.deepcopy(net)
    model.load_state_dict(start)
    o = cfg.optim
    if o.name == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay,
                              nesterov=o.nesterov)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=o.lr, weight_decay=o.weight_decay)
    n = len(rec.batches)
    factors = [ref.lr_factor(i, n, n, o.schedule, milestones=o.milestones, gamma=o.gamma,
                             warmup_epochs=o.warmup_epochs, peak=o.peak) for i in range(n)]
    beta = cfg.attack.beta if cfg.attack.name == "trades" else None
    ref.train_steps(model, rec.batches, rec.rng, attack_fn or _attack_fn(cfg, n), opt, factors, masks, beta)
    return snapshot(model)


def _assert_same(project: dict[str, torch.Tensor], reference: dict[str, torch.Tensor], what: str) -> None:
    assert set(project) == set(reference), what
    for key in project:
        assert torch.allclose(project[key], reference[key], **TOL), f"{what}: {key} differs"


@pytest.fixture(scope="module")
def unstructured(base, recorded):
    """The finding (FGSM, LR 0.01, 80 % layer-normalised one-shot, reset to θ0), recorded, and its data."""
    cfg = base()
    dm = build_datamodule(cfg.data)
    finding, (find_rec,) = recorded(lambda: find_ticket(cfg, dm, cfg.pipeline.find.lr))
    return cfg, dm, finding, find_rec


@pytest.fixture(scope="module")
def channel(base, recorded):
    cfg = base("prune.structure=channel", "prune.ratio=0.5")
    dm = build_datamodule(cfg.data)
    finding, _ = recorded(lambda: find_ticket(cfg, dm, cfg.pipeline.find.lr))
    return cfg, dm, finding


def _arm(cfg, dm, arm, finding, recorded, lr: float | None = None) -> Recorder:
    run_cfg = dataclasses.replace(cfg, optim=dataclasses.replace(cfg.optim, lr=lr)) if lr else cfg
    _, (rec,) = recorded(lambda: train_arm(run_cfg, dm, arm, f"{arm}-ref", finding))
    return rec


def test_ticket_and_reinit_are_the_reference_mask_on_theta0_and_on_a_fresh_init(unstructured, recorded):
    cfg, dm, finding, find_rec = unstructured
    theta0 = _theta0(cfg, dm.info)
    masks = ref.layer_normalized_masks(_prunable(find_rec.end), cfg.prune.ratio)  # from the trained finding weights
    ticket = _arm(cfg, dm, "ticket", finding, recorded)
    _assert_same(ticket.start, ref.masked(theta0, masks), "ticket start")
    net = build_model(cfg.model, dm.info)
    _assert_same(ticket.end, _replay(cfg, ticket, ref.masked(theta0, masks), net, masks), "ticket trained")
    fresh = snapshot(build_model(cfg.model, dm.info, seed=cfg.prune.reinit_seed))
    reinit = _arm(cfg, dm, "reinit", finding, recorded)
    _assert_same(reinit.start, ref.masked(fresh, masks), "reinit start")
    _assert_same(reinit.end, _replay(cfg, reinit, ref.masked(fresh, masks), net, masks), "reinit trained")


def test_random_mask_keeps_theta0_values_at_the_tickets_per_layer_counts(unstructured, recorded):
    """Each kept weight starts at its θ0 value, never at the 0 the ticket file holds where the ticket cut."""
    cfg, dm, finding, _ = unstructured
    theta0, ticket = _theta0(cfg, dm.info), load_ticket(finding[1].ticket)
    rec = _arm(cfg, dm, "random_mask", finding, recorded)
    drawn = {k: v.bool() for k, v in rec.masks.items() if v.dim() >= 2}
    assert drawn.keys() == _prunable(ticket.masks).keys()
    for key, mask in drawn.items():
        assert int(mask.sum()) == int(ticket.masks[key].sum()), key  # the ticket's per-layer count ...
        assert not torch.equal(mask, ticket.masks[key].bool()), key  # ... at other positions
        kept = rec.start[key][mask]
        assert torch.equal(kept, theta0[key][mask]), key  # θ0 values, unmasked
        assert (kept == 0).float().mean() <= (theta0[key] == 0).float().mean(), key  # no kept weight zeroed
    _assert_same(rec.start, ref.masked(theta0, drawn), "random_mask start")
    net = build_model(cfg.model, dm.info)
    _assert_same(rec.end, _replay(cfg, rec, rec.start, net, drawn), "random_mask trained")
    again = _arm(cfg, dm, "random_mask", finding, recorded, lr=2 * cfg.optim.lr)  # another LR: the same control net
    assert all(torch.equal(again.masks[k], rec.masks[k]) for k in rec.masks)


def _kept_rows(start: dict[str, torch.Tensor], theta0: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Which θ0 channel each compact row is, found by value (θ0's rows are distinct)."""
    out = {}
    for root in ROOTS:
        full, small = theta0[f"{root}.bias"], start[f"{root}.bias"]
        out[root] = torch.tensor([int((full == b).nonzero()[0]) for b in small])
    return out


def test_channel_ticket_and_random_channels_are_theta0_slices_with_no_dead_unit(channel, recorded):
    cfg, dm, finding = channel
    theta0, ticket = _theta0(cfg, dm.info), load_ticket(finding[1].ticket)
    net = build_model(cfg.model, dm.info)
    rec = _arm(cfg, dm, "ticket", finding, recorded)
    own = {k: v.sort().values for k, v in ticket.channels.items()}
    _assert_same(rec.start, ref.slice_lenet(theta0, own, "net."), "channel ticket start")
    _assert_same(rec.end, _replay(cfg, rec, rec.start, _compact_like(net, rec.start)), "channel ticket trained")
    control = _arm(cfg, dm, "random_channels", finding, recorded)
    drawn = _kept_rows(control.start, theta0)
    assert {k: len(v) for k, v in drawn.items()} == {k: len(v) for k, v in own.items()}  # the ticket's counts
    assert any(not torch.equal(drawn[k].sort().values, own[k]) for k in own)  # other channels
    _assert_same(control.start, ref.slice_lenet(theta0, drawn, "net."), "random_channels start")  # unmasked θ0
    assert ref.dead_rows(control.start, ROOTS) == ref.dead_rows(ref.slice_lenet(theta0, drawn, "net."), ROOTS) \
        == dict.fromkeys(ROOTS, 0)
    _assert_same(control.end, _replay(cfg, control, control.start, _compact_like(net, control.start)),
                 "random_channels trained")
    assert ref.dead_rows(control.end, ROOTS) == dict.fromkeys(ROOTS, 0)


def test_narrow_is_a_fresh_default_init_of_the_tickets_shape(channel, recorded):
    cfg, dm, finding = channel
    theta0, ticket = _theta0(cfg, dm.info), load_ticket(finding[1].ticket)
    rec = _arm(cfg, dm, "narrow", finding, recorded)
    for root in ROOTS:
        weight = rec.start[f"{root}.weight"]
        assert weight.shape[0] == len(ticket.channels[root])
        bound = 1 / weight[0].numel() ** 0.5  # PyTorch's default U(±1/√fan_in), fan-in of the narrow layer
        assert 0.8 * bound < weight.abs().max() <= bound, root
        assert not torch.isin(rec.start[f"{root}.bias"], theta0[f"{root}.bias"]).any(), root  # not θ0's values
    net = _compact_like(build_model(cfg.model, dm.info), rec.start)
    _assert_same(rec.end, _replay(cfg, rec, rec.start, net), "narrow trained")
    again = _arm(cfg, dm, "narrow", finding, recorded, lr=2 * cfg.optim.lr)
    assert all(torch.equal(again.start[k], rec.start[k]) for k in rec.start)  # one control net per seed


def _compact_like(net: torch.nn.Module, state: dict[str, torch.Tensor]) -> torch.nn.Module:
    """``net`` with every layer resized to ``state``'s shapes (the reference's compact LeNet)."""
    out = copy.deepcopy(net)
    for name, module in out.named_modules():
        weight = state.get(f"{name}.weight")
        if weight is None or not hasattr(module, "weight"):
            continue
        module.weight = torch.nn.Parameter(torch.empty_like(weight))
        if getattr(module, "bias", None) is not None:
            module.bias = torch.nn.Parameter(torch.empty_like(state[f"{name}.bias"]))
    return out


@pytest.mark.parametrize("overrides", [
    ["attack.name=fgsm_rs"],  # Wong et al.: step 1.25 ε, whatever step the experiment's PGD had
    ["attack.name=n_fgsm"],
    ["attack.name=fgsm"],
    ["attack.eps_warmup_epochs=1"],  # PGD with the ε ramp over the whole (1-epoch) run
    ["attack.name=trades", "attack.step_size=0.05"],
    ["model.width=0.5"],
    ["attack.name=fgsm_rs", "optim.name=adam", "optim.schedule=cyclic", "optim.weight_decay=0"],  # Wong's recipe
], ids=["fgsm_rs", "n_fgsm", "fgsm", "pgd_ramp", "trades", "width", "fgsm_rs_wong"])
def test_dense_baselines_train_their_attack_at_its_documented_step(base, recorded, overrides):
    """Each as a frontier baseline variant: the experiment's PGD step (0.05) must not reach a single-step attack."""
    cfg = base(experiment="frontier")
    dm = build_datamodule(cfg.data)
    variant = budget_config(with_overrides(cfg, overrides, "test"), 0, 1, cfg.frontier.lrs[0])
    rec = _arm(variant, dm, "dense", None, recorded)
    expected = {"fgsm_rs": 1.25, "n_fgsm": 1.0, "fgsm": 1.0}.get(variant.attack.name)
    if expected is not None:
        assert rec.step == pytest.approx(expected * variant.attack.eps)
    net = build_model(variant.model, dm.info)
    _assert_same(rec.start, snapshot(build_model(variant.model, dm.info, seed=0)), "dense start")
    _assert_same(rec.end, _replay(variant, rec, rec.start, net), f"dense {overrides} trained")


def test_a_search_recipe_trains_fgsm_rs_then_pgd_on_its_own_schedule(base, recorded):
    """#32: a recipe from the search's real path (recipe -> config -> stage), replayed from its definition alone:
    FGSM-RS (step 1.25 ε) for the first half of the steps, then PGD-2 at step 2.5 ε / 2, SGD at peak LR 0.05 with
    the multistep decay, from θ0 of the seed."""
    from lth_lightning.config import Recipe
    from lth_lightning.tasks.search import train_recipe

    cfg = base("trainer.limit_train_batches=6", experiment="search")
    dm = build_datamodule(cfg.data)
    recipe = Recipe(width=1.0, attack="fgsm_rs", steps=2, switch=0.5, ramp=0.0, optimizer="sgd_multistep", lr=0.05,
                    budget=1)
    _, (rec,) = recorded(lambda: train_recipe(cfg, dm, recipe, 0, "val_robust", "recipe-ref"))
    n, eps = len(rec.batches), cfg.attack.eps

    def attack(i, model, x, y):
        model.train(cfg.attack.bn_mode == "train")
        if i < round(0.5 * n):
            return ref.fgsm_rs(model, x, y, eps, 1.25 * eps)
        return ref.pgd(model, x, y, eps, 2.5 * eps / 2, 2)

    by_hand = dataclasses.replace(cfg, optim=dataclasses.replace(cfg.optim, name="sgd", schedule="multistep", lr=0.05,
                                                                  warmup_epochs=0.0))
    net = build_model(cfg.model, dm.info)
    _assert_same(rec.start, _theta0(cfg, dm.info), "recipe start")
    _assert_same(rec.end, _replay(by_hand, rec, rec.start, net, attack_fn=attack), "recipe trained")
