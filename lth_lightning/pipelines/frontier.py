"""``task=frontier``: what a boosting ticket saves at each accuracy level, against a fairly scheduled dense net.

For every seed the ticket is found once (fast_ticket's finding stage; its cost is charged to every ticket
point). Then every arm trains from the same θ0 at every budget in ``frontier.budgets`` on a *complete*
schedule compressed to that budget (warmup and decay milestones scale with it) and at every peak LR of
``frontier.lrs`` (the same grid for every arm, so no saving comes from a badly tuned baseline). Each run is
a cached stage: a rerun of the same frontier trains nothing.

An arm's front is the upper envelope of every epoch of every one of its runs: (cost so far, best
validation accuracy so far). The best checkpoint is kept, so stopping a schedule early is a real option.
Reading the fronts at accuracy levels gives "the cheapest cost to reach A" per arm and seed. The baseline is
the strongest dense net a practitioner would run: the envelope of ``dense`` and every ``frontier.baselines``
variant (an ε ramp, another warmup), per seed. Each verdict is a paired comparison over the seeds where both
reach the level: a t interval (``frontier.confidence``, n - 1 degrees of freedom) on the mean per-seed cost
difference; an interval that holds 0 is a tie.
Costs are forward passes, seconds and MACs (passes x each stage's MACs per pass); savings are in MACs when
every stage counted them, so a compacted channel ticket (``frontier.structures``) is charged what it costs.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Sequence
from pathlib import Path

from lth_lightning.attacks import threat_model
from lth_lightning.config import Config, with_overrides
from lth_lightning.data import ImageDataModule, build_datamodule
from lth_lightning.pipelines.fast_ticket import check, find_ticket, train_arm
from lth_lightning.pipelines.report import target_metric
from lth_lightning.pipelines.runner import is_rank_zero
from lth_lightning.pipelines.stages import Stage
from lth_lightning.results import (
    BudgetRow,
    BudgetRun,
    FrontierResult,
    FrontPoint,
    LevelCost,
    Spread,
    StageResult,
)

LEVEL_FRACTIONS = (0.5, 0.75, 0.9, 0.95)  # default levels: these fractions of the best front's top, and top - 1


def budget_config(cfg: Config, seed: int, budget: int, lr: float) -> Config:
    """The run's config: the full schedule compressed to ``budget`` epochs at peak LR ``lr``.

    Milestones are fractions of training already; the LR warmup and the ε ramp keep their share of the full
    dense schedule."""
    share = budget / cfg.pipeline.dense_epochs
    optim = dataclasses.replace(cfg.optim, lr=lr, warmup_epochs=cfg.optim.warmup_epochs * share)
    attack = dataclasses.replace(cfg.attack, eps_warmup_epochs=cfg.attack.eps_warmup_epochs * share)
    pipeline = dataclasses.replace(cfg.pipeline, ticket_epochs=budget, dense_epochs=budget)
    return dataclasses.replace(cfg, seed=seed, optim=optim, attack=attack, pipeline=pipeline)


def run_points(result: StageResult, metric: str, find: StageResult | None) -> list[FrontPoint]:
    """Every epoch of a run as a stopping point: cost so far (finding included), best accuracy so far."""
    offset_p, offset_s = (find.ledger.passes, find.ledger.train_seconds) if find else (0.0, 0.0)
    counted = result.macs is not None and (find is None or find.macs is not None)
    offset_m = find.ledger.passes * find.macs if counted and find else 0.0  # type: ignore[operator]
    points, best = [], None
    for h in result.history:
        value = h.metric(metric)
        if value is not None:
            best = value if best is None else max(best, value)
        if best is not None:
            macs = offset_m + h.passes * result.macs if counted else None  # type: ignore[operator]
            points.append(FrontPoint(offset_p + h.passes, offset_s + h.train_seconds, best, macs))
    return points


def ticket_arms(cfg: Config) -> dict[str, str]:
    """Ticket arm name -> its structure: ``ticket`` is ``prune.structure``; ``frontier.structures`` adds
    ``ticket_<structure>`` arms found from the same θ0 and seed."""
    own = cfg.prune.structure
    return {"ticket": own, **{f"ticket_{s}": s for s in cfg.frontier.structures if s != own}}


@dataclasses.dataclass(frozen=True)
class ArmSpec:
    """How an arm trains: its stage kind, the ticket arm whose finding it consumes, its config overrides."""

    kind: str  # ticket | dense | reinit
    ticket: str | None  # the ticket arm (structure) it is built from; None for dense arms
    overrides: tuple[str, ...] = ()


def arm_specs(cfg: Config) -> dict[str, ArmSpec]:
    """Every arm in report order: tickets (structures, then variants), dense and its baseline variants, reinit."""
    fc, specs = cfg.frontier, {}
    for arm in fc.arms:
        if arm == "ticket":
            specs |= {name: ArmSpec("ticket", name) for name in ticket_arms(cfg)}
            specs |= {name: ArmSpec("ticket", "ticket", tuple(ov)) for name, ov in fc.ticket_variants.items()}
        elif arm == "dense":
            specs |= {"dense": ArmSpec("dense", None)}
            specs |= {name: ArmSpec("dense", None, tuple(ov)) for name, ov in fc.baselines.items()}
        else:
            specs["reinit"] = ArmSpec("reinit", "ticket")
    return specs


def arm_names(cfg: Config) -> list[str]:
    return list(arm_specs(cfg))


def is_baseline(arm: str) -> bool:
    """Dense and its variants (``frontier.baselines`` names start with ``dense_``)."""
    return arm == "dense" or arm.startswith("dense_")


def cost_unit(runs: Sequence[BudgetRun]) -> str:
    """MACs when every point counted them (arms may differ in size), else passes."""
    return "macs" if all(p.macs is not None for r in runs for p in r.points) else "passes"


def envelope(points: Sequence[FrontPoint], unit: str = "passes") -> list[FrontPoint]:
    """The upper envelope: points sorted by cost, each more accurate than every cheaper one."""
    front: list[FrontPoint] = []
    for p in sorted(points, key=lambda p: (getattr(p, unit), -p.accuracy)):
        if not front or p.accuracy > front[-1].accuracy:
            front.append(p)
    return front


def cheapest(front: Sequence[FrontPoint], level: float, unit: str = "passes") -> float | None:
    """The lowest cost at which the front reaches ``level`` (None: never)."""
    return next((getattr(p, unit) for p in front if p.accuracy >= level), None)


def spread(values: Sequence[float | None]) -> Spread:
    """Mean ± std over seeds; the mean is None unless every seed has a value (an arm must always get there)."""
    if not values or any(v is None for v in values):
        return Spread(None, None, sum(v is not None for v in values))
    vals = [float(v) for v in values if v is not None]
    return Spread(statistics.fmean(vals), statistics.stdev(vals) if len(vals) > 1 else None, len(vals))


def verdict(arm: Sequence[float | None], base: Sequence[float | None], confidence: float) -> tuple[float | None, str]:
    """The arm's saving % over the baseline (mean costs over the seeds where both reach the level) and the
    verdict: a t interval at ``confidence`` on the mean paired difference (n - 1 degrees of freedom), a tie
    when it holds 0. "dense not reached" only when no baseline seed gets there; "k of n seeds" otherwise."""
    from scipy.stats import t as student_t

    n, k_arm, k_base = len(base), sum(v is not None for v in arm), sum(v is not None for v in base)
    pairs = [(a, b) for a, b in zip(arm, base, strict=True) if a is not None and b is not None]
    if k_base == 0:
        return None, ("dense not reached" + (f" (the arm: {k_arm} of {n} seeds)" if k_arm < n else "")
                      if k_arm else "not reached")
    if not pairs:
        return None, f"not reached (dense: {k_base} of {n} seeds)"
    arm_mean, base_mean = statistics.fmean(a for a, _ in pairs), statistics.fmean(b for _, b in pairs)
    saving = 100.0 * (1.0 - arm_mean / base_mean)
    direction = "ticket cheaper" if saving > 0 else "dense cheaper"
    seeds = "" if len(pairs) == n else f", {len(pairs)} of {n} seeds"
    if len(pairs) < 2:
        return saving, f"{direction} (1 seed{seeds}: no interval)"
    diffs = [b - a for a, b in pairs]
    half = student_t.ppf((1 + confidence) / 2, len(diffs) - 1) * statistics.stdev(diffs) / math.sqrt(len(diffs))
    low, high = (100.0 * (statistics.fmean(diffs) + sign * half) / base_mean for sign in (-1, 1))
    interval = f"{100 * confidence:.0f} % CI {low:+.1f} to {high:+.1f} %{seeds}"
    return saving, f"tie ({interval})" if low <= 0 <= high else f"{direction} ({interval})"


def _find(cfg: Config, dm: ImageDataModule, seed: int, structure: str) -> tuple[Stage, StageResult]:
    prune = dataclasses.replace(cfg.prune, structure=structure)
    return find_ticket(dataclasses.replace(cfg, seed=seed, prune=prune), dm, cfg.pipeline.find.lr)


def _train_runs(cfg: Config, dm: ImageDataModule, metric: str) -> list[BudgetRun]:
    fc, runs, specs = cfg.frontier, [], arm_specs(cfg)
    consumed = {spec.ticket for spec in specs.values() if spec.ticket}
    variants = {arm: with_overrides(cfg, list(spec.overrides), arm) for arm, spec in specs.items()}
    for seed in fc.seeds:
        tickets = {a: _find(cfg, dm, seed, s) for a, s in ticket_arms(cfg).items() if a in consumed}
        for budget in fc.budgets:
            for lr in fc.lrs:
                for arm, spec in specs.items():
                    found = tickets[spec.ticket] if spec.ticket else None
                    result = train_arm(budget_config(variants[arm], seed, budget, lr), dm, spec.kind,
                                       f"{arm}@b{budget}-lr{lr:g}-s{seed}", found)
                    runs.append(_budget_run(arm, seed, budget, lr, result, found[1] if found else None, metric))
    return runs


def _budget_run(arm: str, seed: int, budget: int, lr: float, result: StageResult, find: StageResult | None,
                metric: str) -> BudgetRun:
    test = result.test
    return BudgetRun(arm, seed, budget, lr, find.ledger.passes if find else 0.0,
                     find.ledger.train_seconds if find else 0.0, result.best(metric),
                     test.robust if test else None, test.clean if test else None, run_points(result, metric, find),
                     len(find.history) if find else None,
                     Path(find.ticket).parent.name if find and find.ticket else None)


def budget_rows(runs: list[BudgetRun], cfg: Config) -> list[BudgetRow]:
    """Per arm and budget, the LR with the best mean validation accuracy over seeds, and what it gave."""
    rows = []
    for arm in arm_names(cfg):
        for budget in cfg.frontier.budgets:
            by_lr = {lr: [r for r in runs if (r.arm, r.budget, r.lr) == (arm, budget, lr)] for lr in cfg.frontier.lrs}
            lr, chosen = max(by_lr.items(), key=lambda kv: spread([r.best_val for r in kv[1]]).mean or -1.0)
            rows.append(BudgetRow(arm, budget, lr, spread([r.best_val for r in chosen]),
                                  spread([r.test_robust for r in chosen]),
                                  spread([r.points[-1].passes if r.points else None for r in chosen])))
    return rows


def fronts(runs: Sequence[BudgetRun], arm: str, seed: int, unit: str = "passes") -> list[FrontPoint]:
    return envelope([p for r in runs if (r.arm, r.seed) == (arm, seed) for p in r.points], unit)


BEST = "best_baseline"  # the per-seed envelope of dense and its variants, when there are variants


def baseline_front(runs: Sequence[BudgetRun], seed: int, unit: str = "passes") -> list[FrontPoint]:
    """The strongest dense net of a seed: the envelope of every baseline arm's points."""
    return envelope([p for r in runs if is_baseline(r.arm) and r.seed == seed for p in r.points], unit)


def level_costs(runs: list[BudgetRun], cfg: Config) -> list[LevelCost]:
    """Per level: each arm's cheapest cost (passes, seconds, MACs), and every other arm's saving and verdict
    against the strongest baseline (dense, or the best of dense and its variants per seed), in MACs when
    counted (so a compact ticket's cheaper passes count)."""
    fc, arms, unit = cfg.frontier, arm_names(cfg), cost_unit(runs)
    top = max((mean_top(runs, arm, fc.seeds) for arm in arms), default=0.0)  # the best arm's top
    levels = sorted(fc.levels) or sorted({round(f * top, 2) for f in LEVEL_FRACTIONS} | {round(top - 1.0, 2)})
    units = ("passes", "seconds", "macs") if unit == "macs" else ("passes", "seconds")
    base = BEST if len([a for a in arms if is_baseline(a)]) > 1 else "dense"
    out = []
    for level in levels:
        costs = {u: {arm: [cheapest(fronts(runs, arm, s, u), level, u) for s in fc.seeds] for arm in arms}
                 for u in units}
        if base == BEST:  # per seed and unit, the cheapest any baseline gets there
            for u in units:
                costs[u][BEST] = [cheapest(baseline_front(runs, s, u), level, u) for s in fc.seeds]
        said = {a: verdict(costs[unit][a], costs[unit][base], fc.confidence) for a in arms if not is_baseline(a)}
        saving, say = said.get("ticket", (None, "not reached"))
        spreads = {u: {a: spread(v) for a, v in costs[u].items()} for u in units}
        out.append(LevelCost(level, spreads["passes"], spreads["seconds"], saving, say, unit, spreads.get("macs", {}),
                             {a: s for a, (s, _) in said.items()}, {a: v for a, (_, v) in said.items()}, base))
    return out


def mean_top(runs: Sequence[BudgetRun], arm: str, seeds: Sequence[int]) -> float:
    """The mean over seeds of the highest accuracy an arm's front reaches."""
    tops = [front[-1].accuracy for s in seeds if (front := fronts(runs, arm, s))]
    return statistics.fmean(tops) if tops else 0.0


def headline(levels: list[LevelCost], threshold: float, metric: str, arm: str = "ticket") -> str:
    """One line: the highest accuracy level at which ``arm`` is at least ``threshold`` % cheaper than the
    strongest baseline (its interval excluding 0), and where it is not ahead."""
    def said(lv: LevelCost) -> tuple[float | None, str]:
        return (lv.savings[arm], lv.verdicts[arm]) if arm in lv.verdicts else (lv.saving_pct, lv.verdict)

    def ahead(lv: LevelCost) -> bool:
        saving, say = said(lv)
        return say.startswith("dense not reached") or (say.startswith("ticket cheaper")
                                                        and (saving or 0.0) >= threshold)

    name = "The ticket" if arm == "ticket" else f"The {arm.split('_', 1)[-1]} ticket"
    against = "the best dense variant" if levels and levels[0].baseline == BEST else "dense"
    wins = [lv for lv in levels if ahead(lv)]
    others = ", ".join(f"{lv.level:.1f} % ({said(lv)[1]}{_pct(said(lv)[0])})" for lv in levels if not ahead(lv))
    if not wins:
        return (f"{name} is at least {threshold:g} % cheaper than {against} at no accuracy level read ({metric}): "
                f"{others}.")
    best = max(wins, key=lambda lv: lv.level)
    saving, say = said(best)
    unit = "MACs" if best.unit == "macs" else "passes"
    how = (f"{against} never got there within the budgets" if saving is None
           else f"{saving:.1f} % fewer {unit}, finding included")
    note = ", one seed: no interval" if "no interval" in say else ""
    rest = f"; not at {others}" if others else ""
    return (f"{name} is ahead of {against} (at least {threshold:g} % cheaper) up to {best.level:.1f} % {metric} "
            f"({how}{note}){rest}.")


def _pct(value: float | None) -> str:
    return "" if value is None else f", {value:+.1f} %"


def _headlines(cfg: Config, levels: list[LevelCost], metric: str) -> str:
    """The headline of every ticket arm (one, unless ``frontier.structures`` adds more)."""
    arms = [a for a in arm_names(cfg) if a.startswith("ticket")] or ["ticket"]
    return " ".join(headline(levels, cfg.frontier.saving_threshold, metric, a) for a in arms)


def run_frontier(cfg: Config) -> FrontierResult:
    check(cfg)
    metric = target_metric(cfg)
    dm = build_datamodule(cfg.data)
    runs = _train_runs(cfg, dm, metric)
    levels = level_costs(runs, cfg)
    threat = threat_model(cfg.eval, cfg.attack)  # the threat model every robust number carries
    result = FrontierResult(metric, threat.label() if threat else "not measured", list(cfg.frontier.budgets),
                            list(cfg.frontier.lrs), list(cfg.frontier.seeds), budget_rows(runs, cfg), levels,
                            _headlines(cfg, levels, metric), runs, cfg.frontier.confidence)
    if is_rank_zero():
        from lth_lightning.pipelines.frontier_report import publish_frontier

        publish_frontier(cfg, result, Path(cfg.run_dir))
    return result
