"""Stage identities are derived from the config each stage runs: every config field is checked, generated
from the dataclasses, against which of fast_ticket's stages it must (and must not) re-run."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from lth_lightning import config as config_module
from lth_lightning.config import Config, ConfigError
from lth_lightning.stages import identity as stages
from lth_lightning.stages.arms import arm_stage, find_stage
from lth_lightning.stages.identity import Stage, claim_dir

ARMS = ("ticket", "reinit", "dense")
ALL = {"find", *ARMS}
FINDING = {"find", "ticket", "reinit"}  # the finding stage and the arms that consume its ticket
TRAINING = {"ticket", "reinit", "dense"}

# every string the schema accepts somewhere: candidate values for string fields
POOL = sorted({v for name in dir(config_module) if name.isupper()
               for v in getattr(config_module, name) if isinstance(v, str)}
              | {"sgd", "adam", "constant", "multistep", "cosine", "train", "eval", "linf", "l2", "off", "apgd",
                 "standard", "csv", "wandb", "offline", "online", "cpu", "gpu", "auto", "ddp", "val", "test",
                 "val_robust", "val_clean", "val/clean_acc", "fixed", "early_bird", "high"})

# A base where the conditional settings are live: PGD finding (attack steps matter to it), a multistep
# finding schedule (milestones matter), random criterion (prune.seed), rewind (rewind_epoch), a WRN (depth,
# width), synthetic data (shape), AutoAttack on (its sample count).
BASE = ["experiment=fast_ticket", "pipeline.find.attack=pgd", "pipeline.find.schedule=multistep",
        "pipeline.find.stop=early_bird",
        "prune.criterion=random", "prune.reset=rewind", "model=wrn", "model.depth=10", "model.widen=1",
        "data=synthetic", "eval.autoattack=apgd"]


def stage_ids(cfg: Config) -> dict[str, str]:
    find = find_stage(cfg, cfg.pipeline.find.lr)
    return {"find": find.identity, **{arm: arm_stage(cfg, arm, find).identity for arm in ARMS}}


def leaves(obj: Any, prefix: str = "", affects: bool = True):
    """(dotted path, value, whether any field on the path may affect results) for every leaf field."""
    for f in dataclasses.fields(obj):
        value, path = getattr(obj, f.name), f"{prefix}{f.name}"
        live = affects and f.metadata.get("identity", True)
        if dataclasses.is_dataclass(value):
            yield from leaves(value, f"{path}.", live)
        else:
            yield path, value, live


def replaced(obj: Any, path: str, value: Any) -> Any:
    """``obj`` with the field at ``path`` set: every dataclass on the path re-validates itself."""
    head, _, rest = path.partition(".")
    inner = replaced(getattr(obj, head), rest, value) if rest else value
    return dataclasses.replace(obj, **{head: inner})


def alternatives(value: Any) -> list[Any]:
    if isinstance(value, bool):
        return [not value]
    if value is None:
        return [0.5, 1, *POOL]
    if isinstance(value, int):
        return [value + 1, value + 6]
    if isinstance(value, float):
        return [value * 0.5 + 0.01, value + 1.0]
    if isinstance(value, str):
        return [*(o for o in POOL if o != value), value + "_x"]
    if isinstance(value, list):
        return [value[:-1], value[1:], [alternatives(value[0])[0], *value[1:]]] if value else [[0.5]]
    return []


def expected(cfg: Config, path: str, live: bool) -> set[str]:
    """Which stages a change of ``path`` must re-run; the rule follows the pipeline's structure."""
    section, _, leaf = path.partition(".")
    owner = getattr(cfg, section) if leaf and "." not in leaf else None
    rules = {"pipeline.ticket_epochs": {"ticket", "reinit"}, "pipeline.dense_epochs": {"dense"},
             "trainer.max_epochs": set(),  # each stage's epochs come from the pipeline
             "prune.reinit_seed": {"reinit"},  # only the re-init control is re-initialised (reset=rewind here)
             # the finding stage has its own LR, schedule and attack name (pipeline.find)
             "optim.lr": TRAINING, "optim.schedule": TRAINING, "optim.warmup_epochs": TRAINING,
             "attack.name": TRAINING,
             "trainer.matmul_precision": ALL,  # in the identity once it is not the exact default
             "attack.eps_warmup_epochs": TRAINING,  # finding never ramps; a ramp of 0 is no ramp (caches stay)
             "data.on_device": ALL,  # NO_EFFECT itself, but it sets data.in_memory: the batches that really run
             "model.width": ALL,  # a width of 1 is the model as published (caches stay); any other is live
             "eval.checks_per_epoch": ALL,  # one check an epoch is what every stage did before (caches stay)
             # fast_ticket pins 1 thread; any other count trains other weights: another stage (#31)
             "trainer.num_threads": ALL}
    if path in rules and (live or path in ("data.on_device", "trainer.num_threads")):
        return rules[path]
    if not live:
        return set()
    if path in rules:
        return rules[path]
    if owner is not None and leaf in getattr(owner, "unused", set)():
        return set()
    if path.startswith("pipeline.find."):
        return FINDING
    return FINDING if section == "prune" else ALL


def test_every_config_field_changes_exactly_the_stages_it_should(make_cfg):
    base = make_cfg(*BASE)
    before = stage_ids(base)
    assert len(set(before.values())) == 4
    checked, skipped = [], []
    for path, value, live in leaves(base):
        for candidate in alternatives(value):
            try:
                changed_cfg = replaced(base, path, candidate)
            except (ConfigError, TypeError, ValueError):
                continue
            break
        else:
            skipped.append(path)
            continue
        after = stage_ids(changed_cfg)
        changed = {k for k in before if before[k] != after[k]}
        assert changed == expected(base, path, live), f"{path}: {value!r} -> {candidate!r}"
        checked.append(path)
    # task=fast_ticket refuses ticket=<file>; channel tickets refuse the random criterion of this base (tested
    # below); frontier.structures (NO_EFFECT) has no valid one-element change from []; override lists and dicts
    # (pipeline.dense_overrides, frontier.baselines/ticket_variants) take strings: tested below; prune.control
    # needs prune=none (a consumed ticket): its stages are tested in test_controls.py; attack.step_ratio belongs to
    # the single-step attacks and this base trains PGD (refused: test_attacks.py), as does attack.switch_at (its stages:
    # test_search.py); frontier.arm_lrs names arms; search.space.lr is a dict and search.space.reset takes reset names;
    # model._target_ / data._target_ take an importable path, and *.args its factory's arguments
    # (test_model_target_is_the_net)
    assert sorted(skipped) == sorted(["ticket", "pipeline.dense_overrides", "prune.structure", "frontier.structures",
                                      "frontier.baselines", "frontier.ticket_variants", "prune.control",
                                      "attack.step_ratio", "frontier.arm_lrs", "attack.switch_at", "search.space.lr",
                                      "search.space.reset", "model._target_", "model.args", "data._target_",
                                      "data.args"])
    assert len(checked) > 80


def test_channel_structure_changes_the_finding_and_its_arms_only(make_cfg):
    base = make_cfg("experiment=fast_ticket")
    channel = make_cfg("experiment=fast_ticket", "prune.structure=channel")
    before, after = stage_ids(base), stage_ids(channel)
    assert {k for k in before if before[k] != after[k]} == FINDING


@pytest.mark.parametrize(
    ("shared", "change", "changed"),
    [  # the stale-stage bugs of the issue, and the needless re-runs
        ([], ["attack.bn_mode=eval"], ALL),
        (["pipeline.find.attack=pgd"], ["attack.steps=3"], ALL),
        (["pipeline.find.attack=fgsm"], ["attack.steps=3"], TRAINING),  # FGSM finding has no steps
        (["pipeline.find.schedule=multistep"], ["optim.milestones=[0.3,0.6]"], ALL),
        (["pipeline.find.schedule=constant"], ["optim.milestones=[0.3,0.6]"], TRAINING),
        ([], ["prune.reinit_seed=7"], {"reinit"}),
        (["prune.reset=reinit"], ["prune.reinit_seed=7"], FINDING),  # the ticket itself is a re-init
        ([], ["trainer.num_threads=1", "logger=wandb", "data.root=/elsewhere", "pipeline.cache_dir=/x"], set()),
    ],
)
def test_named_cases(make_cfg, shared, change, changed):
    a = stage_ids(make_cfg("experiment=fast_ticket", *shared))
    b = stage_ids(make_cfg("experiment=fast_ticket", *shared, *change))
    assert {k for k in a if a[k] != b[k]} == changed


def test_stage_seed_and_dir_are_derived_from_the_identity(make_cfg, tmp_path, monkeypatch):
    cfg = make_cfg("experiment=fast_ticket")
    stage = find_stage(cfg, 0.01)
    assert stage.seed == find_stage(cfg, 0.01).seed != find_stage(cfg, 0.05).seed
    out = stages.cached_dir(stage, tmp_path)
    record = json.loads((out / "stage.json").read_text())
    assert out.name == stage.identity == record["identity"] and record["code_version"]
    said: list[str] = []
    monkeypatch.setattr(stages, "rank_zero_info", said.append)
    (out / "stage.json").write_text(json.dumps({**record, "code_version": "0.0.1+old"}))
    claim_dir(stage, out)  # made by other code: reused, and the log says so
    assert said and "0.0.1+old" in said[0]
    with pytest.raises(ConfigError, match="of another config"):
        claim_dir(Stage("find", dataclasses.replace(cfg, seed=1)), out)


def test_dense_overrides_change_the_dense_stage_only(make_cfg):
    from lth_lightning.config import with_overrides

    base = make_cfg("experiment=fast_ticket")
    ramped = make_cfg("experiment=fast_ticket", "pipeline.dense_overrides=['attack.eps_warmup_epochs=2']")
    find = find_stage(base, base.pipeline.find.lr)
    assert find_stage(ramped, ramped.pipeline.find.lr).identity == find.identity  # the base cfg is unchanged
    plain = arm_stage(with_overrides(base, base.pipeline.dense_overrides, "x"), "dense", None)
    ramp = arm_stage(with_overrides(ramped, ramped.pipeline.dense_overrides, "x"), "dense", None)
    assert ramp.cfg.attack.eps_warmup_epochs == 2.0 and ramp.identity != plain.identity
    assert arm_stage(ramped, "ticket", find).identity == arm_stage(base, "ticket", find).identity


@pytest.mark.parametrize(("overrides", "expected"), [
    (["experiment=fast_ticket"], ("find-16c5fb994e11", "ticket-665cd2106c96", "dense-6188922580ab")),
    (["experiment=fast_ticket_mnist", "pipeline.dense_overrides=[]"],
     ("find-61c6d89a0658", "ticket-ebdfa6bb200b", "dense-b8aa46c9bbcb")),
])
def test_cached_stages_still_hit(make_cfg, overrides, expected):
    """Identities as users' caches hold them. Pinned at 9c810dc (before pipelines/ was split into rooms), moved on
    purpose twice since, both in round 23: the loader revision of #27 (DataLoader stages compute other numbers now:
    LOADER_RNG in their identity), and model.width becoming a float multiplier for every model (#24: LeNet's width
    2 is 2.0 in the identity, and width 1, the published net, leaves the identity); and once in round 29 (#30): the
    single-step attacks' step became attack.step_ratio, so the FGSM finding stage, and the ticket after it, moved
    (dense, a PGD stage, did not), and every CPU stage moved with its thread count joining the identity (#31: 1 and
    2 threads train different weights). Adding settings at their defaults (controls, widths of 1, ε ramps of 0, one
    check an epoch) must leave them where they are."""
    cfg = make_cfg(*overrides, "trainer.num_threads=2", fast=False)  # the configs as users run them, on 2 threads
    find = find_stage(cfg, cfg.pipeline.find.lr)
    stages = (find, arm_stage(cfg, "ticket", find), arm_stage(cfg, "dense", None))
    assert tuple(s.identity for s in stages) == expected
    assert all(s.description["loader_rng"] == 2 for s in stages)


@pytest.mark.parametrize(("overrides", "dense", "find"), [
    ([], "dense-99039f74db49", "find-3fcbd4a3329a"),  # task=train's default: natural training
    (["experiment=fast_ticket", "pipeline.find.attack=none", "attack=none"], "dense-ad69c46268a9", "find-9ffcd151e178"),
    (["experiment=boosting_natural_cifar10_vgg16"], "dense-7b9aefa2fef3", "find-109986a643bb"),
])
def test_natural_training_stages_still_hit(make_cfg, overrides, dense, find):
    """Pinned at 6d4345d: attack.switch_at (#32) once joined every attack=none stage's identity, and moved them all
    (a review found it; the PGD pins above could not)."""
    cfg = make_cfg(*overrides, "trainer.num_threads=2", fast=False)
    assert (arm_stage(cfg, "dense", None).identity, find_stage(cfg, 0.01).identity) == (dense, find)


def test_model_target_is_the_net(make_cfg):
    """#33: a foreign net's factory and its arguments are what its stages are; the package model's name and sizes are
    then not read (and the default, no _target_, leaves every cached stage as it was)."""
    base = stage_ids(make_cfg(*BASE))
    own = stage_ids(make_cfg(*BASE, "model._target_=examples.nets.small_cnn"))
    wider = stage_ids(make_cfg(*BASE, "model._target_=examples.nets.small_cnn", "+model.args.width=64"))
    renamed = stage_ids(make_cfg(*BASE, "model._target_=examples.nets.small_cnn", "model.name=mlp"))
    assert all(own[k] != base[k] for k in base) and all(wider[k] != own[k] for k in own)
    assert renamed == own
    assert stage_ids(make_cfg(*BASE, "model._target_=null")) == base
