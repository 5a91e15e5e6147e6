"""Aggregate a fast_ticket or frontier sweep: one row per job, swept axes as columns, heatmaps.

``python -m lth_lightning.reports.aggregate multirun/fast_ticket/<date>`` (also run automatically at
the end of every multirun by ``AggregateSweep``). Jobs that failed (no ``summary.json``) are kept as rows
marked ``failed``, so one bad job never hides the others.

Boost = the ticket's epoch-1 robust accuracy minus the dense net's (the paper's "boosting" signal).
Saving = the pipeline's pass saving to the target (finding included); full-schedule saving otherwise.
A frontier job (``frontier.json``, several seeds) gives mean ± std over its seeds instead, and its saving
is read off the fronts at each seed's strongest-baseline best − ``pipeline.target_margin`` points, with the
frontier's paired t interval at ``frontier.confidence`` (both read from the job's own config).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from lth_lightning.io import write_table
from lth_lightning.results import FrontierResult, Summary, Verdict, read_json, rounded


def _overrides(job_dir: Path) -> dict[str, str]:
    path = job_dir / ".hydra" / "overrides.yaml"
    if not path.exists():
        return {}
    items = yaml.safe_load(path.read_text()) or []
    return dict(item.lstrip("+").split("=", 1) for item in items if "=" in item)


def _metrics(summary: Summary) -> dict[str, Any]:
    arms = summary.arms
    row: dict[str, Any] = {"status": "ok", "threat": summary.config.threat}
    for name in ("ticket", "dense", "reinit"):
        if name in arms:
            arm = arms[name]
            row[f"{name}_epoch1"] = arm.epoch1_val_robust
            row[f"{name}_best"] = arm.best_val_robust
            row[f"{name}_test_pgd"] = arm.test.robust if arm.test else None
    if row.get("ticket_epoch1") is not None and row.get("dense_epoch1") is not None:
        row["boost"] = round(row["ticket_epoch1"] - row["dense_epoch1"], 2)
    passes = summary.pipeline.passes if summary.pipeline else None
    row["saving_to_target_pct"] = passes.saving_to_target_pct if passes else None
    row["saving_full_pct"] = passes.saving_full_pct if passes else None
    return row


def _job_settings(job_dir: Path) -> tuple[float, float]:
    """The job's ``pipeline.target_margin`` and ``frontier.confidence`` (defaults when it has no config)."""
    path = job_dir / ".hydra" / "config.yaml"
    cfg = yaml.safe_load(path.read_text()) if path.exists() else {}
    pipeline, frontier = cfg.get("pipeline") or {}, cfg.get("frontier") or {}
    return float(pipeline.get("target_margin", 1.0)), float(frontier.get("confidence", 0.9))


def _frontier_metrics(result: FrontierResult, margin: float = 1.0, confidence: float = 0.9) -> dict[str, Any]:
    """Mean ± std over the job's seeds: tops, epoch-1 boost, and the saving at the strongest baseline's best −
    ``margin`` (per seed: each seed's ticket races to its own best dense variant's best − ``margin``; paired
    t interval at ``confidence``)."""
    from lth_lightning.reports.fronts import (
        baseline_front,
        cheapest,
        check_cost,
        collapsed_runs,
        cost_unit,
        fronts,
        group_front,
        is_baseline,
        spread,
        verdict,
    )

    runs, seeds = result.runs, result.seeds
    row: dict[str, Any] = {"status": "ok", "threat": result.threat}
    first = min(result.budgets)
    lr = {r.arm: r.lr for r in result.rows if r.budget == first}  # the LR chosen on validation
    epoch1: dict[str, list[float | None]] = {}
    for arm in sorted({r.arm for r in runs}):
        tops = [f[-1].accuracy if (f := fronts(runs, arm, s)) else None for s in seeds]
        row[f"{arm}_top"], row[f"{arm}_top_std"] = _mean_and_std(spread(tops))
        epoch1[arm] = [next((r.points[0].accuracy for r in runs if (r.arm, r.seed, r.budget, r.lr)
                             == (arm, s, first, lr[arm]) and r.points), None) for s in seeds]
    if "ticket" in epoch1:
        gaps = [None if t is None or d is None else t - d for t, d in zip(epoch1["ticket"], epoch1["dense"],
                                                                              strict=True)]
        row["boost"], row["boost_std"] = _mean_and_std(spread(gaps))
        tops = {s: baseline_front(runs, s)[-1].accuracy for s in seeds}  # dense, or its best variant, per seed
        row["baseline_top"], row["baseline_top_std"] = _mean_and_std(spread(list(tops.values())))
        levels = {s: top - margin for s, top in tops.items()}
        unit = cost_unit(runs)
        controls = result.controls.get("ticket", [])
        costs = {u: {"ticket": [cheapest(fronts(runs, "ticket", s, u), levels[s], u) for s in seeds],
                     "base": [cheapest(baseline_front(runs, s, u), levels[s], u) for s in seeds],
                     "control": [cheapest(group_front(runs, controls, s, u), levels[s], u) for s in seeds]}
                 for u in {unit, "seconds"}}
        row["level"] = rounded(spread(list(levels.values())).mean)
        bases = [a for a in {r.arm for r in runs} if is_baseline(a)]
        row.update(_judged("", verdict(costs[unit]["ticket"], costs[unit]["base"], confidence,
                                       resolution=check_cost(runs, ["ticket", *bases], unit))))
        row["saving_unit"] = unit
        row["saving_s_pct"] = _full(verdict(costs["seconds"]["ticket"], costs["seconds"]["base"], confidence,
                                            resolution=check_cost(runs, ["ticket", *bases], "seconds")))
        if controls:  # does the mask matter? the ticket against the best of its controls, per seed
            row.update(_judged("control_", verdict(costs[unit]["ticket"], costs[unit]["control"], confidence,
                                                   ("ticket", "control"),
                                                   resolution=check_cost(runs, ["ticket", *controls], unit))))
        find_epochs = [r.find_epochs for r in runs if r.arm == "ticket" and r.find_epochs is not None]
        row["find_epochs"] = rounded(spread(find_epochs).mean) if find_epochs else None
    row.update({f"{arm}_macs_ratio": ratio for arm, ratio in pass_macs_ratios(runs).items()})
    fell = collapsed_runs(runs, sorted({r.arm for r in runs}))
    row["collapsed"] = ", ".join(f"{a} {k}" for a, k in fell.items() if not k.startswith("0 of")) or "none"
    return row


def pass_macs_ratios(runs: list[Any]) -> dict[str, float]:
    """Each arm's MACs per training pass as a fraction of dense's, from two consecutive points of one of its runs
    (the finding's cost, charged to the first point, cancels)."""
    per_pass = {}
    for r in runs:
        if r.arm not in per_pass and len(r.points) > 1 and r.points[-1].macs is not None:
            a, b = r.points[-2], r.points[-1]
            per_pass[r.arm] = (b.macs - a.macs) / (b.passes - a.passes)
    base = per_pass.get("dense")
    return {a: round(v / base, 3) for a, v in per_pass.items() if base and a != "dense"}


def _full(v: Verdict) -> float | None:
    """A saving only when every seed reached the level (else the verdict's "k of n seeds" says why there is none)."""
    return rounded(v.saving) if v.seeds == v.n else None


def _judged(prefix: str, v: Verdict) -> dict[str, Any]:
    return {f"{prefix}saving_pct": _full(v), f"{prefix}saving_seeds": f"{v.seeds} of {v.n}", f"{prefix}verdict": v.text}


def _mean_and_std(value: Any) -> tuple[float | None, float | None]:
    return rounded(value.mean), rounded(value.std)


def collect(sweep_dir: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows for every job dir, and the axes (override keys whose values differ between jobs)."""
    jobs = sorted((p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name))
    rows = []
    for job in jobs:
        row: dict[str, Any] = {"job": int(job.name), **_overrides(job)}
        summary, frontier = job / "summary.json", job / "frontier.json"
        if frontier.exists():
            row.update(_frontier_metrics(read_json(FrontierResult, frontier), *_job_settings(job)))
        elif summary.exists():
            row.update(_metrics(read_json(Summary, summary)))
        else:
            row["status"] = "failed"
        rows.append(row)
    keys = {k for r in rows for k in _overrides(sweep_dir / str(r["job"]))}
    axes = sorted(k for k in keys if len({r.get(k) for r in rows}) > 1)
    constant = keys - set(axes)  # the same in every job: noise in a comparison table
    return [{k: v for k, v in r.items() if k not in constant} for r in rows], axes


def _heatmap(sweep_dir: Path, rows: list[dict[str, Any]], axes: list[str]) -> Path | None:
    ok = [r for r in rows if r["status"] == "ok"]
    if not ok or not axes:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    y_key, x_key = axes[0], axes[1] if len(axes) > 1 else None
    ys = sorted({r[y_key] for r in ok}, key=_num)
    xs = sorted({r[x_key] for r in ok}, key=_num) if x_key else [""]
    metrics = [m for m in ("boost", "saving_to_target_pct", "saving_full_pct", "saving_pct", "ticket_top")
               if any(r.get(m) is not None for r in ok)]
    fig, axs = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3.8), squeeze=False)
    for ax, metric in zip(axs[0], metrics, strict=True):
        grid = np.full((len(ys), len(xs)), np.nan)
        for i, yv in enumerate(ys):
            for j, xv in enumerate(xs):
                vals = [r[metric] for r in ok if r[y_key] == yv and (x_key is None or r[x_key] == xv)
                        and r.get(metric) is not None]
                if vals:  # averaged over any further swept axes
                    grid[i, j] = float(np.mean(vals))
        image = ax.imshow(grid, aspect="auto", **_colours(metric, grid))
        ax.set_xticks(range(len(xs)), [_tick(x) for x in xs])
        ax.set_yticks(range(len(ys)), [_tick(y) for y in ys])
        ax.set_xlabel(x_key or "")
        ax.set_ylabel(y_key)
        ax.set_title(metric)
        for (i, j), value in np.ndenumerate(grid):
            if not np.isnan(value):
                ax.text(j, i, f"{value:.1f}", ha="center", va="center", fontsize=8)
        fig.colorbar(image, ax=ax)
    fig.tight_layout()
    path = sweep_dir / "aggregate.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


SIGNED = ("boost", "saving_to_target_pct", "saving_full_pct", "saving_pct")  # <0 and >0 mean opposite things


def _colours(metric: str, grid: Any) -> dict[str, Any]:
    """A signed quantity on a diverging scale centred on 0 (green: the ticket better), symmetric about it, so a
    boost of -1.7 is pale red, never dark green; others on a sequential scale."""
    import numpy as np

    if metric not in SIGNED:
        return {"cmap": "viridis"}
    top = float(np.nanmax(np.abs(grid))) if np.isfinite(grid).any() else 1.0
    return {"cmap": "RdYlGn", "vmin": -max(top, 1e-9), "vmax": max(top, 1e-9)}


def _tick(value: Any) -> str:
    """An axis label: floats to 3 significant digits (Optuna's ratios print as 0.7195254015709299)."""
    number = _num(value)
    return f"{number:.3g}" if isinstance(number, float) else str(value)


def _num(value: str) -> float | str:
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def aggregate(sweep_dir: str | Path, quiet: bool = False) -> list[dict[str, Any]]:
    """Rows, table and heatmap of a sweep; printed unless ``quiet`` (jobs update the files, the end prints)."""
    sweep_dir = Path(sweep_dir)
    rows, axes = collect(sweep_dir)
    markdown = write_table(rows, sweep_dir / "aggregate")
    png = _heatmap(sweep_dir, rows, axes)
    if not quiet:
        print(markdown)
        print(f"swept axes: {', '.join(axes) or '(none)'}; written {sweep_dir / 'aggregate.csv'}"
              + (f", {png}" if png else ""))
    return rows


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m lth_lightning.reports.aggregate <multirun sweep dir>")
    aggregate(sys.argv[1])
