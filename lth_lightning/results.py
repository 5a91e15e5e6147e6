"""Typed results: what a training epoch, a stage and a pipeline arm produce, serialised in one place.

Accuracies are percentages. ``None`` means *not measured* (no robust evaluation, a target never
reached) and is rendered as "–" (``fmt``), never as 0. ``to_json``/``from_json`` are the only code that
turns these into or out of plain JSON, so reports, aggregates, W&B replays and IMP tables read
attributes, not string keys.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from lth_lightning.config import Recipe

T = TypeVar("T")
NOT_MEASURED = "–"


@dataclass
class Ledger:
    """Training cost so far: forward+backward passes summed over the examples trained on, and seconds
    (validation excluded)."""

    passes: float = 0.0
    train_seconds: float = 0.0


@dataclass
class EpochRecord:
    epoch: int  # the epoch in progress (1-based); with eval.checks_per_epoch > 1 several records share one
    val_clean: float
    val_robust: float | None  # None: robust accuracy was not measured this epoch
    passes: float
    train_seconds: float
    val_classes: int | None = None  # distinct classes predicted on clean validation (1: the net has collapsed)

    def metric(self, name: str) -> float | None:
        """``val_clean`` or ``val_robust`` by name (the report's target metric)."""
        return self.val_clean if name == "val_clean" else self.val_robust


@dataclass
class ThreatModel:
    """What a robust accuracy means: the attack that produced it."""

    norm: str
    eps: float
    steps: int
    restarts: int = 1

    def label(self) -> str:
        k = self.eps * 255
        eps = f"{round(k)}/255" if abs(k - round(k)) < 1e-6 and 0 < k <= 16 else f"{self.eps:.3g}"
        restarts = f"×{self.restarts}" if self.restarts > 1 else ""
        return f"PGD-{self.steps}{restarts} {'L∞' if self.norm == 'linf' else 'L2'} ε={eps}"


@dataclass
class TestResult:
    clean: float
    robust: float | None = None  # PGD with restarts; None when robust evaluation is off
    autoattack: float | None = None
    threat: ThreatModel | None = None


@dataclass
class EarlyBirdRecord:
    """When early-bird finding stopped (None: it ran to its cap) and the mask distance at every check."""

    stopped_epoch: int | None
    stopped_step: int | None
    cap_epochs: int
    distances: list[float | None]  # per check; None before the window was full (nothing compared)


@dataclass
class StageResult:
    """One finished stage (a ``fit`` + optional ``test``), as ``result.json`` stores it."""

    stage: str
    epochs: int
    history: list[EpochRecord]
    ledger: Ledger
    sparsity: float  # fraction of prunable weights that were zero while training
    test: TestResult | None = None
    best_checkpoint: str | None = None
    ticket: str | None = None  # the ticket file this stage wrote (finding stages, IMP levels)
    dir: str = ""
    early_bird: EarlyBirdRecord | None = None  # finding with pipeline.find.stop=early_bird
    macs: int | None = None  # multiply-accumulates of one forward pass of one example (FlopCounterMode)
    collapsed: bool = False  # its best epoch predicted one class for every validation input (``collapsed``)
    cut: dict[str, float] = field(default_factory=dict)  # a finding's prune as achieved: weights/channels_removed
    reused: bool = False  # read from the stage cache: its seconds are those of the run that made it

    def best(self, metric: str = "val_robust") -> float | None:
        values = [v for h in self.history if (v := h.metric(metric)) is not None]
        return max(values) if values else None

    def is_collapsed(self, metric: str) -> bool:
        """Whether the epoch this stage kept (the first best by ``metric``) predicted a single class: its clean and
        robust accuracy are then that class's frequency, and no level above it is ever reached."""
        scored = [h for h in self.history if h.metric(metric) is not None]
        best = max(scored, key=lambda h: h.metric(metric), default=None)  # type: ignore[arg-type,return-value]
        return best is not None and best.val_classes == 1

    def first(self, metric: str = "val_robust") -> float | None:
        return self.history[0].metric(metric) if self.history else None


@dataclass
class EvalResult:
    """``task=eval``: a checkpoint (or ticket) re-evaluated, as ``eval.json`` stores it."""

    checkpoint: str
    split: str
    sparsity: float  # %
    test: TestResult


@dataclass
class CostToTarget:
    epochs: int | None = None  # None: never reached
    seconds: float | None = None
    passes: float | None = None
    macs: float | None = None  # passes x MACs per forward pass (None: reached never, or MACs not counted)


@dataclass
class Cost:
    seconds: float
    passes: float
    macs: float | None = None


@dataclass
class ArmSummary:
    sparsity: float  # %
    epochs: int
    epoch1_val_robust: float | None
    epoch1_val_clean: float | None
    best_val_robust: float | None
    best_val_clean: float | None
    to_target: CostToTarget
    find_cost: Cost
    total: Cost
    test: TestResult | None
    history: list[EpochRecord]
    find_stop: EarlyBirdRecord | None = None  # how the ticket's finding ended (early-bird)
    macs_per_pass: int | None = None  # MACs of one forward pass of one example (a compact arm's are fewer)
    checkpoint: str | None = None  # its best checkpoint (in the stage cache; linked from the run dir)
    ticket: str | None = None  # the ticket file it trained from (ticket arms)
    reused: bool = False  # read from the stage cache this time (seconds measured when it ran)
    collapsed: bool = False  # its best epoch predicted one class: it shows no saving (StageResult.collapsed)


@dataclass
class UnitSaving:
    fast_ticket_to_target: float | None
    dense_to_target: float | None
    saving_to_target_pct: float | None
    fast_ticket_full: float
    dense_full: float
    saving_full_pct: float | None


@dataclass
class PipelineCost:
    seconds: UnitSaving
    passes: UnitSaving
    macs: UnitSaving | None = None


@dataclass
class RunInfo:
    data: str
    model: str
    attack: str
    find_attack: str
    find_lr: float
    prune_ratio: float
    seed: int
    threat: str  # the threat model of every robust number, e.g. "PGD-10 L∞ ε=8/255"
    cut: str = ""  # what the prune achieved, e.g. "45.5 % of channels (asked 50 %), 74.6 % of weights"


@dataclass
class Summary:
    target: float
    target_metric: str
    config: RunInfo
    arms: dict[str, ArmSummary] = field(default_factory=dict)
    pipeline: PipelineCost | None = None
    verdict: str = ""  # one line first: did the ticket reach the target, at what cost and accuracy


@dataclass
class LevelRow:
    """One IMP level in ``levels.md``: sparsity it trained at, last-epoch validation, test."""

    level: int
    sparsity: float  # %
    val_clean: float | None
    val_robust: float | None
    test_clean: float | None
    test_robust: float | None
    test_autoattack: float | None
    train_seconds: float

    @classmethod
    def of(cls, level: int, r: StageResult) -> LevelRow:
        last = r.history[-1] if r.history else None
        t = r.test
        return cls(level, round(100 * r.sparsity, 2), rounded(last and last.val_clean),
                   rounded(last and last.val_robust), t and t.clean, t and t.robust, t and t.autoattack,
                   round(r.ledger.train_seconds, 1))


@dataclass
class ImpResult:
    levels: list[LevelRow]
    threat: str | None  # threat model of the robust columns; None: robust evaluation off


def describe_cut(cuts: list[dict[str, float]], asked: float) -> str:
    """What prunes achieved, over seeds (a range when they differ): channels beside weights for channel tickets,
    whose counts are rounded to multiples (so the channel cut is not the ratio asked)."""
    def span(key: str) -> str:
        values = sorted({100 * c[key] for c in cuts if key in c})
        return f"{values[0]:.1f} %" if len(values) == 1 else f"{values[0]:.1f}–{values[-1]:.1f} %"

    if not cuts or "weights_removed" not in cuts[0]:
        return ""
    if "channels_removed" in cuts[0]:
        return f"{span('channels_removed')} of channels removed (asked {100 * asked:g} %), {span('weights_removed')} " \
               "of the conv and linear weights"
    return f"{span('weights_removed')} of the conv and linear weights removed (asked {100 * asked:g} %)"


def rounded(value: float | None) -> float | None:
    """Two decimals, keeping None (not measured) as None."""
    return None if value is None else round(value, 2)


METRIC_NAMES = {"val_robust": "validation robust accuracy", "val_clean": "validation clean accuracy"}


def fmt(value: float | int | None, spec: str = ".2f", unit: str = "", missing: str = NOT_MEASURED) -> str:
    """A number for a table; ``missing`` (default "–") when it was not measured."""
    return missing if value is None else format(value, spec) + unit


# -- serialisation ------------------------------------------------------------------------------
def to_json(obj: Any) -> Any:
    return dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) else obj



def from_json(cls: type[T], data: Any) -> T:
    """Rebuild a (nested) result dataclass from its ``to_json`` form."""
    return _build(cls, data)


def _build(tp: Any, data: Any) -> Any:
    if data is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return _build(inner[0], data)
    if origin is list:
        (item,) = typing.get_args(tp)
        return [_build(item, d) for d in data]
    if origin is dict:
        _, value = typing.get_args(tp)
        return {k: _build(value, v) for k, v in data.items()}
    if dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        names = {f.name for f in dataclasses.fields(tp)}
        return tp(**{k: _build(hints[k], v) for k, v in data.items() if k in names})
    return data


def read_json(cls: type[T], path: Path) -> T:
    return from_json(cls, json.loads(Path(path).read_text()))


# -- the budget frontier ---------------------------------------------------------------------------
@dataclass
class FrontPoint:
    """A point an arm can stop at: cost so far (finding included) and the best accuracy reached by then."""

    passes: float
    seconds: float
    accuracy: float
    macs: float | None = None  # passes x MACs per pass of each stage (a compact ticket's passes cost less)


@dataclass
class BudgetRun:
    """One training run of the frontier: an arm, a seed, a budget (epochs) and a peak LR."""

    arm: str
    seed: int
    budget: int
    lr: float
    find_passes: float
    find_seconds: float
    best_val: float | None  # best target-metric accuracy on validation
    test_robust: float | None  # test PGD at the best-robust checkpoint
    test_clean: float | None
    points: list[FrontPoint]
    find_epochs: int | None = None  # epochs the finding ran (early-bird may stop before its cap)
    find_stage: str | None = None  # the finding stage's cache directory (its ticket.pt is the mask)
    collapsed: bool = False  # the run's kept epoch predicted one class (StageResult.collapsed)
    checkpoint: str | None = None  # its best checkpoint, in the stage cache
    ticket: str | None = None  # the ticket file it trained from (ticket arms and controls)
    reused: bool = False  # read from the stage cache this time (seconds measured when it ran)


@dataclass
class Spread:
    """Mean ± std over seeds (std None with one seed); ``n`` seeds measured."""

    mean: float | None
    std: float | None
    n: int


@dataclass
class BudgetRow:
    arm: str
    budget: int
    lr: float  # the peak LR chosen on validation (best mean over seeds)
    best_val: Spread
    test_robust: Spread
    passes: Spread  # total cost of the run, finding included


@dataclass
class Verdict:
    """One arm against a reference at one accuracy level: the paired saving over the seeds where both got there.

    ``saving`` is % of the reference's mean cost over those seeds, ``low``/``high`` its t interval (None with fewer
    than two such seeds). A saving over fewer than all seeds is only ever shown with "k of n seeds"."""

    saving: float | None
    low: float | None
    high: float | None
    seeds: int  # seeds where both arms reached the level
    n: int  # seeds in all
    arm_seeds: int  # seeds where the arm reached it
    reference_seeds: int  # seeds where the reference reached it
    text: str  # e.g. "ticket cheaper (90 % CI +4.1 to +9.0 %)", "tie (...)", "dense not reached"

    def ahead(self, threshold: float) -> bool:
        """At least ``threshold`` % cheaper on every seed, by the interval's lower end (two seeds at least), or
        reached on every seed where the reference never got there. One seed is never ahead: it has no interval; nor
        is a zero-width interval (every seed the same difference, with no resolution to widen it)."""
        if self.n < 2 or self.arm_seeds < self.n:
            return False
        if self.reference_seeds == 0:
            return True
        if self.low is None or (self.high is not None and self.high <= self.low):
            return False
        return self.seeds == self.n and self.low >= threshold

    def saving_label(self, unit: str = " %") -> str:
        """The saving as a table prints it: with "k of n seeds" when not every seed reached the level."""
        if self.saving is None:
            return NOT_MEASURED
        return f"{self.saving:.1f}{unit}" + ("" if self.seeds == self.n else f" ({self.seeds} of {self.n} seeds)")


@dataclass
class LevelCost:
    """The cheapest cost at which each arm's front reaches accuracy ``level``; the saving and its verdict."""

    level: float
    passes: dict[str, Spread]  # arm -> cost over seeds (mean None: not reached by every seed)
    seconds: dict[str, Spread]
    saving_pct: float | None  # ticket vs dense, in ``unit``
    verdict: str  # ticket cheaper / dense cheaper / tie (with the t interval), (dense) not reached, k of n seeds
    unit: str = "passes"  # what savings count: MACs when counted (equal to passes for same-size arms)
    macs: dict[str, Spread] = field(default_factory=dict)
    savings: dict[str, float | None] = field(default_factory=dict)  # every non-baseline arm vs ``baseline``
    verdicts: dict[str, str] = field(default_factory=dict)
    baseline: str = "dense"  # what savings are against: dense, or best_baseline (dense and its variants per seed)
    judged: dict[str, Verdict] = field(default_factory=dict)  # every non-baseline arm vs ``baseline``
    controlled: dict[str, Verdict] = field(default_factory=dict)  # each ticket arm vs its best control, per seed
    cheapest: str | None = None  # the arm with the lowest mean cost among those that reach the level on every seed


@dataclass
class FinalEval:
    """An arm's best run of a seed (by validation), its best checkpoint re-tested by a strong attack on a fixed test
    subset beside the PGD the run was tested with: a fast-AT net that masks gradients shows here."""

    arm: str
    seed: int
    budget: int
    lr: float
    checkpoint: str
    samples: int
    clean: float  # % on the subset
    strong: float  # % robust under ``threat``
    threat: str  # e.g. PGD-50 ×3 L∞ ε=0.3
    test_robust: float | None  # the run's own test PGD (all test images), for comparison


@dataclass
class FrontierResult:
    metric: str
    threat: str
    budgets: list[int]
    lrs: list[float]
    seeds: list[int]
    rows: list[BudgetRow]
    levels: list[LevelCost]
    headline: str
    runs: list[BudgetRun] = field(default_factory=list)
    confidence: float = 0.9  # of the verdicts' t intervals
    controls: dict[str, list[str]] = field(default_factory=dict)  # ticket arm -> its control arms
    cuts: dict[str, str] = field(default_factory=dict)  # ticket arm -> what its prune achieved, over the seeds
    collapsed: dict[str, str] = field(default_factory=dict)  # arm -> "k of n runs" collapsed (before #31: seeds)
    final: list[FinalEval] = field(default_factory=list)  # the strong final evaluation, per arm and seed


# -- the recipe search ------------------------------------------------------------------------------
@dataclass
class SearchTrial:
    """One trial of the study: the recipe it drew, how it ended and the run it trained (on the search's seed)."""

    number: int
    recipe: Recipe
    state: str  # complete | pruned (stopped by the front pruner: its points up to then still count)
    run: BudgetRun
    stopped: str | None = None  # why the pruner stopped it


@dataclass
class SearchPoint:
    """A point of the study's Pareto front: a trial's (cost so far, best validation accuracy so far)."""

    trial: int
    macs: float
    accuracy: float


@dataclass
class Confirmed:
    """A front recipe re-run on the confirmation seeds, under the arm name the level tables use."""

    arm: str  # recipe_<trial>
    trial: int
    recipe: Recipe
    level: float  # the front level it was chosen as the cheapest for (search seed, validation)
    controls: list[str] = field(default_factory=list)  # its ticket's controls, when it has a ticket


@dataclass
class SearchResult:
    """``task=search``: the study (trials, front), then the confirmation of its front on fresh seeds: each recipe's
    verdict per level against the standard recipe (``vs_standard``) and against the best hand-written baseline
    (``vs_best``), a ticket recipe's against its controls, and the strong final evaluation."""

    metric: str
    threat: str
    study: str  # the SQLite file
    sampler: str
    trials: list[SearchTrial]
    front: list[SearchPoint]
    confirmed: list[Confirmed]
    seeds: list[int]  # confirmation seeds
    baselines: list[str]  # dense (the standard recipe) and the hand-written baselines
    vs_standard: list[LevelCost]
    vs_best: list[LevelCost]
    runs: list[BudgetRun]  # the confirmation runs
    collapsed: dict[str, str]
    finals: list[FinalEval]
    headline: str
    ticket_line: str  # whether a front recipe holds a ticket, and whether it beats its controls
    standard_top: float = 0.0  # the standard recipe's mean top over the confirmation seeds (levels are read from it)
