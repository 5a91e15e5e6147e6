"""``python -m benches regime``: The MNIST regime map: one Hydra multirun per axis (3 seeds a point), aggregated."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benches.common import DATA_ROOT, RESULTS, ROOT, save
from lth_lightning.results import FrontierResult, read_json

# The MNIST regime map, one Hydra multirun per axis (3 seeds per point; shared points are cache hits).
REGIME = {
    "ratio": ["prune.ratio=0.5,0.8,0.95"],
    "finder": ["pipeline.find.attack=none,fgsm,fgsm_rs,pgd"],
    "early_bird": ["pipeline.find.epochs=1,3,10"],
    "early_bird_stop": ["pipeline.find.stop=early_bird", "pipeline.find.epochs=10"],
    # checks every 16 steps (~1/4 epoch): a window of 5 no longer needs 5 epochs before it can stop
    "early_bird_steps": ["pipeline.find.stop=early_bird", "pipeline.find.epochs=10", "pipeline.find.check_every=16"],
    "find_lr": ["pipeline.find.lr=0.01,0.1"],
    "lr": ["frontier.lrs=[0.02,0.05,0.1]"],  # is dense just slow at the map's LR? every arm gets the grid
    "structure": ["prune.structure=unstructured,channel", "prune.ratio=0.5,0.8"],
    "channel_ratio": ["prune.structure=channel", "prune.ratio=0.2,0.3"],  # lighter channel tickets
    "width": ["model.width=1,2"],
    "budget": ["frontier.budgets=[6,12]"],  # does dense catch up when the budget doubles?
    # the strongest baseline (#21): dense with an eps ramp over 2 or 5 of the full schedule's 10 epochs (1.2 / 3
    # of the budget's 6), the ticket with the short ramp too, both LRs; verdicts against the best dense variant
    "baseline": ["frontier.baselines={dense_eps_ramp2:['attack.eps_warmup_epochs=2'],"
                 "dense_eps_ramp5:['attack.eps_warmup_epochs=5']}",
                 "frontier.ticket_variants={ticket_eps_ramp2:['attack.eps_warmup_epochs=2']}",
                 "frontier.lrs=[0.05,0.1]"],
    # is a compacted channel ticket more than a narrower net (#24)? the ticket (aligned, 50 or 80 % of channels,
    # finding 1 epoch) beside its controls -- random channels from θ0, and the narrow net of the same shape at the
    # model's default init -- and dense, the eps ramp on every arm; LeNet and the Madry MNIST net; verdicts in MACs
    "channel_ramp": ["model=lenet,madry_cnn", "prune.ratio=0.5,0.8", "pipeline.find.epochs=1",
                     "prune.structure=channel", "attack.eps_warmup_epochs=2",
                     "frontier.arms=[ticket,random_channels,narrow,dense]"],
}


def run(args) -> None:
    """8. The regime map on real MNIST: ratio, finding attack and LR, finding length/early-bird, width."""
    from lth_lightning.reports.aggregate import collect

    path = RESULTS / "regime.json"
    done = json.loads(path.read_text())["parts"] if path.exists() else {}
    for part in args.parts or list(REGIME):
        sweep = ROOT / "outputs" / "bench_regime" / part
        cmd = [sys.executable, "-m", "lth_lightning", "-m", "+experiment=regime_mnist", f"data.root={DATA_ROOT}",
               f"pipeline.cache_dir={args.cache_dir}", f"hydra.sweep.dir={sweep}", *REGIME[part], *args.overrides]
        print(" ".join(cmd), flush=True)
        started = time.time()
        subprocess.run(cmd, check=True, cwd=ROOT)
        rows, axes = collect(sweep)
        wall = round(time.time() - started, 1)
        command = " ".join(["python -m lth_lightning -m +experiment=regime_mnist", *REGIME[part], *args.overrides])
        old = done.get(part, {})  # the uncached run's time survives reruns of the same command, not a new one
        first = old.get("first_wall_seconds", wall) if old.get("command") == command else wall
        done[part] = {"command": command, "wall_seconds": wall, "first_wall_seconds": first, "axes": axes,
                      "rows": rows}
        if part in ("early_bird_stop", "early_bird_steps"):
            done[part]["overlap"] = _early_bird_overlap(sweep, ROOT / "outputs" / "bench_regime" / "early_bird",
                                                        Path(args.cache_dir))
        if (sweep / "aggregate.png").exists():
            shutil.copy(sweep / "aggregate.png", ROOT / "docs" / f"regime_{part}.png")
        done[part]["levels"] = _levels(part, sweep, rows, axes)
        save("regime", {"workload": "+experiment=regime_mnist (2k-image MNIST subset, batch 32, 6-epoch budget, "
                                    "PGD-7 eps 0.3, 3 seeds per point)", "parts": done})


def _levels(part: str, sweep: Path, rows: list[dict], axes: list[str]) -> dict[str, str]:
    """Every job's level table (its frontier.md before the budget rows), by the job's swept values; with a few
    jobs their fronts plots go to docs/ too (one job: regime_<part>.png; more: regime_<part>_<values>.png)."""
    out = {}
    for row in rows:
        job = sweep / str(row["job"])
        if not (job / "frontier.md").exists():
            continue
        label = "_".join(str(row[a]) for a in axes) or "point"
        out[label] = (job / "frontier.md").read_text().split("## Each budget")[0]
        row["levels"] = level_verdicts(read_json(FrontierResult, job / "frontier.json"))
        if len(rows) <= 4:
            name = f"regime_{part}.png" if len(rows) == 1 else f"regime_{part}_{label}.png"
            shutil.copy(job / "frontier.png", ROOT / "docs" / name)
    return out


def level_verdicts(result: FrontierResult, threshold: float = 10.0) -> list[dict]:
    """Per level of a frontier report: the ticket's verdicts against the best baseline and its best control,
    whether it is ahead by the product's rule, and the cheapest arm (what README's results block reads)."""
    out = []
    for lv in result.levels:
        base, control = lv.judged.get("ticket"), lv.controlled.get("ticket")
        out.append({"level": lv.level, "baseline": base.text if base else lv.verdict,
                    "baseline_saving": base.saving_label() if base else None,
                    "baseline_ahead": bool(base and base.ahead(threshold)),
                    "control": control.text if control else None,
                    "control_saving": control.saving_label() if control else None,
                    "control_ahead": bool(control and control.ahead(threshold)), "cheapest": lv.cheapest})
    return out


def _early_bird_overlap(bird_sweep: Path, fixed_sweep: Path, cache: Path) -> list[dict]:
    """Per seed: IoU of the kept weights of the early-bird ticket and the 10-epoch fixed one."""
    from lth_lightning.pruning.masks import overlap
    from lth_lightning.pruning.tickets import load_ticket

    def tickets(job: Path) -> dict[int, str]:
        result = read_json(FrontierResult, job / "frontier.json")
        return {r.seed: r.find_stage for r in result.runs if r.arm == "ticket" and r.find_stage}

    bird = tickets(bird_sweep / "0")
    late = next((tickets(j) for j in fixed_sweep.iterdir() if (j / ".hydra").exists()
                 and "pipeline.find.epochs=10" in (j / ".hydra" / "overrides.yaml").read_text()), {})
    out = []
    for seed, stage in sorted(bird.items()):
        if seed in late:
            a, b = load_ticket(cache / stage / "ticket.pt"), load_ticket(cache / late[seed] / "ticket.pt")
            iou = overlap(a.masks, b.masks)["overall"]["iou"]
            out.append({"seed": seed, "early_bird": stage, "fixed_10": late[seed], "iou": round(iou, 4)})
    return out
