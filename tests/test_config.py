"""Every config composes and validates; bad values fail with one clear line and a non-zero exit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lth_lightning.cli import CONF_DIR, normalize_argv
from lth_lightning.config import ConfigError, PruneConfig, validate

GROUPS = ["data", "model", "optim", "attack", "eval", "prune", "pipeline", "trainer", "logger"]


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (Path(CONF_DIR) / group).glob("*.yaml"))


@pytest.mark.parametrize(("group", "option"), [(g, o) for g in GROUPS for o in _options(g)])
def test_every_group_option_composes(make_cfg, group, option):
    """Each option file's values reach the typed config (not just 'it composed')."""
    from omegaconf import OmegaConf

    cfg = make_cfg(f"{group}={option}", fast=False)
    section = getattr(cfg, group)
    values = OmegaConf.to_container(OmegaConf.load(Path(CONF_DIR) / group / f"{option}.yaml"), resolve=False)
    for key, value in values.items():
        if key != "defaults" and not isinstance(value, dict) and not str(value).startswith("${"):
            got = getattr(section, key)
            assert got == value or (isinstance(value, float) and got == pytest.approx(value)), (key, got, value)


@pytest.mark.parametrize("experiment", _options("experiment"))
def test_every_experiment_composes(make_cfg, experiment):
    cfg = make_cfg(f"experiment={experiment}")
    if experiment == "wong_mnist":  # a published recipe reproduced: one dense net, FGSM-RS at 1.25 eps = 0.375
        assert cfg.task == "train" and cfg.prune.name == "none" and cfg.model.name == "wong_cnn"
        assert cfg.attack.step == pytest.approx(0.375) and cfg.optim.schedule == "cyclic"
        return
    assert cfg.task in ("fast_ticket", "frontier", "search") and cfg.prune.name == "oneshot"


def test_every_search_space_composes(make_cfg):
    for option in _options("search"):
        cfg = make_cfg("experiment=search", f"search={option}")
        assert cfg.search.trials >= 1 and cfg.search.space.attack


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"model": {"name": "resnet99"}}, "model.name='resnet99' is unknown"),
        ({"prune": {"ratio": 1.0}}, "prune.ratio=1.0 must be in [0, 1)"),
        ({"prune": {"ratio": -0.1}}, "prune.ratio=-0.1"),
        ({"attack": {"eps": -0.1}}, "attack.eps=-0.1 must be >= 0"),
        ({"trainer": {"max_epochs": 0}}, "trainer.max_epochs=0 must be positive"),
        ({"optim": {"lr": 0.0}}, "optim.lr=0.0 must be positive"),
        ({"data": {"name": "imagenet"}}, "data.name='imagenet' is unknown"),
        ({"typo_key": 1}, "typo_key"),
        ({"task": "eval"}, "task=eval needs ckpt_path"),
        ({"attack": {"eps_warmup_epochs": -1}}, "attack.eps_warmup_epochs=-1 must be >= 0"),
        ({"trainer": {"matmul_precision": "low"}}, "trainer.matmul_precision='low' is unknown"),
        ({"prune": {"channel_multiple": 0}}, "prune.channel_multiple=0 must be >= 1"),
        ({"task": "train", "ticket": "t.pt", "prune": {"name": "oneshot"}}, "drop one (prune=none to train the ticket"),
        ({"task": "train", "attack": {"name": "pgd", "eps_warmup_epochs": 11}},
         "attack.eps_warmup_epochs=11 (the run) is longer than the 10-epoch schedule it ramps"),
        ({"task": "frontier", "frontier": {"baselines": {"dense_ramp": ["attack.eps_warmup_epochs=30"]}}},
         "(frontier.baselines.dense_ramp) is longer than the 20-epoch schedule"),
        ({"task": "fast_ticket", "pipeline": {"dense_overrides": ["attack.eps_warmup=2"]}},
         "pipeline.dense_overrides: attack.eps_warmup is not a setting; did you mean attack.eps_warmup_epochs?"),
        ({"task": "frontier", "frontier": {"baselines": {"dense_ramp": ["prune.ratio=0.5"]}}},
         "is not an override of attack.*, optim.*, model.width or eval.catastrophic_drop"),
        ({"task": "frontier", "frontier": {"baselines": {"dense_x": ["eval.eps=0.1"]}}},
         "eval.eps may not differ between arms (of eval a variant sets only eval.catastrophic_drop)"),
        ({"task": "frontier", "frontier": {"baselines": {"dense_x": ["model.name=mlp"]}}},
         "model.name may not differ between arms (of model a variant sets only model.width)"),
        ({"task": "frontier", "frontier": {"baselines": {"dense_w0": ["model.width=0"]}}}, "model.width=0 must be > 0"),
        ({"task": "frontier", "frontier": {"ticket_variants": {"ticket_w": ["model.width=0.5"]}}},
         "a ticket variant trains the found ticket, whose net is fixed: no model.* override"),
        ({"model": {"width": 0.0}}, "model.width=0 must be > 0"),
        ({"model": {"width": -1.0}}, "model.width=-1 must be > 0"),
        ({"task": "frontier", "frontier": {"arms": ["ticket", "dense", "random_channels"]}},
         "random_channels is a control of channel tickets, but this frontier finds unstructured tickets: set "
         "prune.structure=channel or add it to frontier.structures"),
        ({"task": "fast_ticket", "prune": {"structure": "channel"}, "pipeline": {"arms": ["ticket", "random_mask"]}},
         "random_mask is a control of unstructured tickets, but this fast_ticket finds channel tickets"),
        ({"frontier": {"arms": ["ticket", "dense", "shuffled"]}}, "frontier.arms entry='shuffled' is unknown"),
        ({"prune": {"name": "oneshot", "control": "narrow"}}, "prune.control=narrow turns a consumed ticket"),
        ({"task": "frontier", "frontier": {"baselines": {"dense_ramp": ["attack.eps_warmup_epochs=two"]}}},
         "attack.eps_warmup_epochs takes a float, not 'two'"),
        ({"task": "frontier", "frontier": {"baselines": {"ramp": []}}}, "'ramp' must be named dense_<something>"),
        ({"task": "frontier", "frontier": {"ticket_variants": {"ticket_x": ["attack.step_size=abc"]}}},
         "frontier.ticket_variants.ticket_x: attack.step_size=abc is not a valid value"),
        ({"frontier": {"confidence": 1.0}}, "frontier.confidence=1.0 must be in (0, 1)"),
    ],
)
def test_bad_values_raise_config_error(override, message):
    with pytest.raises(ConfigError, match=None) as info:
        validate(override)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_iterative_target_sparsity():
    cfg = PruneConfig(name="imp", rate=0.2)
    assert [round(cfg.target_sparsity(n), 6) for n in range(4)] == [0.0, 0.2, 0.36, 0.488]


def test_plus_and_plain_experiment_forms_are_equivalent():
    assert normalize_argv(["+experiment=fast_ticket", "+foo=1"]) == ["experiment=fast_ticket", "+foo=1"]


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lth_lightning", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


@pytest.mark.slow  # the real entry point in a subprocess; test_cli.py checks the same lines in process
def test_cli_bad_value_is_one_line_and_exit_2(tmp_path):
    out = _cli("prune.ratio=1.5", f"hydra.run.dir={tmp_path}", cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1] == "error: prune.ratio=1.5 must be in [0, 1)"
    assert "Traceback" not in out.stderr


@pytest.mark.slow  # as above
def test_cli_missing_data_names_path_and_fix(tmp_path):
    out = _cli("data=mnist", f"data.root={tmp_path / 'nowhere'}", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert out.returncode == 2
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("error: mnist not found under") and "data.download=true" in last
    assert "Traceback" not in out.stderr


def test_trainer_gpu_without_a_gpu_says_how_to_use_the_cpu():
    import torch

    from lth_lightning.cli import check_accelerator

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ConfigError, match="use trainer=cpu"):
        check_accelerator("gpu")
    check_accelerator("cpu")  # and the CPU is always fine


def test_dict_settings_get_hydras_force_add_form():
    assert normalize_argv(["frontier.baselines={dense_x:[a]}", "frontier.lrs=[1]"]) == [
        "++frontier.baselines={dense_x:[a]}", "frontier.lrs=[1]"]
