"""Attack invariants: inside the ε-ball and [0, 1], ε=0 is clean, no parameter gradients, stronger is lower."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from lth_lightning.attacks import Attack, build_attack, build_eval_attack, trades_loss
from lth_lightning.config import AttackConfig, EvalConfig
from lth_lightning.errors import ConfigError


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 8 * 8, 10))


def _batch(n: int = 16):
    gen = torch.Generator().manual_seed(1)
    return torch.rand(n, 1, 8, 8, generator=gen), torch.randint(0, 10, (n,), generator=gen)


@settings(max_examples=25, deadline=None)
@given(eps=st.floats(0.0, 0.5), steps=st.integers(1, 5), name=st.sampled_from(["fgsm", "fgsm_rs", "pgd", "trades"]))
def test_linf_examples_stay_in_ball_and_box(eps, steps, name):
    x, y = _batch()
    attack = build_attack(AttackConfig(name=name, eps=eps, steps=steps))
    x_adv = attack(_model(), x, y)
    assert (x_adv - x).abs().max() <= eps + 1e-6
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0


@settings(max_examples=15, deadline=None)
@given(eps=st.floats(0.01, 2.0), steps=st.integers(1, 5))
def test_l2_examples_stay_in_ball_and_box(eps, steps):
    x, y = _batch()
    x_adv = build_attack(AttackConfig(name="pgd_l2", eps=eps, steps=steps))(_model(), x, y)
    assert (x_adv - x).flatten(1).norm(dim=1).max() <= eps + 1e-5
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0


def test_eps_zero_gives_clean_inputs():
    x, y = _batch()
    model = _model().eval()
    x_adv = build_eval_attack(EvalConfig(eps=0.0), 0.0)(model, x, y)
    assert torch.equal(x_adv, x)


def test_no_parameter_gradient_is_touched():
    x, y = _batch()
    model = _model()
    for name in ("fgsm", "pgd", "trades", "pgd_l2"):
        build_attack(AttackConfig(name=name, eps=0.1, steps=3))(model, x, y)
    assert all(p.grad is None for p in model.parameters())


def test_bn_mode_eval_leaves_running_stats_and_restores_mode():
    x, y = _batch()
    model = _model().train()
    before = model[1].running_mean.clone()
    Attack(0.1, 0.05, 3, bn_mode="eval")(model, x, y)
    assert torch.equal(model[1].running_mean, before) and model.training
    Attack(0.1, 0.05, 3, bn_mode="train")(model, x, y)
    assert not torch.equal(model[1].running_mean, before)


def test_default_steps_follow_the_literature():
    eps = 8 / 255
    assert build_attack(AttackConfig(name="fgsm", eps=eps)).step_size == eps
    assert build_attack(AttackConfig(name="fgsm_rs", eps=eps)).step_size == pytest.approx(1.25 * eps)
    assert build_attack(AttackConfig(name="n_fgsm", eps=eps)).step_size == pytest.approx(eps)
    assert build_attack(AttackConfig(name="pgd", eps=eps, steps=10)).step_size == pytest.approx(2 / 255)


@pytest.mark.parametrize(("name", "ratio"), [("fgsm", 1.0), ("fgsm_rs", 1.25), ("n_fgsm", 1.0)])
def test_single_step_attacks_step_relative_to_eps(name, ratio):
    """attack=fgsm_rs attack.eps=0.3 steps 0.375 (the stored FGSM-RS arms once stepped 10/255 or PGD's 0.1)."""
    assert build_attack(AttackConfig(name=name, eps=0.3)).step_size == pytest.approx(ratio * 0.3)
    assert build_attack(AttackConfig(name=name, eps=0.3, step_ratio=0.5)).step_size == pytest.approx(0.15)
    with pytest.raises(ConfigError, match="iterative attack's step"):
        AttackConfig(name=name, eps=0.3, step_size=0.1)  # PGD's absolute step cannot reach a single-step attack
    with pytest.raises(ConfigError, match="takes attack\\.step_size"):
        AttackConfig(name="pgd", eps=0.3, step_ratio=1.0)


def test_attack_under_bf16_autocast_and_channels_last():
    x, y = _batch()
    model = _model().to(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        x_adv = Attack(0.1, 0.025, 3)(model, x.to(memory_format=torch.channels_last), y)
    assert x_adv.dtype == torch.float32 and (x_adv - x).abs().max() <= 0.1 + 1e-6


def test_trades_loss_is_natural_loss_when_inputs_match():
    x, y = _batch()
    model = _model().eval()
    loss, logits = trades_loss(model, x, x, y, beta=6.0)
    assert torch.allclose(loss, nn.functional.cross_entropy(logits, y), atol=1e-5)


def _accuracy(model, x, y, attack=None) -> float:
    inputs = attack(model, x, y) if attack else x
    with torch.no_grad():
        return (model(inputs).argmax(1) == y).float().mean().item()


@pytest.fixture(scope="module")
def trained_digits_model():
    """A small net fitted on digits, so accuracies are meaningful."""
    from lth_lightning.config import DataConfig
    from lth_lightning.data import build_datamodule

    dm = build_datamodule(DataConfig(name="digits"))
    dm.setup()
    x, y = dm.train_set.images.float() / 255, dm.train_set.labels
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(150):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    xt, yt = dm.test_set.images.float() / 255, dm.test_set.labels
    return model.eval(), xt, yt


def test_robust_accuracy_below_clean_and_decreasing_in_steps(trained_digits_model):
    model, x, y = trained_digits_model
    clean = _accuracy(model, x, y)
    assert clean > 0.9
    accs = [_accuracy(model, x, y, Attack(0.1, 0.025, k, random_start=False)) for k in (1, 3, 10, 20)]
    assert accs[0] <= clean
    assert all(b <= a + 0.005 for a, b in itertools.pairwise(accs)), accs
    assert accs[-1] < clean - 0.2  # the attack is real


def test_eps_ramp_is_zero_at_the_first_step_and_exactly_eps_at_the_configured_one():
    from lth_lightning.modules.schedule import eps_factor

    assert eps_factor(0, 10.0, 2.0) == 0.0 and eps_factor(10, 10.0, 2.0) == 0.5
    assert eps_factor(20, 10.0, 2.0) == 1.0 and eps_factor(35, 10.0, 2.0) == 1.0
    assert eps_factor(0, 10.0, 0.0) == 1.0  # no ramp


def test_a_scaled_attack_is_the_attack_at_the_scaled_eps():
    """The ramp multiplies eps and step by a tensor set in place (what a captured CUDA graph reads)."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
    x, y = torch.rand(8, 1, 4, 4), torch.randint(0, 3, (8,))
    scale = torch.ones(())
    plain = Attack(0.2, 0.05, 5, random_start=False)
    scaled = dataclasses.replace(plain, scale=scale)
    assert torch.equal(scaled(model, x, y), plain(model, x, y))
    scale.fill_(0.5)
    assert torch.allclose(scaled(model, x, y), Attack(0.1, 0.025, 5, random_start=False)(model, x, y), atol=1e-7)
    scale.fill_(0.0)
    assert torch.equal(scaled(model, x, y), x)  # the ramp's first step: clean inputs, same passes
    scale.fill_(0.5)
    delta = dataclasses.replace(plain, random_start=True)(model, x, y) - x
    ramped = dataclasses.replace(plain, random_start=True, scale=scale)(model, x, y) - x
    assert delta.abs().max() <= 0.2 + 1e-6 and ramped.abs().max() <= 0.1 + 1e-6
