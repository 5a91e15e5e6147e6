"""Typed hyperparameters: the one source of truth for every config value.

The YAML files under ``conf/`` only *set* values; these dataclasses define which keys exist, their types
and their ranges. ``validate`` merges Hydra's config onto the schema (unknown keys and wrong types fail)
and instantiates the dataclasses, whose ``__post_init__`` checks ranges. Every failure is a
``ConfigError`` with one readable line.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lth_lightning.errors import ConfigError, first_line

# Field metadata: a setting that cannot change what a stage computes (paths, logging, threads,
# which stages a pipeline runs). Stage identities leave these out (``stages/identity.py``).
NO_EFFECT = {"identity": False}

DATASETS = ("digits", "mnist", "fashion_mnist", "cifar10", "cifar100", "svhn", "synthetic")
DATA_SHAPES = {"digits": (1, 8, 8), "mnist": (1, 28, 28), "fashion_mnist": (1, 28, 28), "cifar10": (3, 32, 32),
               "cifar100": (3, 32, 32), "svhn": (3, 32, 32)}  # one image (C, H, W); synthetic: data.shape
MODELS = ("lenet", "madry_cnn", "wong_cnn", "mlp", "vgg11", "vgg16", "vgg19", "resnet18", "preact_resnet18", "wrn")
ATTACKS = ("none", "fgsm", "fgsm_rs", "n_fgsm", "pgd", "pgd_l2", "trades")
# single-step attacks: their step is a multiple of ε (``attack.step_ratio``), never an absolute step, so switching an
# arm from PGD to one of them cannot carry PGD's step along (FGSM ε, FGSM-RS 1.25 ε, N-FGSM ε)
FAST_ATTACKS = {"fgsm": 1.0, "fgsm_rs": 1.25, "n_fgsm": 1.0}
SCHEDULES = ("constant", "multistep", "cosine", "cyclic")
CRITERIA = ("global", "layerwise", "layer_normalized", "random")
RESETS = ("init", "rewind", "reinit", "finetune")
STRUCTURES = ("unstructured", "channel")
# Control arms: what each is made from, by the structure of the ticket it controls. random_mask: the ticket's
# per-layer sparsity at random positions, θ0 values; random_channels: the ticket's kept count per group, channels
# drawn at random, θ0 slices, compacted like the ticket; narrow: the ticket's compact shape at the model's own
# default initialisation (the net a practitioner builds with fewer channels). None of them needs the finding.
CONTROLS = {"random_mask": "unstructured", "random_channels": "channel", "narrow": "channel"}
ARMS = ("ticket", "dense", "reinit", *CONTROLS)
TASKS = ("train", "fast_ticket", "frontier", "eval", "search")


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _require_target(key: str, value: object) -> None:
    """A ``_target_`` is an importable dotted path (imported only when used: ``resolve_target``)."""
    _require(isinstance(value, str) and "." in value.strip(),
             f"{key}={value!r} must be an importable dotted path (my_pkg.module.factory)")


def resolve_target(key: str, path: str) -> Any:
    """The object a ``_target_`` names (``model._target_``, ``data._target_``), or one ``ConfigError`` line."""
    import importlib

    module, _, name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as err:
        raise ConfigError(f"{key}={path} does not import ({first_line(err)})") from None


def _choice(key: str, value: str, options: tuple[str, ...]) -> None:
    _require(value in options, f"{key}={value!r} is unknown; choose one of {', '.join(options)}")


@dataclass
class DataConfig:
    name: str = "digits"
    root: str = field(default="data", metadata=NO_EFFECT)
    download: bool = field(default=False, metadata=NO_EFFECT)
    batch_size: int = 128
    eval_batch_size: int = 512
    # augmentation is drawn per (stage seed, epoch, sample index) and each epoch's order from a generator of its
    # own, so worker processes (persistent or not) change nothing a stage computes (tests/test_data.py flips it)
    num_workers: int = field(default=0, metadata=NO_EFFECT)
    in_memory: bool = False  # batches sliced from one tensor instead of a DataLoader (small datasets)
    # splits held on the GPU as uint8; it sets in_memory, which the identity holds: the GPU cuts the batches the
    # host would (the same order and values), but only the in-memory path is what runs
    on_device: bool = field(default=False, metadata=NO_EFFECT)
    val_fraction: float = 0.1  # held out of train, seeded (CIFAR-10: 5k of 50k as in the paper)
    augment: bool = True  # pad-4 random crop + horizontal flip (32x32 datasets only)
    train_subset: int | None = None  # cap the train split (CPU-sized runs)
    test_subset: int | None = None
    split_seed: int = 0
    shape: list[int] = field(default_factory=lambda: [3, 32, 32])  # synthetic only
    num_classes: int = 10  # synthetic and data._target_
    synthetic_size: int = 2048
    # data of your own: any importable factory called with ``args``, returning a LightningDataModule (its train and
    # test loaders are read once into memory) or a (train, test) pair of datasets of (image in [0, 1], label); square
    # images, ``num_classes`` classes. Held as 8-bit like every dataset here (exact for 8-bit images); our seeded
    # validation split, subsets and augmentation apply as to any dataset. ``name`` and ``root`` are then not read
    _target_: str | None = None
    args: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self._target_ is not None:
            _require_target("data._target_", self._target_)
        else:
            _choice("data.name", self.name, DATASETS)
        _require(self.batch_size > 0 and self.eval_batch_size > 0, "data.batch_size must be positive")
        _require(0.0 <= self.val_fraction < 1.0, f"data.val_fraction={self.val_fraction} must be in [0, 1)")
        _require(self.num_workers >= 0, "data.num_workers must be >= 0")
        for key in ("train_subset", "test_subset"):
            value = getattr(self, key)
            _require(value is None or value > 0, f"data.{key}={value} must be positive or null")
        _require(len(self.shape) == 3 and min(self.shape) > 0, f"data.shape={self.shape} must be [C, H, W]")
        self.in_memory = self.in_memory or self.on_device  # what runs; the stage identity sees it

    def unused(self) -> set[str]:
        """Fields this setting ignores (left out of stage identities, so changing them re-runs nothing)."""
        if self._target_ is not None:
            return {"name", "root", "download", "shape", "synthetic_size"}
        synthetic = set() if self.name == "synthetic" else {"shape", "num_classes", "synthetic_size"}
        return {"_target_", "args"} | synthetic


@dataclass
class ModelConfig:
    name: str = "lenet"
    depth: int = 34  # wrn
    widen: int = 10  # wrn's widen factor (WRN-34-10)
    # every model's channel and hidden-unit counts x this (0.5: the narrower net a practitioner tries first),
    # each rounded to the nearest multiple of width_multiple (at least one); 1: the model as published. A multiple of
    # the published net, not of a run's own width: a baseline's model.width=0.5 is half the published LeNet
    width: float = 1.0
    width_multiple: int = 8  # tensor cores want multiples of 8, as prune.channel_multiple does for tickets
    hidden: list[int] = field(default_factory=lambda: [256, 128])  # mlp
    channels_last: bool = False
    compile: bool = False
    # a network of your own: any importable factory (``my_pkg.nets.build``, ``torchvision.models.resnet18``), called
    # with ``args`` plus the data's ``num_classes`` (and ``in_channels``, where it names that parameter); ``name`` and
    # the size settings above are then not read. Normalisation is put in front of it as for every model here
    _target_: str | None = None
    args: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self._target_ is not None:  # name and the size settings are unread (Config.unread refuses them given)
            _require_target("model._target_", self._target_)
            return
        _choice("model.name", self.name, MODELS)
        _require(self.width > 0, f"model.width={self.width:g} must be > 0 (a multiplier of the model's channels)")
        _require(self.width_multiple >= 1, f"model.width_multiple={self.width_multiple} must be >= 1")
        _require(self.widen >= 1, f"model.widen={self.widen} must be >= 1")
        if self.name == "wrn":
            _require((self.depth - 4) % 6 == 0 and self.depth >= 10, "model.depth for wrn must be 6n+4 (>=10)")

    def unused(self) -> set[str]:
        if self._target_ is not None:  # a foreign net: its factory and args are what it is
            return {"name", "depth", "widen", "hidden", "width", "width_multiple"}
        out = {"width", "width_multiple", "_target_", "args"} if self.width == 1.0 else {"_target_", "args"}
        if self.name != "wrn":
            out |= {"depth", "widen"}
        if self.name != "mlp":
            out.add("hidden")
        return out

    def channels(self, count: int) -> int:
        """A layer's width at ``width``: unchanged at 1, else the nearest multiple of ``width_multiple``."""
        if self.width == 1.0:
            return count
        return max(self.width_multiple, self.width_multiple * round(count * self.width / self.width_multiple))


@dataclass
class OptimConfig:
    name: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    nesterov: bool = False
    schedule: str = "multistep"  # constant | multistep | cosine | cyclic
    milestones: list[float] = field(default_factory=lambda: [0.5, 0.75])  # fractions of training
    gamma: float = 0.1
    # cyclic: the one-cycle triangle fast adversarial training uses, per step: 0 -> lr at this fraction of training
    # -> 0 at its end (Wong et al. 2020 on MNIST: 2/5; de Jorge et al. 2022's N-FGSM: 1/2)
    peak: float = 0.4
    warmup_epochs: float = 0.0

    def __post_init__(self) -> None:
        _choice("optim.name", self.name, ("sgd", "adam"))
        _choice("optim.schedule", self.schedule, SCHEDULES)
        _require(self.lr > 0, f"optim.lr={self.lr} must be positive")
        _require(self.weight_decay >= 0 and self.momentum >= 0, "optim.weight_decay/momentum must be >= 0")
        _require(self.warmup_epochs >= 0, "optim.warmup_epochs must be >= 0")
        _require(all(0 < m < 1 for m in self.milestones), "optim.milestones are fractions in (0, 1)")
        _require(self.milestones == sorted(self.milestones),
                 f"optim.milestones={self.milestones} must be in increasing order (each a fraction of training)")
        _require(0 < self.peak < 1, f"optim.peak={self.peak:g} must be a fraction of training in (0, 1)")

    def unused(self) -> set[str]:
        out = {"milestones", "gamma"} if self.schedule != "multistep" else set()
        out |= {"peak"} if self.schedule != "cyclic" else set()
        return out | ({"momentum", "nesterov"} if self.name == "adam" else set())


@dataclass
class AttackConfig:
    """The training attack. Iterative attacks (PGD, TRADES) take an absolute ``step_size`` (null: ε/4); single-step
    ones (``FAST_ATTACKS``) a ``step_ratio`` of ε (null: the attack's published ratio). Each kind reads only its own
    field, so a step set for one kind never leaks into another (a variant that switches the kind resets both)."""

    name: str = "none"
    eps: float = 8 / 255
    step_size: float | None = None
    step_ratio: float | None = None
    steps: int = 10
    random_start: bool = True
    noise_ratio: float = 2.0  # N-FGSM: the random start is uniform in ±noise_ratio·ε (de Jorge et al. 2022: 2)
    beta: float = 6.0  # TRADES
    bn_mode: str = "train"  # BatchNorm mode while crafting examples: train (as the paper's code) or eval
    # the training attack's eps (and step, in proportion) ramps linearly from 0 over this many epochs, per step:
    # PGD at MNIST's eps 0.3 from a random init sits on a plateau; the ramp is the field's remedy. Evaluation
    # always attacks at the full eps. The frontier compresses it with the schedule, like the LR warmup.
    eps_warmup_epochs: float = 0.0
    # a single-step attack that hands over to PGD-``steps`` (step ``step_size``, null ε/4) once this fraction of
    # training is done (the recipe search's "fast first, then PGD"); 1: never
    switch_at: float = 1.0

    def __post_init__(self) -> None:
        _choice("attack.name", self.name, ATTACKS)
        _choice("attack.bn_mode", self.bn_mode, ("train", "eval"))
        _require(self.eps >= 0, f"attack.eps={self.eps} must be >= 0")
        _require(self.step_size is None or self.step_size > 0, "attack.step_size must be positive or null")
        _require(self.step_ratio is None or self.step_ratio > 0, "attack.step_ratio must be positive or null")
        fast = self.name in FAST_ATTACKS
        _require(0.0 < self.switch_at <= 1.0, f"attack.switch_at={self.switch_at:g} must be a fraction in (0, 1]")
        _require(self.switch_at == 1.0 or fast,
                 f"attack.switch_at hands a single-step attack ({', '.join(FAST_ATTACKS)}) over to PGD; "
                 f"{self.name} has nothing to switch from")
        if fast and self.step_size is not None and self.switch_at == 1.0:
            raise ConfigError(f"attack.step_size={self.step_size:g} is an iterative attack's step; {self.name} steps "
                              f"attack.step_ratio x eps (null: {FAST_ATTACKS[self.name]:g}): set attack.step_size=null "
                              f"or select attack={self.name}")
        _require(fast or self.step_ratio is None,
                 f"attack.step_ratio is the step of single-step attacks ({', '.join(FAST_ATTACKS)}); {self.name} "
                 "takes attack.step_size")
        _require(self.steps > 0, f"attack.steps={self.steps} must be positive")
        _require(self.noise_ratio > 0, f"attack.noise_ratio={self.noise_ratio:g} must be positive")
        _require(self.beta >= 0, "attack.beta must be >= 0")
        _require(self.eps_warmup_epochs >= 0, f"attack.eps_warmup_epochs={self.eps_warmup_epochs:g} must be >= 0")

    @property
    def step(self) -> float:
        """The step the attack takes at full ε: the configured one, else the attack's published default."""
        if self.name in FAST_ATTACKS:
            return (self.step_ratio if self.step_ratio is not None else FAST_ATTACKS[self.name]) * self.eps
        if self.step_size is not None:
            return self.step_size
        return self.eps / 4 if self.steps > 1 else self.eps  # Madry's 2/255 at 8/255; a one-step PGD steps ε

    def unused(self) -> set[str]:
        """eps stays even for ``none``: it is the threat model robust evaluation uses. A ramp of 0 epochs is
        no ramp (what every stage meant before the field existed: caches stay)."""
        ramp = {"eps_warmup_epochs"} if self.eps_warmup_epochs == 0 or self.name == "none" else set()
        noise = set() if self.name == "n_fgsm" else {"noise_ratio"}
        if self.name == "none":
            return {"step_size", "step_ratio", "steps", "random_start", "beta", "bn_mode", "switch_at"} | ramp | noise
        if self.name in FAST_ATTACKS:  # after a switch, PGD reads steps and step_size
            pgd = {"step_size", "steps", "switch_at"} if self.switch_at == 1.0 else set()
            return {"random_start", "beta"} | pgd | ramp | noise
        return ({"random_start"} if self.name == "trades" else {"beta"}) | {"step_ratio", "switch_at"} | ramp | noise

    def after_switch(self) -> AttackConfig:
        """The PGD this attack hands over to at ``switch_at`` (same ε, ramp and BN mode)."""
        return dataclasses.replace(self, name="pgd", step_ratio=None, switch_at=1.0, random_start=True)


@dataclass
class EvalConfig:
    """Robustness evaluation: PGD on validation every epoch, PGD+restarts and AutoAttack on test."""

    robust: bool | None = None  # null: robust evaluation when training adversarially (attack != none)
    eps: float | None = None  # null: the training attack's eps
    norm: str = "linf"
    steps: int = 10
    step_size: float | None = None  # null: eps/4
    val_robust_samples: int | None = 1000  # PGD on this many validation images per epoch (null: all)
    test_restarts: int = 1
    autoattack: str = "off"  # off | standard | apgd (APGD-CE + APGD-T, cheaper)
    autoattack_samples: int = 500
    checkpoint_metric: str = "auto"  # best checkpoint by robust val acc (robust overfitting); see monitor_metric
    catastrophic_drop: float | None = None  # stop when robust val acc falls this far below its best
    # validation checks per training epoch (the same fixed subset each time; never charged to training): each is a
    # point a frontier can stop at, so a finer resolution of the cost to reach a level. Part of a stage's identity
    # (validation draws attack noise from the stage's RNG stream). A stage killed between two checks of an epoch
    # resumes from the last check's checkpoint as Lightning resumes mid-epoch, not bit-identically (1: as before)
    checks_per_epoch: int = 1

    def __post_init__(self) -> None:
        _choice("eval.norm", self.norm, ("linf", "l2"))
        _choice("eval.autoattack", self.autoattack, ("off", "standard", "apgd"))
        _require(self.eps is None or self.eps >= 0, f"eval.eps={self.eps} must be >= 0")
        _require(self.steps > 0 and self.test_restarts > 0, "eval.steps and eval.test_restarts must be > 0")
        _require(self.checks_per_epoch >= 1, f"eval.checks_per_epoch={self.checks_per_epoch} must be >= 1")

    def unused(self) -> set[str]:
        out = {"autoattack_samples"} if self.autoattack == "off" else set()
        return out | ({"checks_per_epoch"} if self.checks_per_epoch == 1 else set())  # caches stay

    def robust_for(self, attack: AttackConfig) -> bool:
        """Whether robust accuracy is measured at all for runs trained with ``attack``."""
        return self.robust if self.robust is not None else attack.name != "none"

    def robust_val_for(self, attack: AttackConfig) -> bool:
        """Whether robust accuracy is measured on validation every epoch (what targets and checkpoints use)."""
        return self.robust_for(attack) and self.val_robust_samples != 0


@dataclass
class PruneConfig:
    """How tickets are found. ``name``: none, oneshot (one level to ``ratio``) or imp (``levels`` levels)."""

    name: str = "none"
    structure: str = "unstructured"  # channel: whole conv channels / hidden units, compacted into a smaller net
    criterion: str = "layer_normalized"
    ratio: float = 0.8  # oneshot: fraction of prunable weights (channel: of channels) removed
    channel_multiple: int = 8  # channel: each group keeps a multiple of this many channels (tensor cores)
    channel_ratio: float | None = None  # channel: fraction of channels removed (null: ratio), so that
    # frontier.structures can put an 80 % weight ticket beside a 50 % channel ticket
    rate: float = 0.2  # imp: fraction of the *remaining* weights removed per level
    levels: int = 3
    include_classifier: bool = True
    mask_bn: bool = True  # mask a BN channel when every weight feeding it is pruned
    reset: str = "init"
    rewind_epoch: int = 1  # reset=rewind: snapshot taken after this many epochs of the first run
    rewind_step: int | None = None  # ... or after this many optimizer steps (overrides rewind_epoch)
    reinit_seed: int = 1000
    seed: int = 0  # random criterion
    control: str = "none"  # a consumed ticket turned into a control arm (CONTROLS); its draws use the stage seed

    def __post_init__(self) -> None:
        _choice("prune.name", self.name, ("none", "oneshot", "imp"))
        _choice("prune.structure", self.structure, STRUCTURES)
        _require(self.structure == "unstructured" or self.name != "imp",
                 "prune.structure=channel is one-shot (prune=oneshot: fast_ticket, frontier); IMP is unstructured")
        _require(self.structure == "unstructured" or self.criterion == "layer_normalized",
                 f"prune.structure=channel scores channels by layer-normalised norm; prune.criterion="
                 f"{self.criterion} applies to unstructured pruning only")
        _choice("prune.criterion", self.criterion, CRITERIA)
        _choice("prune.reset", self.reset, RESETS)
        _choice("prune.control", self.control, ("none", *CONTROLS))
        _require(self.control == "none" or self.name == "none",
                 f"prune.control={self.control} turns a consumed ticket into a control: it needs prune=none")
        _require(0.0 <= self.ratio < 1.0, f"prune.ratio={self.ratio} must be in [0, 1)")
        _require(0.0 < self.rate < 1.0, f"prune.rate={self.rate} must be in (0, 1)")
        _require(self.levels >= 1, "prune.levels must be >= 1")
        _require(self.channel_multiple >= 1, f"prune.channel_multiple={self.channel_multiple} must be >= 1")
        _require(self.channel_ratio is None or 0.0 <= self.channel_ratio < 1.0,
                 f"prune.channel_ratio={self.channel_ratio} must be in [0, 1) or null")
        _require(self.rewind_epoch >= 0, "prune.rewind_epoch must be >= 0")
        _require(self.rewind_step is None or self.rewind_step >= 0, "prune.rewind_step must be >= 0 or null")

    def unused(self) -> set[str]:
        """With ``name=none`` only the reset matters: how a consumed ticket's weights are set
        (``init``: the ticket's own, ``reinit``: a fresh init from ``reinit_seed``)."""
        out = {"rate", "levels"} if self.name == "oneshot" else {"ratio"} if self.name == "imp" else \
            {"criterion", "ratio", "rate", "levels", "include_classifier", "mask_bn", "rewind_epoch", "rewind_step"}
        if self.criterion != "random" or self.name == "none":
            out.add("seed")
        if self.reset != "rewind":
            out |= {"rewind_epoch", "rewind_step"}
        elif self.rewind_step is not None:
            out.add("rewind_epoch")
        if self.reset != "reinit":
            out.add("reinit_seed")
        if self.structure == "channel":  # the classifier's outputs are never pruned; BN follows its channels
            out |= {"include_classifier", "mask_bn"}
        if self.name == "none" or self.structure == "unstructured":  # a consumed ticket carries its structure;
            out |= {"structure", "channel_multiple", "channel_ratio"}  # unstructured is what every stage meant
            # before the field existed (caches stay)
        if self.channel_ratio is None:
            out.add("channel_ratio")
        if self.control == "none":  # what every stage meant before controls existed (caches stay)
            out.add("control")
        return out

    @property
    def cut(self) -> float:
        """What the one-shot prune removes: ``channel_ratio`` of the channels for a channel ticket when set,
        else ``ratio`` (of the weights, or of the channels)."""
        return self.channel_ratio if self.structure == "channel" and self.channel_ratio is not None else self.ratio

    def target_sparsity(self, level: int) -> float:
        """Fraction of prunable weights removed after ``level`` pruning steps."""
        if self.name == "oneshot":
            return self.ratio if level > 0 else 0.0
        return 1.0 - (1.0 - self.rate) ** level


@dataclass
class FindConfig:
    """Ticket finding: cheap (FGSM) training of the dense net at a small constant LR.

    ``stop=early_bird`` ends finding once the mask the criterion would cut stops moving (You et al. 2020):
    the newest of the last ``window`` masks is within normalised Hamming distance ``threshold`` of each
    of the others. ``epochs`` is then the cap. A check runs every ``check_every`` optimizer steps (0: each
    epoch)."""

    epochs: int = 5
    lr: float = 0.01
    attack: str = "fgsm"  # none | fgsm | fgsm_rs | pgd
    schedule: str = "constant"
    stop: str = "fixed"  # fixed | early_bird
    window: int = 5
    threshold: float = 0.1
    check_every: int = 0

    def __post_init__(self) -> None:
        _choice("pipeline.find.stop", self.stop, ("fixed", "early_bird"))
        _require(self.window >= 2, "pipeline.find.window must be >= 2 (a mask and one to compare it with)")
        _require(0.0 <= self.threshold <= 1.0, f"pipeline.find.threshold={self.threshold} must be in [0, 1]")
        _require(self.check_every >= 0, "pipeline.find.check_every must be >= 0 (0: every epoch)")
        _require(self.epochs > 0, "pipeline.find.epochs must be positive")
        _require(self.lr > 0, f"pipeline.find.lr={self.lr} must be positive")
        _choice("pipeline.find.attack", self.attack, ("none", *FAST_ATTACKS, "pgd"))
        _choice("pipeline.find.schedule", self.schedule, SCHEDULES)

    def unused(self) -> set[str]:
        return {"window", "threshold", "check_every"} if self.stop == "fixed" else set()


@dataclass
class PipelineConfig:
    find: FindConfig = field(default_factory=FindConfig)
    ticket_epochs: int = 10  # the shortened schedule for the ticket (and its re-init control)
    dense_epochs: int = 20  # the full schedule for the dense baseline
    # which stages run, and how the report reads them: no stage computes anything different
    arms: list[str] = field(default_factory=lambda: ["ticket", "dense", "reinit"], metadata=NO_EFFECT)
    extra_find_lrs: list[float] = field(default_factory=list, metadata=NO_EFFECT)  # more tickets at these LRs
    target_margin: float = field(default=1.0, metadata=NO_EFFECT)  # target acc = dense best - this many points
    target_metric: str | None = field(default=None, metadata=NO_EFFECT)  # null: val_robust, or val_clean
    # the dense arm as a practitioner would run it, e.g. ["attack.eps_warmup_epochs=2"] (its stage's config carries
    # the effect, so this list itself is not part of any identity)
    dense_overrides: list[str] = field(default_factory=list, metadata=NO_EFFECT)
    cache_dir: str = field(default="cache", metadata=NO_EFFECT)

    def __post_init__(self) -> None:
        _require(self.ticket_epochs > 0 and self.dense_epochs > 0, "pipeline epochs must be positive")
        for arm in self.arms:
            _choice("pipeline.arms entry", arm, ARMS)
        _require(all(lr > 0 for lr in self.extra_find_lrs), "pipeline.extra_find_lrs must be positive")
        _require(self.target_margin >= 0, "pipeline.target_margin must be >= 0")
        if self.target_metric is not None:
            _choice("pipeline.target_metric", self.target_metric, ("val_robust", "val_clean"))


@dataclass
class FrontierConfig:
    """``task=frontier``: every arm at every budget (epochs) and peak LR, from the same θ0, per seed.

    Which runs exist, not what a run computes: each run is a cached stage of its own (``NO_EFFECT``)."""

    budgets: list[int] = field(default_factory=lambda: [1, 2, 4, 8], metadata=NO_EFFECT)
    lrs: list[float] = field(default_factory=lambda: [0.05, 0.1, 0.2], metadata=NO_EFFECT)  # same grid, all arms
    seeds: list[int] = field(default_factory=lambda: [0], metadata=NO_EFFECT)
    arms: list[str] = field(default_factory=lambda: ["ticket", "dense"], metadata=NO_EFFECT)  # + reinit
    # ticket structures side by side, each found from the same θ0 and seed (empty: prune.structure only);
    # the others' arms are named ticket_<structure>
    structures: list[str] = field(default_factory=list, metadata=NO_EFFECT)
    levels: list[float] = field(default_factory=list, metadata=NO_EFFECT)  # accuracy %; empty: from the best front
    saving_threshold: float = field(default=10.0, metadata=NO_EFFECT)  # headline: ticket >= this % cheaper
    # the verdict per level: a t interval at this confidence on the mean paired (per-seed) cost difference;
    # an interval that holds 0 is a tie
    confidence: float = field(default=0.9, metadata=NO_EFFECT)
    # named variants of the dense arm ("dense_<name>": ["attack.eps_warmup_epochs=2", ...]), each trained at every
    # budget and LR from the same θ0; every verdict compares with the best of dense and these at each level
    baselines: dict[str, list[str]] = field(default_factory=dict, metadata=NO_EFFECT)
    # the same for the ticket ("ticket_<name>": overrides), trained from the ticket found once per seed
    ticket_variants: dict[str, list[str]] = field(default_factory=dict, metadata=NO_EFFECT)
    # an arm's own peak-LR grid instead of ``lrs`` (a published recipe whose optimiser wants another scale: Adam at
    # Wong et al.'s 5e-3 beside SGD at 0.05-0.1); each arm's best LR is still chosen on validation
    arm_lrs: dict[str, list[float]] = field(default_factory=dict, metadata=NO_EFFECT)
    # the strong final evaluation of each arm's best run per seed (its best checkpoint, on a fixed test subset):
    # PGD with this many steps and restarts, so a net that masks gradients cannot pass for robust (0 steps: off)
    final_steps: int = field(default=50, metadata=NO_EFFECT)
    final_restarts: int = field(default=3, metadata=NO_EFFECT)
    final_samples: int = field(default=1000, metadata=NO_EFFECT)

    def lrs_of(self, arm: str) -> list[float]:
        """The peak LRs ``arm`` trains at: its own grid (``arm_lrs``) or the shared one."""
        return list(self.arm_lrs.get(arm, self.lrs))

    def __post_init__(self) -> None:
        _require(bool(self.budgets) and min(self.budgets) > 0, "frontier.budgets must be positive epochs")
        _require(bool(self.lrs) and min(self.lrs) > 0, "frontier.lrs must be positive")
        _require(bool(self.seeds), "frontier.seeds must name at least one seed")
        for arm in self.arms:
            _choice("frontier.arms entry", arm, ARMS)
        _require("dense" in self.arms, "frontier.arms needs dense: savings are measured against it")
        for structure in self.structures:
            _choice("frontier.structures entry", structure, STRUCTURES)
        _require(0.0 < self.confidence < 1.0, f"frontier.confidence={self.confidence} must be in (0, 1)")
        named = {*self.arms, *self.baselines, *self.ticket_variants, *(f"ticket_{s}" for s in self.structures)}
        for arm, grid in self.arm_lrs.items():
            _require(arm in named, f"frontier.arm_lrs.{arm}: no such arm (arms: {', '.join(sorted(named))})")
            _require(bool(grid) and min(grid) > 0, f"frontier.arm_lrs.{arm} must be positive LRs")
        _require(self.final_steps >= 0 and self.final_restarts > 0 and self.final_samples > 0,
                 "frontier.final_steps must be >= 0, final_restarts and final_samples > 0")
        for key, prefix in (("baselines", "dense_"), ("ticket_variants", "ticket_")):
            for name in getattr(self, key):
                _require(name.startswith(prefix) and name.removeprefix(prefix) not in ("", *STRUCTURES),
                         f"frontier.{key}: {name!r} must be named {prefix}<something> (not {prefix}unstructured "
                         f"or {prefix}channel)")


# the recipe search's optimisers: what each sets (``optim.*``); its peak LR is searched in ``search.space.lr[<name>]``
OPTIMIZERS = {"sgd_multistep": ("sgd", "multistep"), "sgd_cosine": ("sgd", "cosine"), "sgd_cyclic": ("sgd", "cyclic"),
              "adam_cyclic": ("adam", "cyclic"), "adam_cosine": ("adam", "cosine")}
SEARCH_ATTACKS = ("pgd", "trades", *FAST_ATTACKS)
TICKETS = ("none", *STRUCTURES)


@dataclass
class SearchSpace:
    """The recipes ``task=search`` may try: each list is a categorical choice, ``lr`` a log-uniform [low, high] per
    optimiser family (``sgd``, ``adam``). Fractions are of the run's own budget."""

    width: list[float] = field(default_factory=lambda: [0.5, 1.0])  # model.width
    attack: list[str] = field(default_factory=lambda: ["pgd", "fgsm_rs", "n_fgsm"])
    steps: list[int] = field(default_factory=lambda: [3, 7])  # PGD-k / TRADES inner steps (and PGD after a switch)
    switch: list[float] = field(default_factory=lambda: [1.0, 0.5])  # fast attack -> PGD at this fraction (1: never)
    ramp: list[float] = field(default_factory=lambda: [0.0, 0.5])  # ε ramp over this fraction of the run
    optimizer: list[str] = field(default_factory=lambda: ["sgd_multistep", "sgd_cyclic"])
    lr: dict[str, list[float]] = field(default_factory=lambda: {"sgd": [0.02, 0.3], "adam": [0.001, 0.01]})
    budget: list[int] = field(default_factory=lambda: [1, 2])  # epochs
    ticket: list[str] = field(default_factory=lambda: ["none", "unstructured", "channel"])
    ratio: list[float] = field(default_factory=lambda: [0.5, 0.8])  # a ticket's one-shot cut (of weights / channels)
    reset: list[str] = field(default_factory=lambda: ["init"])  # init (θ0) | rewind (θ at prune.rewind_epoch)

    def __post_init__(self) -> None:
        for key in ("width", "attack", "steps", "switch", "ramp", "optimizer", "budget", "ticket", "ratio", "reset"):
            _require(bool(getattr(self, key)), f"search.space.{key} is empty: list at least one choice")
        for key, options in (("attack", SEARCH_ATTACKS), ("optimizer", tuple(OPTIMIZERS)), ("ticket", TICKETS),
                             ("reset", ("init", "rewind"))):
            for value in getattr(self, key):
                _choice(f"search.space.{key} entry", value, options)
        _require(min(self.width) > 0, "search.space.width entries must be > 0")
        _require(min(self.steps) >= 1, "search.space.steps entries must be >= 1")
        _require(all(0 < f <= 1 for f in self.switch), "search.space.switch entries are fractions in (0, 1]")
        _require(all(0 <= f <= 1 for f in self.ramp), "search.space.ramp entries are fractions in [0, 1]")
        _require(min(self.budget) >= 1, "search.space.budget entries are positive epochs")
        _require(all(0 < r < 1 for r in self.ratio), "search.space.ratio entries must be in (0, 1)")
        for family in {OPTIMIZERS[o][0] for o in self.optimizer}:
            span = self.lr.get(family)
            _require(span is not None, f"search.space.lr.{family} is missing: an optimiser in search.space.optimizer "
                                       f"uses it (give [low, high])")
            _require(len(span) == 2 and 0 < span[0] <= span[1],  # type: ignore[arg-type]
                     f"search.space.lr.{family}={span} must be [low, high] with 0 < low <= high")


@dataclass
class SearchConfig:
    """``task=search``: a multi-objective Optuna study over ``space`` (robust validation accuracy up, training MACs
    with the finding down), then its front confirmed on fresh seeds. Which runs exist, not what a run computes."""

    trials: int = 12
    sampler: str = "tpe"  # tpe (multi-objective TPE) | nsga2 | random
    startup_trials: int = 4  # tpe: random trials first
    sampler_seed: int = 0
    space: SearchSpace = field(default_factory=SearchSpace)
    # our pruner: stop a trial once this fraction of its run is done and the study's front already reaches, at its
    # cost so far, ``prune_margin`` points more than its best (0 margin and 1 fraction: never)
    prune: bool = True
    prune_after: float = 0.5
    prune_margin: float = 5.0
    confirm: int = 3  # recipes of the front confirmed: the cheapest to each level, highest levels first
    confirm_seeds: list[int] = field(default_factory=lambda: [1, 2, 3])  # fresh: not the search's own seed
    storage: str | None = None  # the study's SQLite file; null: derived from the search under pipeline.cache_dir

    def __post_init__(self) -> None:
        _require(self.trials >= 1, f"search.trials={self.trials} must be >= 1")
        _choice("search.sampler", self.sampler, ("tpe", "nsga2", "random"))
        _require(self.startup_trials >= 0, "search.startup_trials must be >= 0")
        _require(0 < self.prune_after <= 1, f"search.prune_after={self.prune_after:g} must be in (0, 1]")
        _require(self.prune_margin >= 0, "search.prune_margin must be >= 0")
        _require(self.confirm >= 0, "search.confirm must be >= 0")
        _require(self.confirm == 0 or len(self.confirm_seeds) >= 2,
                 "search.confirm_seeds needs at least 2 seeds: a confirmation is a paired interval over seeds")


@dataclass
class Recipe:
    """One point of ``search.space``: how a net is trained, and what it costs. ``ticket`` none: dense from θ0."""

    width: float
    attack: str
    steps: int
    switch: float
    ramp: float
    optimizer: str
    lr: float
    budget: int
    ticket: str = "none"
    ratio: float = 0.0
    reset: str = "init"

    def label(self) -> str:
        """Short and complete: w0.5 fgsm_rs>pgd3@0.5 ramp0.5 sgd_cyclic lr0.12 2ep ticket=channel0.5/init."""
        attack = self.attack if self.attack in FAST_ATTACKS else f"{self.attack}{self.steps}"
        if self.attack in FAST_ATTACKS and self.switch < 1:
            attack += f">pgd{self.steps}@{self.switch:g}"
        ticket = "" if self.ticket == "none" else f" ticket={self.ticket}{self.ratio:g}/{self.reset}"
        ramp = f" ramp{self.ramp:g}" if self.ramp else ""
        return f"w{self.width:g} {attack}{ramp} {self.optimizer} lr{self.lr:.3g} {self.budget}ep{ticket}"

    def overrides(self, eps: float) -> list[str]:
        """The ``attack.*``, ``optim.*`` and ``model.width`` settings of this recipe (``with_overrides``). PGD-k and
        TRADES step 2.5 ε / k (Madry et al.'s rule: k steps can cross the ball and back)."""
        name, schedule = OPTIMIZERS[self.optimizer]
        out = [f"model.width={self.width}", f"attack.name={self.attack}", f"optim.name={name}",
               f"optim.schedule={schedule}", f"optim.lr={self.lr}"]
        if self.attack in FAST_ATTACKS and self.switch < 1:
            out.append(f"attack.switch_at={self.switch}")  # first: a step size is then PGD's, not refused
        elif self.attack in FAST_ATTACKS:  # no hand-over, whatever the base had: its PGD step goes first
            out += ["attack.step_size=null", "attack.switch_at=1.0"]
        if self.attack not in FAST_ATTACKS or self.switch < 1:
            out += [f"attack.steps={self.steps}", f"attack.step_size={2.5 * eps / self.steps}"]
        return out


@dataclass
class TrainerConfig:
    """Passed to ``lightning.Trainer`` (plus the two switches Lightning has no flag for)."""

    max_epochs: int = 10
    accelerator: str = "auto"
    devices: Any = "auto"
    strategy: str = "auto"
    num_nodes: int = 1
    precision: str = "32-true"
    sync_batchnorm: bool = False
    deterministic: bool = False
    gradient_clip_val: float | None = None
    limit_train_batches: Any = None
    limit_val_batches: Any = None
    limit_test_batches: Any = None
    log_every_n_steps: int = field(default=10, metadata=NO_EFFECT)
    enable_progress_bar: bool | None = field(default=None, metadata=NO_EFFECT)  # null: Rich bar on a terminal
    # torch.set_num_threads on CPU (null: torch's count). NO_EFFECT as a raw value: a stage's identity holds the count
    # resolved instead (stages/identity.py: cpu_threads), so null and the count it resolves to are one stage
    num_threads: int | None = field(default=None, metadata=NO_EFFECT)
    # the train step (attack + forward + backward) captured once and replayed as a CUDA graph; null: on when
    # training on one GPU. The same arithmetic, so not part of a stage's identity (ignored on CPU)
    cuda_graph: bool | None = field(default=None, metadata=NO_EFFECT)
    matmul_precision: str = "highest"  # torch.set_float32_matmul_precision: high = TF32 on tensor cores

    def __post_init__(self) -> None:
        _require(self.max_epochs > 0, f"trainer.max_epochs={self.max_epochs} must be positive")
        _require(self.num_threads is None or (isinstance(self.num_threads, int) and self.num_threads >= 1),
                 f"trainer.num_threads={self.num_threads} must be a positive thread count or null")
        _choice("trainer.matmul_precision", self.matmul_precision, ("highest", "high", "medium"))

    def unused(self) -> set[str]:
        """fp32 matmul precision counts only when it is not the exact default (caches stay)."""
        return {"matmul_precision"} if self.matmul_precision == "highest" else set()


@dataclass
class LoggerConfig:
    name: str = "csv"  # csv | wandb | tensorboard | none
    project: str = "lth_lightning"
    group: str | None = None
    mode: str = "offline"  # wandb: offline unless the user asks for online
    tags: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        _choice("logger.name", self.name, ("csv", "wandb", "tensorboard", "none"))
        _choice("logger.mode", self.mode, ("offline", "online", "disabled"))


@dataclass
class Config:
    task: str = field(default="train", metadata=NO_EFFECT)  # stages are run as plain training either way
    seed: int = 0
    run_dir: str = field(default=".", metadata=NO_EFFECT)
    ticket: str | None = None  # train from a saved ticket (mask + reset weights)
    ckpt_path: str | None = field(default=None, metadata=NO_EFFECT)  # eval task: the checkpoint to evaluate
    eval_split: str = field(default="test", metadata=NO_EFFECT)
    optimized_metric: str | None = field(default=None, metadata=NO_EFFECT)  # a sweeper's objective: path into result
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    attack: AttackConfig = field(default_factory=AttackConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    prune: PruneConfig = field(default_factory=PruneConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    frontier: FrontierConfig = field(default_factory=FrontierConfig, metadata=NO_EFFECT)
    search: SearchConfig = field(default_factory=SearchConfig, metadata=NO_EFFECT)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig, metadata=NO_EFFECT)

    def __post_init__(self) -> None:
        _choice("task", self.task, TASKS)
        _choice("eval_split", self.eval_split, ("val", "test"))
        _require(self.task != "eval" or bool(self.ckpt_path or self.ticket), "task=eval needs ckpt_path=<file>")
        _require(self.task not in ("fast_ticket", "frontier", "search") or self.ticket is None,
                 f"task={self.task} finds its own ticket; ticket=<file> is for task=train")
        for where, overrides in self.variants().items():
            self._check_ramp(with_overrides(self, overrides, where), where)
            _require("ticket_variants" not in where or not any(str(o).startswith("model.") for o in overrides),
                     f"{where}: a ticket variant trains the found ticket, whose net is fixed: no model.* override")
        self._check_controls()
        self._check_rewind()
        self._check_eps()
        _require(self.task != "train" or self.ticket is None or self.prune.name == "none",
                 f"ticket=<file> trains that ticket and prune={self.prune.name} would prune a net of its own: "
                 "drop one (prune=none to train the ticket, no ticket= to prune)")

    def unread(self) -> dict[str, str]:
        """Settings (dotted keys, or sections ending in '.') this task never reads, and why: given on the command
        line they would change nothing it computes, or silently retrain what it would not."""
        task, out = self.task, {}
        if task not in ("frontier", "search"):
            out["frontier."] = (f"task={task} reads no frontier.* setting (the frontier experiments select "
                                "task=frontier; fast_ticket runs one seed: seed=N)")
        if task != "search":
            out["search."] = f"task={task} reads no search.* setting (the recipe search is task=search)"
        if task in ("train", "eval"):
            out["pipeline."] = f"task={task} runs one model; pipeline.* belongs to task=fast_ticket and task=frontier"
            out["prune.control"] = (f"task={task} trains or evaluates one net as given; a control is an arm drawn "
                                    "from a finding (frontier.arms or pipeline.arms)")
        if task == "eval":
            out["attack."] = ("task=eval attacks at the checkpoint's own threat model (its training eps); set eval.eps "
                              "to evaluate at another eps")
        out |= self._switched_off()
        if self.model._target_:
            own = f"model._target_={self.model._target_} builds its own net: give its size in model.args"
            out |= {f"model.{k}": own for k in ("width", "width_multiple", "depth", "widen", "hidden")}
        if task == "frontier":
            out |= {"pipeline.ticket_epochs": "the frontier trains every arm at each of frontier.budgets",
                    "pipeline.arms": "the frontier's arms are frontier.arms",
                    "pipeline.extra_find_lrs": "the frontier finds one ticket per seed at pipeline.find.lr",
                    "pipeline.dense_overrides": "the frontier's dense variants are frontier.baselines"}
        if task == "search":
            out |= self._unread_by_search()
        return out

    @staticmethod
    def _unread_by_search() -> dict[str, str]:
        """What the recipe search sets per trial (search.space) or never reads (the frontier's ticket arms). The rest
        is the standard recipe it is judged against (dense, as a frontier trains it) and every trial's base."""
        recipe = "each trial sets it from search.space"
        out = {f"prune.{k}": recipe for k in ("ratio", "structure", "channel_ratio", "reset")}
        out |= {"frontier.seeds": "the search trains on seed=N and confirms on search.confirm_seeds",
                "frontier.arms": "the search confirms against dense and frontier.baselines",
                "frontier.structures": recipe, "frontier.ticket_variants": recipe,
                "frontier.saving_threshold": "the search reports every interval, not a headline threshold",
                "frontier.levels": "the search reads levels from the standard recipe's top",
                "pipeline.target_margin": "the search reads levels from the standard recipe's top"}
        return out | {f"pipeline.{k}": "the search trains recipes at search.space.budget"
                      for k in ("ticket_epochs", "arms", "extra_find_lrs", "dense_overrides")}

    def _switched_off(self) -> dict[str, str]:
        """Settings another setting turns off (each section's ``unused()``: prune.ratio under prune=none, attack.steps
        under FGSM, optim.milestones under a cosine schedule), with what turns them off. Not those whose default
        means "off" (a ramp of 0, a width of 1, one check an epoch, ...): giving that value changes nothing either."""
        why = {"data": f"data={self.data.name}", "model": f"model={self.model.name}",
               "optim": f"optim={self.optim.name} optim.schedule={self.optim.schedule}",
               "attack": f"attack.name={self.attack.name}", "eval": f"eval.autoattack={self.eval.autoattack}",
               "prune": f"prune={self.prune.name}" if self.prune.name == "none" else
               f"prune={self.prune.name}, prune.structure={self.prune.structure}, "
               f"prune.criterion={self.prune.criterion} and prune.reset={self.prune.reset}"}
        out = {}
        for section, context in why.items():
            for leaf in getattr(self, section).unused() - OFF_BY_DEFAULT.get(section, set()):
                if section == "prune" and leaf == "reinit_seed" and self.task in ("fast_ticket", "frontier", "search"):
                    continue  # the reinit arm reads it
                out[f"{section}.{leaf}"] = f"it is not read with {context}"
        return out

    def target_metric(self) -> str:
        """The metric arms race to: as configured, else robust accuracy when it is measured, else clean."""
        robust = self.eval.robust_val_for(self.attack)
        metric = self.pipeline.target_metric or ("val_robust" if robust else "val_clean")
        _require(metric != "val_robust" or robust,
                 "pipeline.target_metric=val_robust, but robust accuracy is not measured (attack=none or "
                 "eval.val_robust_samples=0); use pipeline.target_metric=val_clean or eval.robust=true")
        return metric

    def variants(self) -> dict[str, list[str]]:
        """Every configuration this task trains, as overrides of this one, by where they are set."""
        out: dict[str, list[str]] = {"the run": []}
        if self.task == "fast_ticket" and self.pipeline.dense_overrides:
            out["pipeline.dense_overrides"] = self.pipeline.dense_overrides
        if self.task == "frontier":
            for key in ("baselines", "ticket_variants"):
                out |= {f"frontier.{key}.{n}": v for n, v in getattr(self.frontier, key).items()}
        if self.task == "search":  # the hand-written baselines its confirmation trains
            out |= {f"frontier.baselines.{n}": v for n, v in self.frontier.baselines.items()}
        return out

    def _check_eps(self) -> None:
        """Attacks work in [0, 1] pixel space: an L∞ ε above 1 (or an L2 ε above the input's diameter) covers every
        image, and ε=8 trains a net to chance without a word. 8/255 was probably meant."""
        size = self.data.shape if self.data.name == "synthetic" or self.data._target_ else DATA_SHAPES[self.data.name]
        for key, eps, norm in (("attack.eps", self.attack.eps, "l2" if self.attack.name == "pgd_l2" else "linf"),
                               ("eval.eps", self.eval.eps, self.eval.norm)):
            top = 1.0 if norm == "linf" else (size[0] * size[1] * size[2]) ** 0.5
            if eps is None:  # eval.eps null: the training attack's
                continue
            _require(eps <= top,
                     f"{key}={eps:g} is above {top:g}, the largest {norm} distance between two images: attacks work "
                     f"in [0, 1] pixel space (for {eps:g}/255 write {eps / 255:.4g})")

    def _check_controls(self) -> None:
        """A control arm needs a ticket of the structure it controls among the task's ticket arms."""
        arms = {"fast_ticket": self.pipeline.arms, "frontier": self.frontier.arms}.get(self.task, [])
        found = {self.prune.structure, *(self.frontier.structures if self.task == "frontier" else [])}
        for arm in arms:
            want = CONTROLS.get(arm)
            _require(want is None or want in found,
                     f"{arm} is a control of {want} tickets, but this {self.task} finds {' and '.join(sorted(found))} "
                     f"tickets: set prune.structure={want}" + (" or add it to frontier.structures"
                                                               if self.task == "frontier" else ""))

    def _check_rewind(self) -> None:
        """θk is snapshotted during the first run: a rewind point after it ends would never be written (the prune at
        its end once failed with a traceback after training, leaving a half-written run)."""
        if self.prune.name == "none" or self.prune.reset != "rewind" or self.prune.rewind_step is not None:
            return
        pipeline = self.task in ("fast_ticket", "frontier", "search")
        first, where = ((self.pipeline.find.epochs, "pipeline.find.epochs") if pipeline
                        else (self.trainer.max_epochs, "trainer.max_epochs"))
        _require(self.prune.rewind_epoch <= first,
                 f"prune.rewind_epoch={self.prune.rewind_epoch} is after the first run ends ({where}={first}): θk "
                 "would never be taken; rewind to an epoch within it (or use prune.rewind_step)")

    def _check_ramp(self, variant: Config, where: str) -> None:
        """An ε ramp longer than the schedule it ramps would never reach attack.eps."""
        ramp = variant.attack.eps_warmup_epochs
        epochs = {"train": self.trainer.max_epochs, "frontier": self.pipeline.dense_epochs,  # frontier: full schedule
                  "search": self.pipeline.dense_epochs,
                  "fast_ticket": self.pipeline.dense_epochs if "dense" in where else
                  min(self.pipeline.ticket_epochs, self.pipeline.dense_epochs)}.get(self.task)
        _require(epochs is None or ramp <= epochs,
                 f"attack.eps_warmup_epochs={ramp:g} ({where}) is longer than the {epochs}-epoch schedule it ramps: "
                 "training would never reach attack.eps")


# Settings whose default value means "off" (so ``unused()`` leaves them out of identities): naming them on the command
# line at any value is fine, so ``Config.unread`` does not refuse them
OFF_BY_DEFAULT = {"attack": {"eps_warmup_epochs", "switch_at"}, "data": {"_target_", "args"},
                  "model": {"width", "width_multiple", "_target_", "args"}, "eval": {"checks_per_epoch"},
                  "prune": {"control", "channel_ratio", "structure", "channel_multiple"}}
VARIANT_SECTIONS = ("attack", "optim", "model", "eval")  # what a baseline or ticket variant may change ...
VARIANT_EVAL = ("catastrophic_drop",)  # ... of eval only its guard: every arm is measured under one threat model
VARIANT_MODEL = ("width",)  # ... of the model only its width (dense_w050: ["model.width=0.5"])


def with_overrides(cfg: Config, overrides: list[str], where: str) -> Config:
    """``cfg`` with ``section.key=value`` overrides of ``attack`` or ``optim`` (a baseline's trick: an ε ramp,
    another warmup); the changed section re-validates. A key that is not a setting, or a value of the wrong
    type, is a ``ConfigError`` naming ``where``."""
    import yaml

    out = _switch_attack(cfg, overrides)
    for item in overrides:
        key, sep, raw = str(item).partition("=")
        section, _, leaf = key.strip().partition(".")
        _require(bool(sep) and section in VARIANT_SECTIONS and bool(leaf),
                 f"{where}: {item!r} is not an override of attack.*, optim.*, model.width or eval.catastrophic_drop "
                 "(e.g. attack.eps_warmup_epochs=2)")
        only = {"eval": VARIANT_EVAL, "model": VARIANT_MODEL}.get(section)
        _require(only is None or leaf.strip() in only,
                 f"{where}: {key.strip()} may not differ between arms (of {section} a variant sets only "
                 f"{', '.join(f'{section}.{k}' for k in only or ())})")
        owner = getattr(out, section)
        _require(section != "model" or owner._target_ is None or yaml.safe_load(raw) in (1, 1.0),
                 f"{where}: model.width scales this package's models; model._target_={getattr(owner, '_target_', '')} "
                 "builds its own net (a narrower one is another factory or model.args)")
        names = [f.name for f in dataclasses.fields(owner)]
        if leaf not in names:
            from lth_lightning.preflight import not_a_setting

            raise ConfigError(f"{where}: {not_a_setting(key.strip(), f'{section}.', leaf, names)}")
        value, current = yaml.safe_load(raw), getattr(owner, leaf)
        if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(current, float) and isinstance(value, str):  # YAML 1.1 reads 5e-4 as a string
            with contextlib.suppress(ValueError):
                value = float(value)
        _require(current is None or value is None or isinstance(value, type(current)),
                 f"{where}: {key} takes a {type(current).__name__}, not {raw.strip()!r}")
        try:
            changed = dataclasses.replace(owner, **{leaf: value})
        except (TypeError, ValueError) as err:  # e.g. a string where a number goes, for a field that may be null
            raise ConfigError(f"{where}: {key.strip()}={raw.strip()} is not a valid value ({err})") from None
        out = copy.copy(out)  # a shallow copy: no re-validation of the whole config (it may hold variants)
        setattr(out, section, changed)
    return out


def _switch_attack(cfg: Config, overrides: list[str]) -> Config:
    """A variant that names another attack trains that attack at its own step: the step fields of the attack it
    replaces are cleared first (the overrides may set them again), so PGD's absolute step can never reach FGSM-RS."""
    keys = {str(o).partition("=")[0].strip(): str(o).partition("=")[2].strip() for o in overrides}
    if keys.get("attack.name", cfg.attack.name) == cfg.attack.name:
        return cfg
    out = copy.copy(cfg)
    out.attack = dataclasses.replace(cfg.attack, name="none", step_size=None, step_ratio=None,
                                     switch_at=1.0)  # named next
    return out


def validate(cfg: DictConfig | dict) -> Config:
    """Check a composed config against the schema and return the typed, range-checked object."""
    from lth_lightning.preflight import check_keys

    plain = OmegaConf.to_container(cfg, resolve=False) if isinstance(cfg, DictConfig) else cfg
    check_keys(plain, Config)  # a key the schema lacks is an error, even when added with '+'
    try:
        merged = OmegaConf.merge(OmegaConf.structured(Config), cfg)
        return OmegaConf.to_object(merged)  # type: ignore[return-value]
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None)
        detail = first_line(err, 300)
        raise ConfigError(f"invalid config{f' at {key}' if key else ''}: {detail}") from None


def register_schema() -> None:
    """Make the dataclasses Hydra's schema (``base_config``): every key exists, typed, at compose time.

    So ``prune.ratio=0.5`` works whichever prune option is selected, and a typo fails before any work.
    """
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="base_config", node=Config)
