"""The frontier report: ``frontier.json``, ``frontier.md``, ``frontier.png``, printed, and sent to W&B."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

from lth_lightning.config import CONTROLS, Config
from lth_lightning.reports.files import write_report
from lth_lightning.reports.fronts import fronts, is_baseline, spread
from lth_lightning.results import METRIC_NAMES, FrontierResult, LevelCost, Spread, fmt


def _mean_std(s: Spread, spec: str = ".2f", missing: str = "not reached") -> str:
    if s.mean is None:
        return missing if s.n == 0 else f"{missing} ({s.n} seed{'s' if s.n > 1 else ''} did)"
    return format(s.mean, spec) + (f" ± {format(s.std, spec)}" if s.std is not None else "")


def _order(arm: str) -> tuple[int, str]:
    rank = 0 if arm.startswith("ticket") else 1 if arm == "reinit" or arm in CONTROLS else \
        3 if arm == "best_baseline" else 2
    return rank, arm


def _cost(lv: LevelCost, arm: str) -> Spread:
    return lv.macs[arm] if lv.unit == "macs" else lv.passes[arm]


def _judged(lv: LevelCost, arm: str) -> str:
    v = lv.judged.get(arm)
    if v is None:  # stored before verdicts were typed
        return f"{fmt((lv.savings or {}).get(arm, lv.saving_pct), '.1f', ' %')} | {(lv.verdicts or {}).get(arm, '–')}"
    return f"{v.saving_label()} | {v.text}"


def _collapsed_runs(result: FrontierResult, arm: str, budget: int, lr: float) -> str:
    runs = [r for r in result.runs if (r.arm, r.budget, r.lr) == (arm, budget, lr)]
    fell = sum(r.collapsed for r in runs)
    return f"{fell} of {len(runs)}" if fell else "–"


def render_frontier(result: FrontierResult) -> str:
    arms = sorted({r.arm for r in result.rows}, key=_order)
    others = [a for a in arms if not is_baseline(a)]
    tickets = [t for t in result.controls if t in arms]
    base = result.levels[0].baseline if result.levels else "dense"
    cost_arms = [*arms, base] if base not in arms else arms
    unit = "MACs" if result.levels and result.levels[0].unit == "macs" else "passes"
    metric = METRIC_NAMES[result.metric] + (f" [{result.threat}]" if result.metric == "val_robust" else "")
    lines = [f"# Budget frontier ({len(result.seeds)} seed{'s' if len(result.seeds) > 1 else ''}: "
             f"{', '.join(map(str, result.seeds))})", "", f"**{result.headline}**", "",
             f"Accuracy: {metric}, mean ± std over seeds. Cost: {unit} in total, summed over every training example "
             "seen (MACs = forward passes × the MACs of one forward pass of the arm's net), finding included for "
             "ticket arms and reinit; the controls (random_mask, random_channels, narrow) need no finding and are "
             f"charged none. Savings are in {unit}. Each arm's front is the upper envelope of every epoch of every "
             f"run (budgets {result.budgets} epochs × peak LRs {result.lrs}). Levels: {LEVELS_NOTE}.", "",
             *([("Tickets (as pruned, over the seeds): " + "; ".join(f"{a}: {c}" for a, c in result.cuts.items()
                                                                     if c) + "."), ""] if result.cuts else []),
             "## Cheapest cost to reach each accuracy level", "",
             "| level % | " + " | ".join(f"{a} {unit}" for a in cost_arms) + " | "
             + " | ".join(f"{a} s" for a in cost_arms) + " | "
             + " | ".join(f"{a} saving | verdict" for a in others) + " | "
             + "".join(f"{t} vs best control: saving | verdict | " for t in tickets) + "cheapest arm |",
             "|---|" + "---|" * (2 * len(cost_arms) + 2 * len(others) + 2 * len(tickets) + 1)]
    for lv in result.levels:
        controlled = [f"{lv.controlled[t].saving_label()} | {lv.controlled[t].text}" if t in lv.controlled
                      else "– | –" for t in tickets]
        lines.append(f"| {lv.level:.2f} | " + " | ".join(_mean_std(_cost(lv, a), ".3g") for a in cost_arms) + " | "
                     + " | ".join(_mean_std(lv.seconds[a], ".1f") for a in cost_arms) + " | "
                     + " | ".join(_judged(lv, a) for a in others) + " | "
                     + "".join(f"{c} | " for c in controlled) + f"{lv.cheapest or 'none on every seed'} |")
    lines += ["", "## Each budget at its best peak LR (chosen on validation)", "",
              "| arm | budget (epochs) | peak LR | best val % | test PGD % (best checkpoint) | passes (total) | "
              "collapsed runs |", "|---|---|---|---|---|---|---|"]
    for r in result.rows:
        lines.append(f"| {r.arm} | {r.budget} | {r.lr:g} | {_mean_std(r.best_val, missing='–')} | "
                     f"{_mean_std(r.test_robust, missing='–')} | {_mean_std(r.passes, '.3g', missing='–')} | "
                     f"{_collapsed_runs(result, r.arm, r.budget, r.lr)} |")
    lines += _final_table(result)
    fell = {a: k for a, k in result.collapsed.items() if not k.startswith("0 of")}
    lines += ["", "Collapsed runs (the run predicted one class at its best epoch; its points enter no front, so it "
              "reaches no level and shows no saving): "
              + (", ".join(f"{a} {k}" for a, k in fell.items()) if fell else "none") + "."]
    reused = sum(r.reused for r in result.runs)
    lines += ["", f"Seconds are measured when each stage ran; {reused} of {len(result.runs)} runs came from the stage "
              "cache this time, so theirs are from the run that made them (passes and MACs do not depend on when)."]
    lines += ["", "Files: every run's best checkpoint and the ticket it trained from are in frontier.json "
              "(runs[].checkpoint, runs[].ticket); e.g. " + _example(result)]
    against = ("best_baseline: per seed, the cheapest of dense and its variants (" + ", ".join(
        a for a in arms if is_baseline(a)) + ")") if base != "dense" else "dense"
    controls = "; ".join(f"{t}: {', '.join(c)}" for t, c in result.controls.items())
    lines += ["", f"Savings and verdicts are against {against}"
              + (f"; each ticket's second verdict is against its best control per seed ({controls})" if controls
                 else "") + f". A verdict compares, over the seeds where both arms reach the level, the mean per-seed "
              f"cost difference: its {100 * result.confidence:.0f} % t interval (n − 1 degrees of freedom, shown as "
              "% of the reference's mean cost) holding 0 is a tie. A saving over fewer than all seeds says \"k of n "
              "seeds\"; one seed has no interval and is never called ahead. \"dense not reached\": no baseline seed "
              "got there; \"not reached\" in a cost cell: some seed did not (k seeds did). Levels above the weaker "
              "arm's top are where only one arm arrives within the budgets."]
    return "\n".join(lines) + "\n"


def _final_table(result: FrontierResult) -> list[str]:
    """Each arm's best run per seed re-tested by the strong attack, beside the PGD it was tested with."""
    if not result.final:
        return []
    first = result.final[0]
    lines = ["", f"## Strong final evaluation: each arm's best run per seed, {first.threat}, first "
             f"{first.samples} test images", "",
             "A net that masks gradients (a fast-AT failure) keeps its own test PGD number and loses here.", "",
             "| arm | seeds | test PGD % (run's own) | strong % | clean % (subset) | runs (budget, LR) |",
             "|---|---|---|---|---|---|"]
    for arm in sorted({f.arm for f in result.final}, key=_order):
        mine = [f for f in result.final if f.arm == arm]
        runs = ", ".join(f"s{f.seed}: b{f.budget} lr{f.lr:g}" for f in mine)
        lines.append(f"| {arm} | {len(mine)} | {_mean_std(spread([f.test_robust for f in mine]), missing='–')} | "
                     f"{_mean_std(spread([f.strong for f in mine]))} | {_mean_std(spread([f.clean for f in mine]))} | "
                     f"{runs} |")
    return lines


def _example(result: FrontierResult) -> str:
    """A copy-paste command for one ticket run's checkpoint (what a reader opens first)."""
    run = next((r for r in result.runs if r.arm == "ticket" and r.checkpoint), None)
    run = run or next((r for r in result.runs if r.checkpoint), None)
    if run is None:
        return "none was written."
    return (f"the {run.arm} at budget {run.budget}, LR {run.lr:g}, seed {run.seed}: "
            f"`python -m lth_lightning task=eval ckpt_path={run.checkpoint} data=<the run's data>`.")


LEVELS_NOTE = ("50, 75, 90 and 95 % of the best arm's mean top, and that top − 1 point, unless frontier.levels sets "
               "them")


def plot_frontier(result: FrontierResult, path: Path) -> Path:
    """Each arm's front, mean ± std over seeds, against cost on a log axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    unit = result.levels[0].unit if result.levels else "passes"
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.set_prop_cycle(color=plt.cm.tab20.colors)  # more than 10 arms (controls and baselines) keep distinct colours
    costs = [getattr(p, unit) for r in result.runs for p in r.points]
    grid = np.geomspace(max(min(costs), 1.0), max(costs), 200) if costs else np.array([1.0])
    for arm in sorted({r.arm for r in result.runs}, key=_order):
        curves = []
        for seed in result.seeds:
            front = fronts(result.runs, arm, seed, unit)
            curves.append([max((p.accuracy for p in front if getattr(p, unit) <= c), default=math.nan) for c in grid])
        values = np.array(curves, dtype=float)
        with warnings.catch_warnings():  # costs below an arm's first point are empty for every seed
            warnings.simplefilter("ignore", RuntimeWarning)
            mean, std = np.nanmean(values, axis=0), np.nanstd(values, axis=0)
        line = ax.plot(grid, mean, label=arm)[0]
        if len(result.seeds) > 1:
            ax.fill_between(grid, mean - std, mean + std, color=line.get_color(), alpha=0.2)
    for lv in result.levels:  # the levels the verdicts are read at, labelled on the right
        ax.axhline(lv.level, color="gray", lw=0.5, ls=":")
        ax.annotate(f"{lv.level:.1f}", (1.0, lv.level), xycoords=("axes fraction", "data"), fontsize=7,
                    color="gray", ha="left", va="center")
    ax.set_xlim(grid[0], max(grid[-1], 10 * grid[0]))  # positive limits even when no front has a point
    ax.set_xscale("log")
    ax.set_xlabel(f"{'MACs' if unit == 'macs' else 'forward passes'}, total over training examples (finding included)")
    threat = f" [{result.threat}]" if result.metric == "val_robust" else ""
    ax.set_ylabel(f"best {METRIC_NAMES[result.metric]} so far (%){threat}", fontsize=8)
    ax.set_title(result.headline if len(result.headline) < 70 else "budget frontier", fontsize=9)
    ax.legend()
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def publish_frontier(cfg: Config, result: FrontierResult, run_dir: Path) -> None:
    """frontier.json, frontier.md, frontier.png in the run dir; printed; sent to W&B / TensorBoard."""
    from lth_lightning.reports.tracking import log_frontier

    markdown = render_frontier(result)
    png = write_report(run_dir, "frontier", result, markdown, lambda path: plot_frontier(result, path),
                       "frontier.png")
    log_frontier(cfg, result, markdown, png, run_dir)
