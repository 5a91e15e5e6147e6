"""The fast_ticket report: cost to reach a target accuracy, per arm and for the pipeline.

Cost is counted three ways: wall-clock training seconds (validation excluded; hardware-dependent),
forward passes summed over training examples (hardware-independent: a PGD-10 step costs each example 11,
FGSM 2, natural 1) and MACs (passes x the MACs of one forward pass, counted by FlopCounterMode: a compact
channel ticket's pass costs less).
The fast_ticket pipeline pays for finding its ticket, so its cost is find + ticket-to-target, compared
with dense-to-target. That ratio is the paper's "up to 49 % saving". Numbers never measured (no robust
evaluation, a target never reached) are ``None`` and print as "–" / "not reached".
"""

from __future__ import annotations

import os
from pathlib import Path

from lth_lightning.config import Config, ConfigError
from lth_lightning.reports.files import write_report
from lth_lightning.results import (
    METRIC_NAMES,
    ArmSummary,
    Cost,
    CostToTarget,
    EarlyBirdRecord,
    EpochRecord,
    PipelineCost,
    RunInfo,
    StageResult,
    Summary,
    UnitSaving,
    describe_cut,
    fmt,
    rounded,
)


def cost_to_target(history: list[EpochRecord], target: float, metric: str = "val_robust",
                   macs: int | None = None) -> CostToTarget:
    """Epochs, seconds, passes (and MACs, given MACs per pass) at the first epoch whose ``metric`` reaches
    ``target``."""
    for h in history:
        value = h.metric(metric)
        if value is not None and value >= target:
            return CostToTarget(h.epoch, h.train_seconds, h.passes, _times(h.passes, macs))
    return CostToTarget()


def _times(passes: float, macs: int | None) -> float | None:
    return None if macs is None else passes * macs


def _saving(fast: float | None, dense: float | None) -> float | None:
    if fast is None or dense is None or dense <= 0:
        return None
    return round(100.0 * (1.0 - fast / dense), 1)


def arm_summary(res: StageResult, target: float, metric: str, find: StageResult | None) -> ArmSummary:
    spent = find.ledger if find is not None else None
    return ArmSummary(
        sparsity=round(100 * res.sparsity, 1), epochs=res.epochs,
        epoch1_val_robust=rounded(res.first("val_robust")), epoch1_val_clean=rounded(res.first("val_clean")),
        best_val_robust=rounded(res.best("val_robust")), best_val_clean=rounded(res.best("val_clean")),
        to_target=cost_to_target(res.history, target, metric, res.macs),
        find_cost=Cost(round(spent.train_seconds, 2), spent.passes, _times(spent.passes, find.macs))
        if spent and find else Cost(0.0, 0.0, 0.0),
        total=Cost(round(res.ledger.train_seconds, 2), res.ledger.passes, _times(res.ledger.passes, res.macs)),
        test=res.test, history=res.history, find_stop=find.early_bird if find is not None else None,
        macs_per_pass=res.macs, checkpoint=res.best_checkpoint or None, ticket=find.ticket if find else None,
        reused=res.reused, collapsed=res.collapsed)


def build_summary(cfg: Config, arms: dict[str, StageResult], finds: dict[str, StageResult]) -> Summary:
    metric = cfg.target_metric()
    reference = arms.get("dense") or next(iter(arms.values()))
    best = reference.best(metric)
    if best is None:
        raise ConfigError(f"no {metric} was measured in the reference arm; check eval settings")
    target = best - cfg.pipeline.target_margin
    threat = next((r.test.threat for r in arms.values() if r.test and r.test.threat), None)
    cut = describe_cut([finds["ticket"].cut], cfg.prune.cut) if "ticket" in finds else ""
    model, data = cfg.model._target_ or cfg.model.name, cfg.data._target_ or cfg.data.name
    info = RunInfo(data, model, cfg.attack.name, cfg.pipeline.find.attack, cfg.pipeline.find.lr,
                   cfg.prune.ratio, cfg.seed, threat.label() if threat else "not measured", cut)
    summary = Summary(round(target, 2), metric, info,
                      {name: arm_summary(res, target, metric, finds.get(name)) for name, res in arms.items()})
    if "ticket" in summary.arms and "dense" in summary.arms:
        fell = summary.arms["ticket"].collapsed or summary.arms["dense"].collapsed  # at chance: no saving (#31)
        summary.pipeline = None if fell else _pipeline_totals(summary.arms["ticket"], summary.arms["dense"])
        summary.verdict = verdict_line(summary)
    return summary


def verdict_line(summary: Summary) -> str:
    """What happened, in one line: whether the ticket reached the target, what its pipeline cost against dense,
    and, where it did not, what its shorter schedule saved and how many points lower it ended."""
    ticket, p = summary.arms["ticket"], summary.pipeline
    best = {name: _best(summary, name) for name in ("ticket", "dense")}
    fell = [name for name in ("ticket", "dense") if summary.arms[name].collapsed]
    if fell:
        which = " and ".join(f"{name} (best {fmt(best[name], '.1f')} %)" for name in fell)
        return f"The {which} collapsed (one class predicted at the best epoch): no saving is reported."
    unit = "MACs" if p and p.macs else "passes"
    costs = (p.macs if p and p.macs else p.passes) if p else None
    if ticket.to_target.passes is None:
        gap = (best["dense"] or 0.0) - (best["ticket"] or 0.0)
        full = costs.saving_full_pct if costs else None
        more = "less" if full is not None and full > 0 else "more"
        spent = "" if full is None else \
            f"; its shorter schedule costs {abs(full):.1f} % {more} ({unit}, finding included)"
        return (f"The ticket did not reach the target (best {fmt(best['ticket'], '.1f')} vs {summary.target:.1f} %)"
                f"{spent} and ends {gap:.1f} points below dense ({fmt(best['dense'], '.1f')} %).")
    saving = costs.saving_to_target_pct if costs else None
    how = "" if saving is None else (f": its pipeline, finding included, cost {abs(saving):.1f} % "
                                     f"{'less' if saving > 0 else 'more'} than dense to get there ({unit})")
    return (f"The ticket reached the target ({summary.target:.1f} %){how}; best {fmt(best['ticket'], '.1f')} vs "
            f"dense {fmt(best['dense'], '.1f')} %.")


def _unit(ticket: ArmSummary, dense: ArmSummary, unit: str) -> UnitSaving | None:
    if None in (getattr(ticket.find_cost, unit), getattr(ticket.total, unit), getattr(dense.total, unit)):
        return None  # MACs not counted (results from before they were)
    find, reach, dense_reach = getattr(ticket.find_cost, unit), getattr(ticket.to_target, unit), \
        getattr(dense.to_target, unit)
    fast = find + reach if reach is not None else None
    full_fast = find + getattr(ticket.total, unit)
    dense_full = getattr(dense.total, unit)
    return UnitSaving(fast, dense_reach, _saving(fast, dense_reach), full_fast, dense_full,
                      _saving(full_fast, dense_full))


def _pipeline_totals(ticket: ArmSummary, dense: ArmSummary) -> PipelineCost:
    return PipelineCost(_unit(ticket, dense, "seconds"), _unit(ticket, dense, "passes"),  # type: ignore[arg-type]
                        _unit(ticket, dense, "macs"))


def render_markdown(summary: Summary) -> str:
    c = summary.config
    reached = "not reached"
    lines = [
        f"# fast_ticket: {c.model} on {c.data} (seed {c.seed})",
        "",
        *([f"**{summary.verdict}**", ""] if summary.verdict else []),
        f"Ticket: prune {c.prune_ratio:.0%} after {c.find_attack} training at LR {c.find_lr:g}"
        f"{f' (achieved: {c.cut})' if c.cut else ''}, reset. Arms trained with {c.attack}. "
        f"Robust accuracy: **{c.threat}** (– = not measured).",
        f"Target: {METRIC_NAMES[summary.target_metric]} ≥ **{summary.target:.2f} %** "
        "(dense best minus the margin). Cost = training time (validation excluded) and forward passes "
        "summed over every training example seen.",
        "",
        "| arm | weight sparsity % | MACs/pass | epochs | epoch-1 robust % | best robust % | best clean % "
        "| epochs→target | train s→target | passes→target | finding passes | training passes | test clean % "
        "| test PGD % | test AA % |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in summary.arms.items():
        t, test = r.to_target, r.test
        lines.append(
            f"| {name} | {r.sparsity} | {fmt(r.macs_per_pass, '.3g')} | {r.epochs} | {fmt(r.epoch1_val_robust)} | "
            f"{fmt(r.best_val_robust)} | "
            f"{fmt(r.best_val_clean)} | {fmt(t.epochs, 'd', missing=reached)} | "
            f"{fmt(t.seconds, '.1f', missing=reached)} | {fmt(t.passes, '.3g', missing=reached)} | "
            f"{fmt(r.find_cost.passes, '.3g')} | {fmt(r.total.passes, '.3g')} | {fmt(test and test.clean)} | "
            f"{fmt(test and test.robust)} | {fmt(test and test.autoattack)} |")
    lines += [_finding_line(name, r.find_stop) for name, r in summary.arms.items() if r.find_stop]
    reused = [name for name, r in summary.arms.items() if r.reused]
    if reused:
        lines += ["", f"Seconds are measured when each stage ran: {', '.join(reused)} came from the stage cache this "
                  "time, so theirs are from the run that made them (passes and MACs do not depend on when)."]
    if summary.pipeline is not None:
        s, p = summary.pipeline.seconds, summary.pipeline.passes
        find = summary.arms["ticket"].find_cost
        lines += [
            "",
            f"**Pipeline cost to target**: fast_ticket = finding ({find.seconds:.1f} s, {find.passes:.3g} passes)"
            " + ticket training, vs the dense arm.",
            "",
            f"| cost | fast_ticket → target | dense → target | saving | fast_ticket full (best "
            f"{fmt(_best(summary, 'ticket'), '.1f')} %) | dense full (best {fmt(_best(summary, 'dense'), '.1f')} %) "
            "| saving |",
            "|---|---|---|---|---|---|---|",
            _saving_row("train seconds", s, ".1f"),
            _saving_row("passes", p, ".3g"),
            *([_saving_row("MACs", summary.pipeline.macs, ".3g")] if summary.pipeline.macs else []),
            "",
            "A positive saving means the ticket pipeline, finding included, got there cheaper than dense. The full "
            "columns compare whole schedules, which end at the accuracies in their headers: a saving there bought "
            "that accuracy, not the target.",
        ]
    return "\n".join([*lines, *_files(summary)]) + "\n"


def _best(summary: Summary, arm: str) -> float | None:
    a = summary.arms[arm]
    return a.best_val_robust if summary.target_metric == "val_robust" else a.best_val_clean


def _files(summary: Summary) -> list[str]:
    """Where each arm's best checkpoint and ticket are (linked in the run dir), and how to use them."""
    rows = [f"| {name} | {a.checkpoint or '–'} | {a.ticket or '–'} |" for name, a in summary.arms.items()]
    first = next((a.checkpoint for a in summary.arms.values() if a.checkpoint), None)
    ticket = next((a.ticket for a in summary.arms.values() if a.ticket), None)
    out = ["", "## Files", "", "Linked in this run dir as `checkpoints/<arm>.ckpt` and `tickets/<arm>.pt`.", "",
           "| arm | best checkpoint | ticket |", "|---|---|---|", *rows]
    if first:
        out += ["", f"Evaluate: `python -m lth_lightning task=eval ckpt_path={first} data={summary.config.data}`"]
    if ticket:
        out += [f"Inspect: `python -m lth_lightning tickets show {ticket}`"]
    return out


def link_files(summary: Summary, run_dir: Path) -> None:
    """``checkpoints/<arm>.ckpt`` and ``tickets/<arm>.pt`` in the run dir, pointing into the stage cache."""
    for folder, attr, suffix in (("checkpoints", "checkpoint", ".ckpt"), ("tickets", "ticket", ".pt")):
        for name, arm in summary.arms.items():
            target = getattr(arm, attr)
            if target:
                link = run_dir / folder / f"{name}{suffix}"
                link.parent.mkdir(parents=True, exist_ok=True)
                link.unlink(missing_ok=True)
                link.symlink_to(os.path.relpath(Path(target).resolve(), link.parent.resolve()))  # the run moves


def _finding_line(name: str, stop: EarlyBirdRecord) -> str:
    if stop.stopped_epoch is None:
        return (f"\n{name}: early-bird finding ran to its cap of {stop.cap_epochs} epochs (last mask distance "
                f"{fmt(stop.distances[-1] if stop.distances else None, '.4f')}).")
    return (f"\n{name}: early-bird finding stopped at epoch {stop.stopped_epoch} of {stop.cap_epochs} "
            f"(step {stop.stopped_step}); mask distances per check: "
            + ", ".join(fmt(d, ".3f") for d in stop.distances) + " (– before the window was full).")


def _saving_row(label: str, u: UnitSaving, spec: str) -> str:
    nr = "not reached"
    return (f"| {label} | {fmt(u.fast_ticket_to_target, spec, missing=nr)} | {fmt(u.dense_to_target, spec, missing=nr)}"
            f" | {fmt(u.saving_to_target_pct, '.1f', ' %')} | {fmt(u.fast_ticket_full, spec)} | "
            f"{fmt(u.dense_full, spec)} | {fmt(u.saving_full_pct, '.1f', ' %')} |")


def plot_curves(summary: Summary, path: Path) -> Path:
    """Target-metric curves vs cumulative cost; ticket arms start after their finding cost. The cost is
    passes, or MACs when the arms' passes differ in size (a compact channel ticket)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stops = {name: r.find_stop for name, r in summary.arms.items() if r.find_stop and r.find_stop.distances}
    fig, axes = plt.subplots(1, 2 if stops else 1, figsize=(11 if stops else 7, 4.5), squeeze=False)
    ax = axes[0][0]
    if stops:  # early-bird finding: the mask distance at every check, and where it stopped
        dist = axes[0][1]
        for name, stop in stops.items():
            checks = [(i, d) for i, d in enumerate(stop.distances, 1) if d is not None]
            dist.plot([i for i, _ in checks], [d for _, d in checks], marker="o", ms=3, label=name)
        dist.set_xlabel("finding check")
        dist.set_ylabel("max normalised Hamming distance to the window")
        dist.set_yscale("log")
        dist.grid(alpha=0.3)
        dist.legend()
    sizes = {r.macs_per_pass for r in summary.arms.values()}
    by_macs = len(sizes) > 1 and None not in sizes
    for name, r in summary.arms.items():
        offset = (r.find_cost.macs or 0.0) if by_macs else r.find_cost.passes
        xs = [offset + h.passes * (r.macs_per_pass or 1 if by_macs else 1) for h in r.history]
        ys = [float("nan") if (v := h.metric(summary.target_metric)) is None else v for h in r.history]
        line = ax.plot(xs, ys, marker="o", ms=3, label=name)[0]
        if offset:
            ax.axvspan(0, offset, color=line.get_color(), alpha=0.08)
    ax.axhline(summary.target, color="gray", ls="--", lw=1, label="target")
    ax.set_xlabel(f"cumulative {'MACs' if by_macs else 'forward passes'}, total over training examples "
                  "(finding included)")
    if by_macs:
        ax.set_xscale("log")
    robust = f" [{summary.config.threat}]" if summary.target_metric == "val_robust" else ""
    ax.set_ylabel(f"{METRIC_NAMES[summary.target_metric]}{robust} (%)")
    ax.set_title(f"{summary.config.model} / {summary.config.data}: accuracy vs training cost")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def publish_summary(cfg: Config, summary: Summary, run_dir: Path) -> None:
    """summary.json, summary.md, curves.png in the run dir; printed; sent to W&B / TensorBoard."""
    from lth_lightning.reports.tracking import log_summary

    markdown = render_markdown(summary)
    link_files(summary, run_dir)
    if summary.verdict:
        print(summary.verdict)  # first, before the tables
    png = write_report(run_dir, "summary", summary, markdown, lambda path: plot_curves(summary, path), "curves.png")
    log_summary(cfg, summary, markdown, png, run_dir)
