"""The recipe search's report: ``search.json``, ``search.md``, ``search.png``, printed, and sent to W&B."""

from __future__ import annotations

from pathlib import Path

from lth_lightning.config import Config
from lth_lightning.reports.files import write_report
from lth_lightning.reports.frontier import _cost, _mean_std
from lth_lightning.reports.fronts import cheapest_arm
from lth_lightning.results import METRIC_NAMES, LevelCost, SearchResult, Verdict


def fraction(v: Verdict) -> str:
    """A saving as the fraction of the reference's cost, with its interval: 0.35× (0.30–0.41×). A cost is never
    below 0, so an interval reaching past it (two seeds: a wide t) is shown from 0."""
    if v.saving is None:
        return v.text
    frac = f"{1 - v.saving / 100:.2f}×"
    if v.low is None or v.high is None:
        return f"{frac} ({v.text})"
    return f"{frac} ({max(0.0, 1 - v.high / 100):.2f}–{1 - v.low / 100:.2f}×; {v.text})"


def cheapest_recipe(lv: LevelCost, result: SearchResult) -> str | None:
    """The confirmed recipe with the lowest mean cost among those that reach ``lv`` on every seed."""
    return cheapest_arm({c.arm: _cost(lv, c.arm) for c in result.confirmed}, [c.arm for c in result.confirmed])


def search_headline(result: SearchResult) -> str:
    """What the search found, at the standard recipe's top - 1 (the highest level read) and below."""
    if not result.confirmed:
        return (f"The search ran {len(result.trials)} trials; nothing was confirmed (search.confirm=0 or an empty "
                "front).")
    parts = []
    for lv in reversed(result.vs_standard):
        arm = cheapest_recipe(lv, result)
        if arm is None:
            parts.append(f"{lv.level:.1f} %: no confirmed recipe on every seed")
            continue
        recipe = next(c for c in result.confirmed if c.arm == arm).recipe
        parts.append(f"{lv.level:.1f} %: {arm} ({recipe.label()}) at {fraction(lv.judged[arm])} the standard "
                     "recipe's cost")
    top = result.standard_top or max(lv.level for lv in result.vs_standard) + 1.0  # stored before it was kept
    return (f"Cheapest confirmed recipe ({len(result.seeds)} fresh seeds, MACs, finding included) to each level of the "
            f"standard recipe's (dense) mean top {top:.1f} % and below: " + "; ".join(parts) + ".")


def ticket_line(result: SearchResult) -> str:
    """Whether a confirmed front recipe holds a ticket, and whether that ticket beats its controls at any level."""
    tickets = [c for c in result.confirmed if c.recipe.ticket != "none"]
    held = sum(t.recipe.ticket != "none" for t in result.trials)
    if not tickets:
        return (f"No confirmed front recipe holds a ticket ({held} of {len(result.trials)} trials drew one); the "
                "ticket is not part of the cheapest way to any level here.")
    out = []
    for c in tickets:
        wins = [f"{lv.level:.1f} %" for lv in result.vs_best if c.arm in lv.controlled
                and lv.controlled[c.arm].low is not None and lv.controlled[c.arm].low > 0]
        what = f"{c.recipe.ticket}, {c.recipe.ratio:g} cut, reset to {c.recipe.reset}"
        out.append(f"{c.arm} holds a ticket ({what}); against its best control ({', '.join(c.controls)}) it "
                   + (f"is cheaper by its interval at {', '.join(wins)}" if wins else "is cheaper at no level"))
    return "; ".join(out) + "."


def render_search(result: SearchResult) -> str:
    pruned = sum(t.state == "pruned" for t in result.trials)
    metric = METRIC_NAMES[result.metric] + (f" [{result.threat}]" if result.metric == "val_robust" else "")
    lines = ["# Recipe search", "", f"**{result.headline}**", "", f"**{result.ticket_line}**", "",
             f"Selection: {metric} on the search's seed; cost: MACs summed over every training example seen, the "
             "ticket's finding included. Confirmation reports test accuracy and the strong final evaluation.", "",
             f"## Study: {len(result.trials)} trials ({pruned} stopped by the front pruner), sampler "
             f"{result.sampler}", "", f"Study file: `{result.study}` (the same command resumes it).", "",
             "| trial | recipe | state | best val % | MACs at its end |", "|---|---|---|---|---|"]
    for t in result.trials:
        best = max((p.accuracy for p in t.run.points), default=None)
        end = t.run.points[-1].macs if t.run.points else None
        state = t.state + (" (collapsed)" if t.run.collapsed else "")
        lines.append(f"| {t.number} | {t.recipe.label()} | {state} | {'–' if best is None else f'{best:.1f}'} | "
                     f"{'–' if end is None else f'{end:.3g}'} |")
    lines += ["", "## Pareto front (search seed, validation)", "", "| MACs | best val % | trial |", "|---|---|---|"]
    lines += [f"| {p.macs:.3g} | {p.accuracy:.1f} | {p.trial} |" for p in result.front]
    if result.confirmed:
        lines += _confirmation(result)
    return "\n".join(lines) + "\n"


def _confirmation(result: SearchResult) -> list[str]:
    seeds = ", ".join(map(str, result.seeds))
    lines = ["", f"## Confirmation on seeds {seeds}", "", "| arm | trial | recipe | chosen as cheapest to (front %) |",
             "|---|---|---|---|"]
    lines += [f"| {c.arm} | {c.trial} | {c.recipe.label()} | {c.level:.1f} |" for c in result.confirmed]
    baselines = ", ".join(result.baselines)
    for title, levels in (("Against the standard recipe (dense)", result.vs_standard),
                          (f"Against the best of the standard and the hand-written baselines ({baselines})",
                           result.vs_best)):
        arms = [c.arm for c in result.confirmed]
        base = levels[0].baseline if levels else "dense"
        lines += ["", f"### {title}", "", f"| level % | {base} MACs | "
                  + " | ".join(f"{a} MACs | {a} cost vs {base}" for a in arms) + " |",
                  "|---|---|" + "---|---|" * len(arms)]
        for lv in levels:
            lines.append(f"| {lv.level:.2f} | {_mean_std(_cost(lv, base), '.3g')} | " + " | ".join(
                f"{_mean_std(_cost(lv, a), '.3g')} | {fraction(lv.judged[a])}" for a in arms) + " |")
    tickets = [c for c in result.confirmed if c.controls]
    for c in tickets:
        lines += ["", f"### {c.arm}'s ticket against its best control ({', '.join(c.controls)})", "",
                  "| level % | saving | verdict |", "|---|---|---|"]
        lines += [f"| {lv.level:.2f} | {lv.controlled[c.arm].saving_label()} | {lv.controlled[c.arm].text} |"
                  for lv in result.vs_best if c.arm in lv.controlled]
    lines += ["", "### Test accuracy (best checkpoint) and the strong final evaluation", "",
              "| arm | seed | budget | LR | test PGD % | strong % (threat) | clean % (subset) |",
              "|---|---|---|---|---|---|---|"]
    for f in result.finals:
        lines.append(f"| {f.arm} | {f.seed} | {f.budget} | {f.lr:.3g} | "
                     f"{'–' if f.test_robust is None else f'{f.test_robust:.2f}'} | {f.strong:.2f} ({f.threat}, "
                     f"{f.samples} images) | {f.clean:.2f} |")
    fell = {a: k for a, k in result.collapsed.items() if not k.startswith("0 of")}
    lines += ["", "Collapsed runs (no point of theirs enters a front): "
              + (", ".join(f"{a} {k}" for a, k in fell.items()) if fell else "none") + ".",
              "", "A cost fraction is the recipe's mean MACs over the standard's (or the best baseline's) on the seeds "
              "where both reach the level; its interval is the verdict's t interval, never narrower than one "
              "validation check's cost. \"not reached\": some seed did not get there."]
    return lines


def plot_search(result: SearchResult, path: Path) -> Path:
    """Every trial's points (grey), the study's front, and the confirmation's standard recipe (dense) and recipes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    pts = [(p.macs, p.accuracy) for t in result.trials for p in t.run.points if p.macs]
    if pts:
        ax.scatter(*zip(*pts, strict=True), s=8, color="lightgray", label="trial points (search seed)")
    if result.front:
        ax.step([p.macs for p in result.front], [p.accuracy for p in result.front], where="post", color="black",
                label="study front")
    for arm, marker in (("dense", "x"), *((c.arm, "o") for c in result.confirmed)):
        conf = [(p.macs, p.accuracy) for r in result.runs if r.arm == arm for p in r.points if p.macs]
        if conf:
            label = "standard recipe (dense), confirmation seeds" if arm == "dense" else f"{arm}, confirmation seeds"
            ax.scatter(*zip(*conf, strict=True), s=14, marker=marker, label=label)
    ax.set_xscale("log")
    ax.set_xlabel("training MACs so far (finding included)")
    ax.set_ylabel(f"best {METRIC_NAMES[result.metric]} so far (%)", fontsize=8)
    ax.set_title("recipe search: robust accuracy against cost", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def publish_search(cfg: Config, result: SearchResult, run_dir: Path) -> None:
    """search.json, search.md, search.png in the run dir; printed; the Pareto table to W&B / TensorBoard."""
    from lth_lightning.reports.tracking import log_search

    markdown = render_search(result)
    png = write_report(run_dir, "search", result, markdown, lambda path: plot_search(result, path), "search.png")
    log_search(cfg, result, markdown, png, run_dir)
