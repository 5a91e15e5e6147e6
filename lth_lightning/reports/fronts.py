"""Reading budget fronts: what each arm costs to reach an accuracy level, and the verdict against the baseline.

An arm's front is the upper envelope of every epoch of every one of its runs: (cost so far, best validation
accuracy so far). The best checkpoint is kept, so stopping a schedule early is a real option. Reading the
fronts at accuracy levels gives "the cheapest cost to reach A" per arm and seed. The baseline is the
strongest dense net a practitioner would run: the envelope of ``dense`` and every ``dense_<variant>`` (an ε
ramp, another warmup), per seed. Each verdict is a paired comparison over the seeds where both reach the
level: a t interval (``frontier.confidence``, n - 1 degrees of freedom) on the mean per-seed cost difference;
an interval that holds 0 is a tie. Costs are forward passes, seconds and MACs (passes x each stage's MACs per
pass); savings are in MACs when every stage counted them, so a compacted channel ticket is charged what it costs.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Collection, Sequence

from lth_lightning.config import FrontierConfig
from lth_lightning.results import BudgetRow, BudgetRun, FrontPoint, LevelCost, Spread, StageResult, Verdict

LEVEL_FRACTIONS = (0.5, 0.75, 0.9, 0.95)  # default levels: these fractions of the best front's top, and top - 1


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


def verdict(arm: Sequence[float | None], base: Sequence[float | None], confidence: float,
            names: tuple[str, str] = ("ticket", "dense"), *, resolution: float) -> Verdict:
    """The arm's saving % over the reference (mean costs over the seeds where both reach the level) and the
    verdict: a t interval at ``confidence`` on the mean paired difference (n - 1 degrees of freedom), a tie
    when it holds 0. "<reference> not reached" only when no reference seed gets there; "k of n seeds" otherwise.
    ``names``: how the text calls the arm and the reference.

    ``resolution``: the cost of one validation check (of the coarser of the two arms). A cost is read only at checks,
    so a difference is known to within one check, and seeds whose differences quantise to the same value have a
    standard deviation of 0: the interval's half-width is never below ``resolution`` (with none, a zero-width
    interval says so and is never ahead)."""
    from scipy.stats import t as student_t

    me, ref = names
    n, k_arm, k_base = len(base), sum(v is not None for v in arm), sum(v is not None for v in base)
    pairs = [(a, b) for a, b in zip(arm, base, strict=True) if a is not None and b is not None]

    def out(saving: float | None, text: str, low: float | None = None, high: float | None = None) -> Verdict:
        return Verdict(saving, low, high, len(pairs), n, k_arm, k_base, text)

    if k_base == 0:
        return out(None, f"{ref} not reached" + (f" (the arm: {k_arm} of {n} seeds)" if k_arm < n else "")
                   if k_arm else "not reached")
    if not pairs:
        return out(None, f"not reached ({ref}: {k_base} of {n} seeds)")
    arm_mean, base_mean = statistics.fmean(a for a, _ in pairs), statistics.fmean(b for _, b in pairs)
    saving = 100.0 * (1.0 - arm_mean / base_mean)
    direction = f"{me} cheaper" if saving > 0 else f"{ref} cheaper" if saving < 0 else "same cost"
    seeds = "" if len(pairs) == n else f", {len(pairs)} of {n} seeds"
    if len(pairs) < 2:
        return out(saving, f"{direction} (1 seed{seeds}: no interval)")
    diffs = [b - a for a, b in pairs]
    half = student_t.ppf((1 + confidence) / 2, len(diffs) - 1) * statistics.stdev(diffs) / math.sqrt(len(diffs))
    half = max(half, resolution)
    low, high = (100.0 * (statistics.fmean(diffs) + sign * half) / base_mean for sign in (-1, 1))
    if half == 0:
        return out(saving, f"{direction} (every seed the same difference: no interval{seeds})", low, high)
    interval = f"{100 * confidence:.0f} % CI {low:+.1f} to {high:+.1f} %{seeds}"
    return out(saving, f"tie ({interval})" if low <= 0 <= high else f"{direction} ({interval})", low, high)


def budget_rows(runs: list[BudgetRun], arms: Sequence[str], fc: FrontierConfig) -> list[BudgetRow]:
    """Per arm and budget, the LR with the best mean validation accuracy over seeds, and what it gave."""
    rows = []
    for arm in arms:
        for budget in fc.budgets:
            by_lr = {lr: [r for r in runs if (r.arm, r.budget, r.lr) == (arm, budget, lr)] for lr in fc.lrs_of(arm)}
            lr, chosen = max(by_lr.items(), key=lambda kv: spread([r.best_val for r in kv[1]]).mean or -1.0)
            rows.append(BudgetRow(arm, budget, lr, spread([r.best_val for r in chosen]),
                                  spread([r.test_robust for r in chosen]),
                                  spread([r.points[-1].passes if r.points else None for r in chosen])))
    return rows


def fronts(runs: Sequence[BudgetRun], arm: str, seed: int, unit: str = "passes") -> list[FrontPoint]:
    """An arm's front on one seed: the envelope of its runs' points, collapsed runs left out (a net at chance
    reaches the chance level cheaply and would show a saving it did not make; ``group_front`` of one arm)."""
    return group_front(runs, {arm}, seed, unit)


BEST = "best_baseline"  # the per-seed envelope of dense and its variants, when there are variants
CONTROL = "best_control"  # the per-seed envelope of a ticket arm's controls


def baseline_front(runs: Sequence[BudgetRun], seed: int, unit: str = "passes") -> list[FrontPoint]:
    """The strongest dense net of a seed: the envelope of every baseline arm's points."""
    return group_front(runs, {r.arm for r in runs if is_baseline(r.arm)}, seed, unit)


def group_front(runs: Sequence[BudgetRun], arms: Collection[str], seed: int, unit: str = "passes") -> list[FrontPoint]:
    """The envelope of several arms' points for one seed (a ticket's controls: the best of them per seed), collapsed
    runs left out as in ``fronts``."""
    return envelope([p for r in runs if r.arm in arms and r.seed == seed and not r.collapsed for p in r.points],
                    unit)


def level_costs(runs: list[BudgetRun], arms: Sequence[str], fc: FrontierConfig,
                controls: dict[str, list[str]] | None = None) -> list[LevelCost]:
    """Per level: each arm's cheapest cost (passes, seconds, MACs); every other arm's verdict against the strongest
    baseline (dense, or the best of dense and its variants per seed); each ticket arm's verdict against its best
    control (``controls``: ticket arm -> control arms; per seed the cheapest of them); the cheapest arm. In MACs
    when counted (so a compact net's cheaper passes count)."""
    unit = cost_unit(runs)
    top = max((mean_top(runs, arm, fc.seeds) for arm in arms), default=0.0)  # the best arm's top
    levels = sorted(fc.levels) or sorted({round(f * top, 2) for f in LEVEL_FRACTIONS} | {round(top - 1.0, 2)})
    units = ("passes", "seconds", "macs") if unit == "macs" else ("passes", "seconds")
    base = BEST if len([a for a in arms if is_baseline(a)]) > 1 else "dense"
    controls = {t: c for t, c in (controls or {}).items() if t in arms and c}
    out = []
    for level in levels:
        costs = {u: {arm: [cheapest(fronts(runs, arm, s, u), level, u) for s in fc.seeds] for arm in arms}
                 for u in units}
        if base == BEST:  # per seed and unit, the cheapest any baseline gets there
            for u in units:
                costs[u][BEST] = [cheapest(baseline_front(runs, s, u), level, u) for s in fc.seeds]
        bases = [a for a in arms if is_baseline(a)]
        against = "best baseline" if base == BEST else "dense"  # each verdict names its own arm (#32: every arm's
        judged = {a: verdict(costs[unit][a], costs[unit][base], fc.confidence, (a, against),  # once read "ticket")
                             resolution=check_cost(runs, [a, *bases], unit)) for a in arms if not is_baseline(a)}
        controlled = {t: verdict(costs[unit][t], [cheapest(group_front(runs, c, s, unit), level, unit)
                                                  for s in fc.seeds], fc.confidence, (t, "best control"),
                                 resolution=check_cost(runs, [t, *c], unit))
                      for t, c in controls.items()}
        main = judged.get("ticket")
        spreads = {u: {a: spread(v) for a, v in costs[u].items()} for u in units}
        out.append(LevelCost(level, spreads["passes"], spreads["seconds"], main.saving if main else None,
                             main.text if main else "not reached", unit, spreads.get("macs", {}),
                             {a: v.saving for a, v in judged.items()}, {a: v.text for a, v in judged.items()}, base,
                             judged, controlled, cheapest_arm(spreads[unit], arms)))
    return out


def check_cost(runs: Sequence[BudgetRun], arms: Collection[str], unit: str) -> float:
    """The resolution of the costs read off these arms' fronts: the most one validation check costs in any of their
    runs (the step between consecutive points; a one-point run, its whole cost)."""
    steps = [0.0]
    for r in runs:
        if r.arm in arms and r.points:
            costs = [getattr(p, unit) for p in r.points]
            steps.append(max(b - a for a, b in itertools.pairwise(costs)) if len(costs) > 1 else costs[0])
    return max(steps)


def cheapest_arm(costs: dict[str, Spread], arms: Sequence[str]) -> str | None:
    """The arm with the lowest mean cost among those that reach the level on every seed."""
    reached = {a: costs[a].mean for a in arms if costs[a].mean is not None}
    return min(reached, key=reached.__getitem__) if reached else None  # type: ignore[arg-type]


def collapsed_runs(runs: Sequence[BudgetRun], arms: Sequence[str]) -> dict[str, str]:
    """Per arm: "k of n runs" that collapsed (one class predicted at the best epoch), counted run by run: a seed
    with one collapsed run of four is not "none" (#31). A collapsed run's points enter no front (``fronts``)."""
    return {a: f"{sum(r.collapsed for r in runs if r.arm == a)} of {sum(r.arm == a for r in runs)} runs"
            for a in arms}


def mean_top(runs: Sequence[BudgetRun], arm: str, seeds: Sequence[int]) -> float:
    """The mean over seeds of the highest accuracy an arm's front reaches."""
    tops = [front[-1].accuracy for s in seeds if (front := fronts(runs, arm, s))]
    return statistics.fmean(tops) if tops else 0.0


def headline(levels: list[LevelCost], threshold: float, metric: str, arm: str = "ticket",
             collapsed: dict[str, str] | None = None) -> str:
    """What ``arm`` saves, in a few sentences: the levels where it is at least ``threshold`` % cheaper than the
    strongest baseline on every seed (the interval's lower end, two seeds at least), the same against its best
    control (does the mask matter?), and the arms with collapsed runs ("k of n runs")."""
    name = "The ticket" if arm == "ticket" else f"The {arm.split('_', 1)[-1]} ticket"
    against = "the best baseline" if levels and levels[0].baseline == BEST else "dense"
    judged = [(lv, lv.judged.get(arm) or _legacy(lv, arm)) for lv in levels]
    parts = [_ahead_sentence(name, f"cheaper than {against}", judged, threshold, metric)]
    controlled = [(lv, lv.controlled[arm]) for lv in levels if arm in lv.controlled]
    if controlled:
        parts.append(_ahead_sentence("Against its best control it", "cheaper", controlled, threshold, metric))
    fell = {a: k for a, k in (collapsed or {}).items() if not k.startswith("0 of")}
    if fell:
        parts.append("Collapsed (one class predicted): " + ", ".join(f"{a} {k}" for a, k in fell.items()) + ".")
    return " ".join(parts)


def headlines(levels: list[LevelCost], arms: Sequence[str], threshold: float, metric: str,
              collapsed: dict[str, str]) -> str:
    """A frontier's headline: every ticket arm's (one, unless ``frontier.structures`` adds more; collapse counted on
    the first), then the cheapest arm at each level."""
    tickets = [a for a in arms if a.startswith("ticket")] or ["ticket"]
    lines = [headline(levels, threshold, metric, a, collapsed if i == 0 else None) for i, a in enumerate(tickets)]
    return " ".join([*lines, cheapest_line(levels, metric)])


def cheapest_line(levels: list[LevelCost], metric: str) -> str:
    """The cheapest arm at each level (of the arms that reach it on every seed)."""
    return (f"Cheapest arm to each level of {metric} (every seed reaching it): "
            + "; ".join(f"{lv.level:.1f} %: {lv.cheapest or 'none on every seed'}" for lv in levels) + ".")


def _ahead_sentence(name: str, what: str, judged: list[tuple[LevelCost, Verdict]], threshold: float,
                    metric: str) -> str:
    wins = [f"{lv.level:.1f} %" for lv, v in judged if v.ahead(threshold)]
    rest = "; ".join(f"{lv.level:.1f} %: {v.text}{_pct(v)}" for lv, v in judged if not v.ahead(threshold))
    if judged and judged[0][1].n == 1:
        return f"{name} is ahead at no level of {metric}: one seed has no interval ({rest})."
    claim = (f"{name} is at least {threshold:g} % {what} (by its interval's lower end, every seed) at "
             f"{' and '.join(wins)} {metric}" if wins else
             f"{name} is at least {threshold:g} % {what} at no level of {metric} read")
    return f"{claim}{'; not at ' if wins and rest else ': ' if rest else ''}{rest}."


def _legacy(lv: LevelCost, arm: str) -> Verdict:
    """A level stored before verdicts were typed: its text, no interval (never ahead)."""
    text = lv.verdicts.get(arm, lv.verdict) if lv.verdicts else lv.verdict
    return Verdict(lv.savings.get(arm, lv.saving_pct) if lv.savings else lv.saving_pct, None, None, 0, 0, 0, 0, text)


def _pct(v: Verdict) -> str:
    return "" if v.saving is None else f", {v.saving_label()}"
