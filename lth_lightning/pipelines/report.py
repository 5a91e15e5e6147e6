"""The fast_ticket report: cost to reach a target robust accuracy, per arm and for the pipeline.

Cost is counted two ways: wall-clock training seconds (validation excluded; hardware-dependent) and
forward+backward passes per example (hardware-independent: a PGD-10 step costs 11, FGSM 2, natural 1).
The fast_ticket pipeline pays for finding its ticket, so its cost is find + ticket-to-target, compared
with dense-to-target. That ratio is the paper's "up to 49 % saving".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lth_lightning.config import Config, ConfigError
from lth_lightning.pipelines.common import write_json


def _best(history: list[dict[str, Any]], key: str = "val_robust") -> float | None:
    values = [h[key] for h in history if h[key] is not None]
    return max(values) if values else None


def cost_to_target(history: list[dict[str, Any]], target: float,
                   metric: str = "val_robust") -> dict[str, float | None]:
    """Epochs, seconds and passes at the first epoch whose ``metric`` reaches ``target``."""
    for h in history:
        if h[metric] is not None and h[metric] >= target:
            return {"epochs": h["epoch"], "seconds": h["train_seconds"], "passes": h["passes"]}
    return {"epochs": None, "seconds": None, "passes": None}


def _saving(fast: float | None, dense: float | None) -> float | None:
    if fast is None or dense is None or dense <= 0:
        return None
    return round(100.0 * (1.0 - fast / dense), 1)


def build_summary(cfg: Config, arms: dict[str, dict[str, Any]], finds: dict[str, dict[str, Any]]) -> dict:
    metric = cfg.pipeline.target_metric
    reference = arms.get("dense") or next(iter(arms.values()))
    best = _best(reference["history"], metric)
    if best is None:
        raise ConfigError("pipeline.target_metric=val_robust needs eval.val_robust_samples > 0")
    target = best - cfg.pipeline.target_margin
    rows = {}
    for name, res in arms.items():
        hist = res["history"]
        find = finds.get(name, {}).get("ledger", {"passes": 0.0, "train_seconds": 0.0})
        rows[name] = {
            "sparsity": round(100 * res["sparsity"], 1),
            "epochs": res["epochs"],
            "epoch1_val_robust": round(hist[0]["val_robust"], 2) if hist else None,  # type: ignore[arg-type]
            "epoch1_val_clean": round(hist[0]["val_clean"], 2) if hist else None,
            "best_val_robust": round(_best(hist) or 0.0, 2),
            "best_val_clean": round(_best(hist, "val_clean") or 0.0, 2),
            "to_target": cost_to_target(hist, target, metric),
            "find_cost": {"seconds": round(find["train_seconds"], 2), "passes": find["passes"]},
            "total": {"seconds": round(res["ledger"]["train_seconds"], 2), "passes": res["ledger"]["passes"]},
            "test": res.get("test", {}),
            "history": hist,
        }
    summary: dict[str, Any] = {"target": round(target, 2), "target_metric": metric, "arms": rows,
                               "config": {"data": cfg.data.name, "model": cfg.model.name,
                                          "attack": cfg.attack.name, "find_attack": cfg.pipeline.find.attack,
                                          "find_lr": cfg.pipeline.find.lr, "prune_ratio": cfg.prune.ratio,
                                          "seed": cfg.seed}}
    if "ticket" in rows and "dense" in rows:
        summary["pipeline"] = _pipeline_totals(rows["ticket"], rows["dense"])
    return summary


def _pipeline_totals(ticket: dict[str, Any], dense: dict[str, Any]) -> dict[str, Any]:
    find, t, d = ticket["find_cost"], ticket["to_target"], dense["to_target"]
    out: dict[str, Any] = {}
    for unit in ("seconds", "passes"):
        fast = find[unit] + t[unit] if t[unit] is not None else None
        full_fast = find[unit] + ticket["total"][unit]
        out[unit] = {"fast_ticket_to_target": fast, "dense_to_target": d[unit],
                     "saving_to_target_pct": _saving(fast, d[unit]),
                     "fast_ticket_full": full_fast, "dense_full": dense["total"][unit],
                     "saving_full_pct": _saving(full_fast, dense["total"][unit])}
    return out


def _fmt(value: Any, spec: str = ".2f", unit: str = "") -> str:
    if value is None:
        return "not reached"
    return (format(value, spec) if isinstance(value, int | float) else str(value)) + unit


_METRIC_NAMES = {"val_robust": "validation robust accuracy", "val_clean": "validation clean accuracy"}


def render_markdown(summary: dict[str, Any]) -> str:
    cfg = summary["config"]
    lines = [
        f"# fast_ticket: {cfg['model']} on {cfg['data']} (seed {cfg['seed']})",
        "",
        f"Ticket: prune {cfg['prune_ratio']:.0%} after {cfg['find_attack']} training at LR {cfg['find_lr']:g}, "
        f"reset to θ0. Arms trained with {cfg['attack']}.",
        f"Target: {_METRIC_NAMES[summary['target_metric']]} ≥ **{summary['target']:.2f} %** "
        "(dense best minus the margin). Cost = training time (validation excluded) and forward+backward "
        "passes per example.",
        "",
        "| arm | sparsity % | epochs | epoch-1 robust % | best robust % | epochs→target | train s→target "
        "| passes→target | test clean % | test PGD % | test AA % |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in summary["arms"].items():
        t, test = r["to_target"], r["test"]
        lines.append(
            f"| {name} | {r['sparsity']} | {r['epochs']} | {_fmt(r['epoch1_val_robust'])} | "
            f"{_fmt(r['best_val_robust'])} | {_fmt(t['epochs'], 'd')} | {_fmt(t['seconds'], '.1f')} | "
            f"{_fmt(t['passes'], '.3g')} | {_fmt(test.get('clean_acc'))} | {_fmt(test.get('robust_acc'))} | "
            f"{_fmt(test.get('autoattack_acc')) if 'autoattack_acc' in test else '-'} |")
    pipe = summary.get("pipeline")
    if pipe:
        s, p = pipe["seconds"], pipe["passes"]
        ticket = summary["arms"]["ticket"]["find_cost"]
        lines += [
            "",
            f"**Pipeline cost to target**: fast_ticket = finding ({ticket['seconds']:.1f} s, "
            f"{ticket['passes']:.3g} passes) + ticket training, vs the dense arm.",
            "",
            "| cost | fast_ticket → target | dense → target | saving | fast_ticket full | dense full | saving |",
            "|---|---|---|---|---|---|---|",
            f"| train seconds | {_fmt(s['fast_ticket_to_target'], '.1f')} | {_fmt(s['dense_to_target'], '.1f')} "
            f"| {_fmt(s['saving_to_target_pct'], '.1f', ' %')} | {s['fast_ticket_full']:.1f} | {s['dense_full']:.1f} "
            f"| {_fmt(s['saving_full_pct'], '.1f', ' %')} |",
            f"| passes | {_fmt(p['fast_ticket_to_target'], '.3g')} | {_fmt(p['dense_to_target'], '.3g')} "
            f"| {_fmt(p['saving_to_target_pct'], '.1f', ' %')} | {p['fast_ticket_full']:.3g} | {p['dense_full']:.3g} "
            f"| {_fmt(p['saving_full_pct'], '.1f', ' %')} |",
            "",
            "A positive saving means the ticket pipeline, finding included, got there cheaper than dense.",
        ]
    return "\n".join(lines) + "\n"


def plot_curves(summary: dict[str, Any], path: Path) -> Path:
    """Target-metric curves vs cumulative passes; ticket arms start after their finding cost."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, r in summary["arms"].items():
        offset = r["find_cost"]["passes"]
        xs = [offset] + [offset + h["passes"] for h in r["history"]]
        ys = [float("nan")] + [h[summary["target_metric"]] for h in r["history"]]
        line = ax.plot(xs[1:], ys[1:], marker="o", ms=3, label=name)[0]
        if offset:
            ax.axvspan(0, offset, color=line.get_color(), alpha=0.08)
    ax.axhline(summary["target"], color="gray", ls="--", lw=1, label="target")
    ax.set_xlabel("cumulative forward+backward passes per example (finding included)")
    ax.set_ylabel(f"{_METRIC_NAMES[summary['target_metric']]} (%)")
    ax.set_title(f"{summary['config']['model']} / {summary['config']['data']}: accuracy vs training cost")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def publish_summary(cfg: Config, summary: dict[str, Any], run_dir: Path) -> None:
    """summary.json, summary.md, curves.png in the run dir; printed; sent to W&B / TensorBoard."""
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / "summary.json", summary)
    markdown = render_markdown(summary)
    (run_dir / "summary.md").write_text(markdown)
    png = plot_curves(summary, run_dir / "curves.png")
    print(markdown)
    print(f"written: {run_dir / 'summary.md'}, {run_dir / 'summary.json'}, {png}")
    from lth_lightning.pipelines.tracking import log_summary

    log_summary(cfg, summary, markdown, png, run_dir)
