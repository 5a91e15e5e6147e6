"""``task=frontier``: what a boosting ticket saves at each accuracy level, against a fairly scheduled dense net.

For every seed the ticket is found once (fast_ticket's finding stage; its cost is charged to every ticket
point). Then every arm trains from the same θ0 at every budget in ``frontier.budgets`` on a *complete*
schedule compressed to that budget (warmup and decay milestones scale with it) and at every peak LR of
``frontier.lrs`` (the same grid for every arm, so no saving comes from a badly tuned baseline). Each run is
a cached stage: a rerun of the same frontier trains nothing.

An arm's front is the upper envelope of every epoch of every one of its runs: (cost so far, best
validation accuracy so far). The best checkpoint is kept, so stopping a schedule early is a real option.
Reading the fronts at accuracy levels gives "the cheapest cost to reach A" per arm and seed; across
seeds, a saving smaller than ``frontier.tie_sigmas`` standard deviations of the paired difference is a tie.
Costs are forward passes, seconds and MACs (passes x each stage's MACs per pass); savings are in MACs when
every stage counted them, so a compacted channel ticket (``frontier.structures``) is charged what it costs.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Sequence
from pathlib import Path

from lth_lightning.attacks import threat_model
from lth_lightning.config import Config
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

    Milestones are fractions of training already; warmup keeps its share of the full dense schedule."""
    warmup = cfg.optim.warmup_epochs * budget / cfg.pipeline.dense_epochs
    optim = dataclasses.replace(cfg.optim, lr=lr, warmup_epochs=warmup)
    pipeline = dataclasses.replace(cfg.pipeline, ticket_epochs=budget, dense_epochs=budget)
    return dataclasses.replace(cfg, seed=seed, optim=optim, pipeline=pipeline)


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


def arm_names(cfg: Config) -> list[str]:
    """Every arm of the frontier, the extra ticket structures right after ``ticket``."""
    extra = [a for a in ticket_arms(cfg) if a != "ticket"] if "ticket" in cfg.frontier.arms else []
    return [n for a in cfg.frontier.arms for n in ([a, *extra] if a == "ticket" else [a])]


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


def verdict(ticket: Sequence[float | None], dense: Sequence[float | None], sigmas: float) -> tuple[float | None, str]:
    """Saving % of the ticket over dense (mean costs) and whether it is more than ``sigmas`` paired stds
    (with one seed there is no spread to test: the verdict says so)."""
    t, d = spread(ticket), spread(dense)
    if t.mean is None or d.mean is None:
        return None, "not reached" if d.mean is not None or t.mean is None else "dense not reached"
    saving = 100.0 * (1.0 - t.mean / d.mean)
    diffs = [dv - tv for tv, dv in zip(ticket, dense, strict=True)]  # type: ignore[operator]
    direction = "ticket cheaper" if saving > 0 else "dense cheaper"
    if len(diffs) < 2:
        return saving, f"{direction} (1 seed: no tie test)"
    sd = statistics.stdev(diffs)
    if abs(statistics.fmean(diffs)) < sigmas * sd:
        return saving, "tie"
    return saving, direction


def _find(cfg: Config, dm: ImageDataModule, seed: int, structure: str) -> tuple[Stage, StageResult]:
    prune = dataclasses.replace(cfg.prune, structure=structure)
    return find_ticket(dataclasses.replace(cfg, seed=seed, prune=prune), dm, cfg.pipeline.find.lr)


def _train_runs(cfg: Config, dm: ImageDataModule, metric: str) -> list[BudgetRun]:
    fc, runs = cfg.frontier, []
    structures, needed = ticket_arms(cfg), set(arm_names(cfg)) - {"dense"}
    for seed in fc.seeds:
        tickets = {a: _find(cfg, dm, seed, s) for a, s in structures.items()
                   if a in needed or (a == "ticket" and "reinit" in needed)}
        for budget in fc.budgets:
            for lr in fc.lrs:
                run_cfg = budget_config(cfg, seed, budget, lr)
                for arm in arm_names(cfg):
                    found = None if arm == "dense" else tickets[arm if arm in tickets else "ticket"]
                    result = train_arm(run_cfg, dm, "ticket" if arm in tickets else arm,
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


def level_costs(runs: list[BudgetRun], cfg: Config) -> list[LevelCost]:
    """Per level: each arm's cheapest cost (passes, seconds, MACs) and every non-dense arm's saving and
    verdict against dense, in MACs when counted (so a compact ticket's cheaper passes count)."""
    fc, arms, unit = cfg.frontier, arm_names(cfg), cost_unit(runs)
    top = max((mean_top(runs, arm, fc.seeds) for arm in arms), default=0.0)  # the best arm's top
    levels = sorted(fc.levels) or sorted({round(f * top, 2) for f in LEVEL_FRACTIONS} | {round(top - 1.0, 2)})
    units = ("passes", "seconds", "macs") if unit == "macs" else ("passes", "seconds")
    out = []
    for level in levels:
        costs = {u: {arm: [cheapest(fronts(runs, arm, s, u), level, u) for s in fc.seeds] for arm in arms}
                 for u in units}
        said = {a: verdict(costs[unit][a], costs[unit]["dense"], fc.tie_sigmas) for a in arms if a != "dense"}
        saving, say = said.get("ticket", (None, "not reached"))
        spreads = {u: {a: spread(v) for a, v in costs[u].items()} for u in units}
        out.append(LevelCost(level, spreads["passes"], spreads["seconds"], saving, say, unit, spreads.get("macs", {}),
                             {a: s for a, (s, _) in said.items()}, {a: v for a, (_, v) in said.items()}))
    return out


def mean_top(runs: Sequence[BudgetRun], arm: str, seeds: Sequence[int]) -> float:
    """The mean over seeds of the highest accuracy an arm's front reaches."""
    tops = [front[-1].accuracy for s in seeds if (front := fronts(runs, arm, s))]
    return statistics.fmean(tops) if tops else 0.0


def headline(levels: list[LevelCost], threshold: float, metric: str, arm: str = "ticket") -> str:
    """One line: the highest accuracy level at which ``arm`` is at least ``threshold`` % cheaper than
    dense, and where it is not ahead."""
    def said(lv: LevelCost) -> tuple[float | None, str]:
        return (lv.savings[arm], lv.verdicts[arm]) if arm in lv.verdicts else (lv.saving_pct, lv.verdict)

    def ahead(lv: LevelCost) -> bool:
        saving, say = said(lv)
        return say == "dense not reached" or (say.startswith("ticket cheaper") and (saving or 0.0) >= threshold)

    name = "The ticket" if arm == "ticket" else f"The {arm.split('_', 1)[-1]} ticket"
    wins = [lv for lv in levels if ahead(lv)]
    others = ", ".join(f"{lv.level:.1f} % ({said(lv)[1]}{_pct(said(lv)[0])})" for lv in levels if not ahead(lv))
    if not wins:
        return f"{name} is at least {threshold:g} % cheaper than dense at no accuracy level read ({metric}): {others}."
    best = max(wins, key=lambda lv: lv.level)
    saving, say = said(best)
    unit = "MACs" if best.unit == "macs" else "passes"
    how = ("dense never got there within the budgets" if saving is None
           else f"{saving:.1f} % fewer {unit}, finding included")
    note = ", one seed: no tie test" if "1 seed" in say else ""
    rest = f"; not at {others}" if others else ""
    return (f"{name} is ahead of dense (at least {threshold:g} % cheaper) up to {best.level:.1f} % {metric} "
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
                            _headlines(cfg, levels, metric), runs)
    if is_rank_zero():
        from lth_lightning.pipelines.frontier_report import publish_frontier

        publish_frontier(cfg, result, Path(cfg.run_dir))
    return result
