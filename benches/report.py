"""Render benches/results/*.json into docs/benchmarks.md (between generated markers; notes outside stay)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

START, END = "<!-- generated:start -->", "<!-- generated:end -->"
COMMANDS = {"overhead": "python -m benches overhead", "attack": "python -m benches attack",
            "mask": "python -m benches mask", "levers": "python -m benches levers",
            "claim": "python -m benches claim --seeds 0 1 2", "gpu": "python -m benches gpu",
            "frontier": "python -m benches frontier", "regime": "python -m benches regime",
            "channels": "python -m benches channels --repeats 3", "wong": "python -m benches wong",
            "search": "python -m benches search"}
TITLES = {"overhead": "1. Framework overhead (Lightning vs hand-written PGD loop)",
          "attack": "2. Attack speed (ours vs torchattacks PGD)", "mask": "3. Mask cost",
          "levers": "5. Speed levers (CPU)", "claim": "4. The product claim on real MNIST",
          "gpu": "6. GPU throughput", "frontier": "7. The budget frontier on real MNIST",
          "regime": "8. The regime map on real MNIST", "channels": "9. Channel tickets: compact vs dense PGD-10 step",
          "wong": "10. Wong et al.'s MNIST FGSM-RS recipe, as published",
          "search": "11. The recipe search on real MNIST"}
REGIME_COLUMNS = [("ticket_top", "ticket best %"), ("dense_top", "dense best %"),
                  ("random_channels_top", "random_channels best %"), ("narrow_top", "narrow best %"),
                  ("random_mask_top", "random_mask best %"), ("reinit_top", "reinit best %"),
                  ("baseline_top", "best dense variant's best %"), ("boost", "epoch-1 boost (pts)"),
                  ("level", "level (best dense variant − 1) %"), ("saving_pct", "ticket saving % (MACs)"),
                  ("saving_seeds", "seeds both reached"), ("saving_s_pct", "saving in seconds %"),
                  ("verdict", "verdict"), ("control_saving_pct", "saving vs best control % (MACs)"),
                  ("control_verdict", "verdict vs best control"), ("collapsed", "collapsed"),
                  ("find_epochs", "finding epochs")]


def _ratio_table(result: dict[str, Any], target: float | None) -> list[str]:
    lines = ["| variant | median img/s | ratio to baseline | samples (img/s) |", "|---|---|---|---|"]
    for name, r in result.items():
        met = "" if target is None or name == next(iter(result)) else (" ✓" if r["ratio"] >= target else " ✗")
        lines.append(f"| {name} | {r['median']:.1f} | {r['ratio']:.3f}{met} | {', '.join(map(str, r['samples']))} |")
    return lines


def _claim_table(runs: dict[str, Any]) -> list[str]:
    lines = ["| seed | arm | sparsity % | epoch-1 robust % | best robust % | epochs→target | s→target | "
             "passes→target | test clean % | test PGD % | test AA % |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    savings = ["", "| seed | target robust % | saving to target (s) | saving to target (passes) | "
               "saving full (s) | saving full (passes) |", "|---|---|---|---|---|---|"]
    for seed, s in runs.items():
        for arm, r in s["arms"].items():
            t, test = r["to_target"], _test(r["test"])
            lines.append(f"| {seed} | {arm} | {r['sparsity']} | {r['epoch1_val_robust']} | {r['best_val_robust']} | "
                         f"{t['epochs'] or 'not reached'} | {_f(t['seconds'])} | {_f(t['passes'], '.3g')} | "
                         f"{test['clean']} | {test['robust']} | {test['autoattack']} |")
        p = s.get("pipeline") or {}
        sec, pas = p.get("seconds", {}), p.get("passes", {})
        cells = [_f(d.get(k), ".1f", " %") for k in ("saving_to_target_pct", "saving_full_pct") for d in (sec, pas)]
        savings.append(f"| {seed} | {s['target']} | {cells[0]} | {cells[1]} | {cells[2]} | {cells[3]} |")
    return lines + savings


def _test(test: dict[str, Any] | None) -> dict[str, Any]:
    """Test accuracies from either summary format (typed since 0.2: clean/robust/autoattack), "–" if unmeasured."""
    test = test or {}
    old = {"clean": "clean_acc", "robust": "robust_acc", "autoattack": "autoattack_acc"}
    return {k: test.get(k, test.get(legacy)) if test.get(k, test.get(legacy)) is not None else "–"
            for k, legacy in old.items()}


def _f(value: Any, spec: str = ".1f", unit: str = "") -> str:
    return "not reached" if value is None else format(value, spec) + unit


def _pm(row: dict[str, Any], key: str) -> str:
    value, std = row.get(key), row.get(f"{key}_std")
    if value is None:
        return "–"
    return f"{value} ± {std}" if std is not None else str(value)


def _regime(parts: dict[str, Any]) -> list[str]:
    lines = []
    for part, data in parts.items():
        axes = data["axes"]
        columns = [(k, t) for k, t in REGIME_COLUMNS if any(k in row for row in data["rows"])]  # what was measured
        lines += [f"#### `{part}`: {', '.join(axes) or 'one point'}", "",
                  f"`{data['command']}` — {data.get('first_wall_seconds', data['wall_seconds']) / 60:.0f} min on "
                  "the first (uncached) run; a rerun reads the stage cache.", "",
                  "| " + " | ".join([*axes, *(title for _, title in columns)]) + " |",
                  "|" + "---|" * (len(axes) + len(columns))]
        for row in data["rows"]:
            cells = [str(row.get(a, "")) for a in axes] + [_pm(row, k) for k, _ in columns]
            lines.append("| " + " | ".join(cells) + " |")
        levels = data.get("levels") or {}
        for label, md in (levels.items() if isinstance(levels, dict) else [("point", levels)]):
            table = [ln for ln in md.splitlines() if ln.startswith("|")]
            head = next((ln.strip("*") for ln in md.splitlines() if ln.startswith("**")), "")
            named = {"_".join(str(r[a]) for a in axes): ", ".join(f"{a}={r[a]}" for a in axes) for r in data["rows"]}
            where = "" if label == "point" else f" at {named.get(label, label)}"  # madry_cnn_0.5: model=madry_cnn, ...
            lines += ["", f"Cheapest cost to reach each accuracy level{where} (its frontier report):", "",
                      *([head, ""] if head else []), *table]
            if len(levels) > 1 and len(levels) <= 4:
                lines += ["", f"![{part} {label}](regime_{part}_{label}.png)"]
        if data.get("note"):
            lines += ["", data["note"]]
        if data.get("overlap"):
            lines += ["", "Early-bird vs 10-epoch fixed finding, kept-weight IoU per seed: "
                      + ", ".join(f"seed {o['seed']}: {o['iou']:.3f}" for o in data["overlap"]) + "."]
        lines += ["", f"![{part}](regime_{part}.png)", ""]
    return lines


def _channels(result: dict[str, Any], target: float) -> list[str]:
    variants = list(next(iter(result.values()))["variants"]) if result else []
    lines = ["| model @ channels removed | batch | MACs compact/dense | "
             + " | ".join(f"{v} img/s" for v in variants) + " | compact speed-up |",
             "|---|---|---|" + "---|" * (len(variants) + 1)]
    for name, r in result.items():
        v = r["variants"]
        met = " ✓" if "50%" in name and not name.startswith("lenet") and v["compact"]["ratio"] >= target else ""
        lines.append(f"| {name} | {r['batch']} | {r['macs_ratio']:.3f} | "
                     + " | ".join(f"{v[k]['median']:.1f}" for k in variants)
                     + f" | {v['compact']['ratio']:.2f}×{met} |")
    return lines


def _img_s(row: dict[str, Any], key: str) -> str:
    return f"{row['variants'][key]['median']:,.0f}" if key in row["variants"] else "–"


def _gpu_steps(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| model | precision | batch | GFLOP per image-step | plain eager | plain graphed | ours eager | "
             "ours graphed | ours graphed / plain graphed | MFU ours graphed |", "|---" * 10 + "|"]
    for r in rows:
        v = r["variants"]
        lines.append(f"| {r['model']} | {r['precision']} | {r['batch']} | {r['flops_per_image_step'] / 1e9:.1f} | "
                     + " | ".join(_img_s(r, k) for k in ("plain_eager", "plain_graphed", "ours_eager", "ours_graphed"))
                     + f" | {v['ours_graphed']['ratio']:.2f}× | {100 * v['ours_graphed']['mfu']:.1f} % |")
    return lines


def _gpu_channels(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| model | batch | GFLOP/img-step dense / aligned / unaligned | dense eager | dense graphed | "
             "aligned eager | aligned graphed | unaligned eager | unaligned graphed | aligned / dense, graphed | "
             "unaligned / dense, graphed |", "|---" * 11 + "|"]
    keys = [f"{n}_{m}" for n in ("dense", "aligned", "unaligned") for m in ("eager", "graphed")]
    for r in rows:
        flops = " / ".join(f"{r['flops'][n] / 1e9:.1f}" for n in ("dense", "aligned", "unaligned"))
        v = r["variants"]
        lines.append(f"| {r['model']} | {r['batch']} | {flops} | " + " | ".join(_img_s(r, k) for k in keys)
                     + f" | {v['aligned_graphed']['ratio']:.2f}× | {v['unaligned_graphed']['ratio']:.2f}× |")
    return lines


PAPER = {"images": 45_000, "find": 10, "ticket": 60, "dense": 100}  # CIFAR-10 pipeline of Li et al. (2020)


def _paper_minutes(steps: list[dict[str, Any]], channels: list[dict[str, Any]], find: dict[str, Any]) -> list[str]:
    """The paper's CIFAR-10 pipeline in minutes on this GPU, from the measured batch-128 bf16 rates."""
    lines = ["| model | mode | find, per 10 FGSM epochs | ticket, 60 PGD epochs | dense, 100 PGD epochs | "
             "aligned channel ticket, 60 PGD epochs |", "|---|---|---|---|---|---|"]

    def minutes(epochs: int, rate: float) -> str:
        return f"{epochs * PAPER['images'] / rate / 60:.1f}"

    for model in ("resnet18", "vgg16"):
        step = next((r for r in steps if r["model"] == model and r["batch"] == 128
                     and r["precision"] == "bf16-mixed"), None)
        chan = next((r for r in channels if r["model"] == model and r["batch"] == 128), None)
        if step is None or chan is None or model not in find:
            continue
        for mode in ("eager", "graphed"):
            pgd = step["variants"][f"ours_{mode}"]["median"]
            lines.append(f"| {model} | {mode} | {minutes(PAPER['find'], find[model][mode]['median'])} | "
                         f"{minutes(PAPER['ticket'], pgd)} | {minutes(PAPER['dense'], pgd)} | "
                         f"{minutes(PAPER['ticket'], chan['variants'][f'aligned_{mode}']['median'])} |")
    return lines


def _gpu(data: dict[str, Any]) -> list[str]:
    steps = data.get("steps", {}).get("result", [])
    channels = data.get("channels", {}).get("result", [])
    find = data.get("find", {}).get("result", {})
    out = ["*PGD-10 train step, img/s (plain: a hand-written loop; graphed: CUDA graph replay)*", "",
           *_gpu_steps(steps), "", "*Channel tickets at 50 % of channels, bf16, img/s (aligned: each layer's kept "
           "count a multiple of 8)*", "", *_gpu_channels(channels), ""]
    if find:
        out += ["*FGSM finding step, ours, batch 128 bf16, img/s:* " + "; ".join(
            f"{m} eager {v['eager']['median']:,.0f}, graphed {v['graphed']['median']:,.0f}" for m, v in find.items()),
            "", "*The paper's CIFAR-10 pipeline (45k training images) in minutes of training on this GPU, from the "
            "rates above (evaluation not counted)*", "", *_paper_minutes(steps, channels, find), ""]
    smokes = data.get("smokes", {}).get("result", {})
    if smokes:
        out += ["*Every CIFAR experiment config end to end (synthetic CIFAR-shaped data, 1–2 epoch stages, "
                "AutoAttack on 32 test images; – = robustness not evaluated, natural training)*", "",
                "| experiment | exit | seconds | AutoAttack % per arm |",
                "|---|---|---|---|"]
        out += [f"| {name} | {r['exit']} | {r['seconds']} | "
                + ", ".join(f"{a} {'–' if v is None else v}" for a, v in r["autoattack"].items()) + " |"
                for name, r in smokes.items()]
        out.append("")
    return out


def _wong(data: dict[str, Any]) -> list[str]:
    """Per seed: the per-epoch validation PGD-50 history, the best checkpoint's and the final net's test accuracy,
    and whether (and when) the catastrophic-overfitting guard would have stopped the run."""
    rows = data["rows"]
    lines = [wong_sentence(data), "", "| seed | val PGD-50 % per epoch | best epoch | test clean % (best) | "
             "test PGD-50×10 % (best checkpoint) | final epoch's net, PGD-50×10 % | overfit | guard stops at epoch | "
             "train s |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['seed']} | {', '.join(f'{v:.1f}' for v in r['val_robust'])} | {r['best_epoch']} | "
                     f"{_f(r['test_best']['clean'], '.2f')} | {_f(r['test_best']['robust'], '.2f')} | "
                     f"{_f(r['test_final_robust'], '.2f')} | {'yes' if r['overfit'] else 'no'} | "
                     f"{r['guard_stops_at'] or '–'} | {r['train_seconds']:.0f} |")
    return [*lines, ""]


def wong_sentence(data: dict[str, Any]) -> str:
    """What the reproduction reached, in one sentence (README and docs read it from here)."""
    rows = data["rows"]
    fell = [r for r in rows if r["overfit"]]
    never = [r for r in rows if max(r["val_robust"]) < 10.0]
    final = [r["test_final_robust"] for r in rows]
    best = [r["test_best"]["robust"] for r in rows]
    return (f"Wong et al.'s MNIST recipe as published (their net, FGSM-RS at step 0.375, Adam one cycle, 10 epochs), "
            f"{len(rows)} seeds: the final epoch's net scores {', '.join(f'{v:.1f}' for v in final)} % under PGD-50×10 "
            f"(first 2000 test images; they report about 88 %), the best checkpoint by validation "
            f"{', '.join(f'{v:.1f}' for v in best)} %. {len(never)} of {len(rows)} seeds never exceed 10 % validation "
            f"PGD accuracy in any epoch; {len(fell)} of {len(rows)} fall 10 points under a best they reached "
            f"(catastrophic overfitting), so the guard, which stops a run there, "
            + (f"would stop at epoch {', '.join(str(r['guard_stops_at']) for r in fell)}." if fell else "never fires."))


def _section(name: str, data: dict[str, Any]) -> list[str]:
    m = data["machine"]
    head = [f"### {TITLES[name]}", "", f"`{COMMANDS[name]}` — {data.get('workload', '')}",
            f"Machine: {m.get('gpu', m['cpu'])}, {m['threads']} threads, torch {m['torch']}, {m['date']}.", ""]
    if name == "claim":
        return [*head, *_claim_table(data["runs"]), ""]
    if name == "regime":
        return [*head, *_regime(data["parts"])]
    if name == "channels":
        return [*head, *_channels(data["result"], data["target"]), ""]
    if name == "wong":
        return [*head, *_wong(data)]
    if name == "gpu":
        return [*head, *_gpu(data)]
    if name in ("frontier", "search"):  # the task's own report, headings demoted, plus its plot and CPU time
        body = [line.replace("# ", "#### ", 1) if line.startswith("#") else line
                for line in data["markdown"].splitlines()]
        plot = "![MNIST frontier](frontier_mnist.png)" if name == "frontier" else \
            "![MNIST recipe search](search_mnist.png)"
        return [*head, f"CPU time: {data['wall_seconds'] / 60:.0f} min (2 cores, 1 thread).", "", *body, "", plot, ""]
    if name == "attack":
        head += [f"Clean accuracy {data['clean_acc']:.2f} %; robust accuracy: "
                 + ", ".join(f"{k} {v:.2f} %" for k, v in data["robust_acc"].items()), ""]
    result = data["result"]
    if name == "mask":
        body = []
        for sub, res in result.items():
            body += [f"*{sub}*", "", *_ratio_table(res, data.get("target")), ""]
        return head + body
    return [*head, *_ratio_table(result, data.get("target")), ""]


def _frontier_variant(path: Path) -> list[str]:
    data = json.loads(path.read_text())
    tag = path.stem.removeprefix("frontier_")
    experiment, *overrides = data["workload"].split()
    body = [line.replace("# ", "##### ", 1) if line.startswith("#") else line for line in data["markdown"].splitlines()]
    return [f"#### Variation `{tag}`", "", f"`python -m benches frontier --tag {tag} --experiment "
            f"{experiment.split('=', 1)[1]} --overrides {' '.join(overrides)}` — CPU time "
            f"{data['wall_seconds'] / 60:.0f} min (cached runs reused).", "", *body, "",
            f"![{tag}](frontier_mnist_{tag}.png)", ""]


README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"
CONTROL_ARMS = ("random_channels", "narrow", "random_mask", "reinit")


def _levels_at(levels: list[dict[str, Any]], key: str) -> str:
    won = [f"{lv['level']:.1f} %" for lv in levels if lv[key]]
    return ", ".join(won) if won else "no level"


def _cheapest_by_level(levels: list[dict[str, Any]]) -> str:
    """The cheapest arm at each level (of those reaching it on every seed), runs of the same arm merged:
    "narrow 40.6–77.1 %; dense 80.1 %"."""
    runs: list[list[Any]] = []
    for lv in levels:
        arm = lv["cheapest"] or "none on every seed"
        if runs and runs[-1][0] == arm:
            runs[-1][2] = lv["level"]
        else:
            runs.append([arm, lv["level"], lv["level"]])
    return "; ".join(f"{arm} {lo:.1f} %" if lo == hi else f"{arm} {lo:.1f}–{hi:.1f} %" for arm, lo, hi in runs)


def _tops(row: dict[str, Any]) -> str:
    """Every arm's mean top: the ticket, its controls, then dense and its variants."""
    arms = [k.removesuffix("_top") for k in row if k.endswith("_top") and k != "baseline_top"]
    order = sorted(arms, key=lambda a: (0 if a.startswith("ticket") else 1 if a in CONTROL_ARMS else 2, a))
    return " / ".join(f"{a} {row[f'{a}_top']}" for a in order if row[f"{a}_top"] is not None)


def _frontier_row(data: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A stored frontier (benches/results/frontier_*.json) as a regime-like row and its per-level verdicts."""
    from benches.regime import level_verdicts
    from lth_lightning.reports.aggregate import _frontier_metrics
    from lth_lightning.results import FrontierResult, from_json

    result = from_json(FrontierResult, data["result"])
    return _frontier_metrics(result), level_verdicts(result)


def readme_block(results: Path) -> str:
    """README's results: every number from benches/results, each setting's verdicts against the best baseline
    and against the ticket's best control, by the product's own rule (at least 10 % cheaper by the t interval's
    lower end, every seed)."""
    regime = json.loads((results / "regime.json").read_text())["parts"]
    base = regime["baseline"]["rows"][0]
    lines = [README_START, "*Generated by `python -m benches report` from `benches/results/`; every number below "
             "is read from there.*", "",
             f"- **Against the strongest baseline** (dense with ε ramped, regime part `baseline`: 2k MNIST images, "
             f"6 epochs, 3 seeds): the 80 % boosting ticket tops at {base['ticket_top']} % robust accuracy, the "
             f"ramped dense net at {base['baseline_top']} % (plain dense {base['dense_top']} %). At the ramped "
             f"dense net's best − 1: {base['verdict']}.",
             "- **Is a ticket more than a narrower net, and cheaper than fast adversarial training?** Each compacted "
             "channel ticket against its controls (random_channels: the ticket's kept counts at random channels, "
             "slices of the unmasked θ0; narrow: the same shape at the model's default init; one control net per "
             "seed, neither charged a finding) and the best baseline (on 10k images also FGSM-RS and N-FGSM, on our "
             "schedule and at their published recipes), 3 seeds, in MACs; collapsed runs enter no front:", "",
             "| setting | tops, robust % | ticket ahead of the best baseline at | ticket ahead of its best control "
             "at | cheapest arm at each level (of those reaching it on every seed) | collapsed |",
             "|---|---|---|---|---|---|"]
    ramp = regime.get("channel_ramp", {})
    rows = [("regime `channel_ramp` (2k images, 6 epochs): " + ", ".join(f"{a}={r[a]}" for a in ramp["axes"]), r,
             r.get("levels", [])) for r in ramp.get("rows", [])]
    for path in sorted(results.glob("frontier_*.json")):
        data = json.loads(path.read_text())
        if "random_channels" in {r["arm"] for r in data["result"]["runs"]}:
            row, levels = _frontier_row(data)
            rows.append((f"`{path.stem}`: {data['workload'].split()[0].split('=', 1)[1]} (10k images, budgets "
                         f"{data['result']['budgets']}, LRs {data['result']['lrs']})", row, levels))
    for name, row, levels in rows:
        lines.append(f"| {name} | {_tops(row)} | {_levels_at(levels, 'baseline_ahead')} | "
                     f"{_levels_at(levels, 'control_ahead')} | {_cheapest_by_level(levels)} | "
                     f"{row.get('collapsed', '–')} |")
    lines += ["", *_strong_lines(results), *_search_lines(results), "Per-level costs, intervals and the cheap "
              "baselines (width 0.5, FGSM-RS, "
              "N-FGSM, both at their published recipes): `docs/benchmarks.md` §7 (variation `10k_controls`), §8 (part "
              "`channel_ramp`), §10 (Wong et al.'s recipe) and §11 (the recipe search).", README_END]
    return "\n".join(lines)


def _search_lines(results: Path) -> list[str]:
    """The recipe search's answer (#32): the cheapest confirmed recipe to the standard recipe's best - 1 and below, as a
    fraction of the standard's MACs with its interval, the same against the best baseline, and whether a ticket is
    part of it."""
    path = results / "search.json"
    if not path.exists():
        return []
    from lth_lightning.reports.search import cheapest_recipe, fraction
    from lth_lightning.results import SearchResult, from_json

    data = json.loads(path.read_text())
    result = from_json(SearchResult, data["result"])

    def per_level(levels: list[Any]) -> str:
        parts = []
        for lv, std in zip(reversed(levels), reversed(result.vs_standard), strict=True):
            arm = cheapest_recipe(std, result)  # the recipe cheapest against the standard, read against both
            parts.append(f"{lv.level:.1f} %: " + (f"`{arm}` at {fraction(lv.judged[arm])}" if arm else
                                                 "none on every seed"))
        return "; ".join(parts)

    recipes = "; ".join(f"`{c.arm}` = {c.recipe.label()}" for c in result.confirmed)
    tests = {a: " / ".join(f"{f.test_robust:.1f}" for f in result.finals if f.arm == a and f.test_robust is not None)
             for a in ["dense", *(c.arm for c in result.confirmed)]}
    baselines = ", ".join(b for b in result.baselines if b != "dense")
    return [f"- **The recipe search** (`{data['workload']}`: {len(result.trials)} trials on seed 0, 10k MNIST images, "
            f"ε 0.3, {data['wall_seconds'] / 60:.0f} min on 2 cores; confirmed on seeds "
            f"{', '.join(map(str, result.seeds))}). Cheapest confirmed recipe, as a fraction of the standard recipe's "
            "MACs (dense LeNet, PGD-7 with the ramp, at its best LR; finding included) with its 90 % interval, to "
            f"each level up to the standard's mean top − 1: {per_level(result.vs_standard)}. The same recipe against "
            "the "
            f"best of the standard and the hand-written baselines ({baselines}) per seed: "
            f"{per_level(result.vs_best)}. Recipes: {recipes}. Test PGD at the best checkpoint: "
            + ", ".join(f"{a} {v} %" for a, v in tests.items()) + f". {result.ticket_line}", ""]


def _strong_lines(results: Path) -> list[str]:
    """The strong final evaluation of each stored frontier that made one, and the Wong et al. reproduction."""
    out = []
    for path in sorted(results.glob("frontier_*.json")):
        final = json.loads(path.read_text())["result"].get("final") or []
        if not final:
            continue
        arms = list(dict.fromkeys(f["arm"] for f in final))
        mean = {a: sum(f["strong"] for f in final if f["arm"] == a) / sum(f["arm"] == a for f in final) for a in arms}
        own = {a: [f["test_robust"] for f in final if f["arm"] == a] for a in arms}
        pgd = {a: sum(v) / len(v) if v and None not in v else None for a, v in own.items()}
        out += [f"- **Strong final evaluation** (`{path.stem}`: each arm's best run per seed, {final[0]['threat']} on "
                f"the first {final[0]['samples']} test images, mean over seeds; the run's own test PGD in brackets): "
                + "; ".join(f"{a} {mean[a]:.1f} % ({_f(pgd[a])} %)" for a in arms) + ".", ""]
    wong = results / "wong.json"
    if wong.exists():
        out += [f"- **{wong_sentence(json.loads(wong.read_text()))}**", ""]
    return out


MAKE_RUN_START, MAKE_RUN_END = "<!-- make_run:start -->", "<!-- make_run:end -->"


def make_run_block(results: Path) -> str:
    """README's make-run numbers: the digits frontier's level table and tops, and fast_ticket's verdict line, read from
    the stored runs of exactly those commands (``python -m benches readme_runs``)."""
    from lth_lightning.results import FrontierResult, Summary, from_json

    run = json.loads((results / "make_run.json").read_text())
    result = from_json(FrontierResult, run["result"])
    m = run["machine"]
    unit = "MACs" if result.levels and result.levels[0].unit == "macs" else "passes"
    lines = [MAKE_RUN_START, f"*Generated by `python -m benches report` from `benches/results/make_run.json` and "
             f"`fast_ticket.json` (`python -m benches readme_runs`: seed 0, {m['threads']} CPU thread, {m['date']}, "
             f"{run['wall_seconds'] / 60:.1f} min).* Robust accuracy {result.threat} on validation; cost in {unit}, "
             "finding included:", "", f"| level (robust %) | ticket {unit} | dense {unit} | ticket saving |",
             "|---|---|---|---|"]
    for lv in result.levels:
        costs = lv.macs if unit == "MACs" else lv.passes
        cell = {a: "not reached" if costs[a].mean is None else _f(costs[a].mean, ".3g") for a in ("ticket", "dense")}
        verdict = lv.judged.get("ticket")
        lines.append(f"| {lv.level:.1f} | {cell['ticket']} | {cell['dense']} | "
                     f"{verdict.saving_label() if verdict and verdict.saving is not None else '–'} |")
    tops = {a: max((r.best_val for r in result.runs if r.arm == a and r.best_val is not None), default=None)
            for a in ("ticket", "dense")}
    where = {a: next((r.budget for r in result.runs if r.arm == a and r.best_val == tops[a]), None) for a in tops}
    summary = from_json(Summary, json.loads((results / "fast_ticket.json").read_text())["result"])
    lines += ["", f"The ticket's best: {_f(tops['ticket'], '.1f')} % (at {where['ticket']} epochs); dense's: "
              f"{_f(tops['dense'], '.1f')} % (at {where['dense']} epochs). The run's headline: \"{result.headline}\"",
              "", f"`+experiment=fast_ticket` (seed 0) opens its summary with: \"{summary.verdict}\"", MAKE_RUN_END]
    return "\n".join(lines)


def _replace_block(text: str, start: str, end: str, block: str) -> str:
    if start not in text:
        return text
    before, _, rest = text.partition(start)
    _, _, after = rest.partition(end)
    return before + block + after


def render_readme(results: Path, readme: Path) -> Path:
    """Replace README's generated blocks (between their markers): ``readme_block`` and ``make_run_block``."""
    text = _replace_block(readme.read_text(), README_START, README_END, readme_block(results))
    if (results / "make_run.json").exists() and (results / "fast_ticket.json").exists():
        text = _replace_block(text, MAKE_RUN_START, MAKE_RUN_END, make_run_block(results))
    readme.write_text(text)
    return readme


def render(results: Path, doc: Path) -> Path:
    sections: list[str] = []
    for name in TITLES:
        path = results / f"{name}.json"
        if path.exists():
            sections += _section(name, json.loads(path.read_text()))
        else:
            sections += [f"### {TITLES[name]}", "", f"Not measured yet: `{COMMANDS[name]}`.", ""]
        if name == "frontier":  # variations: python -m benches frontier --tag T --experiment E --overrides ...
            for variant in sorted(results.glob("frontier_*.json")):
                sections += _frontier_variant(variant)
        if name == "claim":  # variations: python -m benches claim --tag T --overrides ...
            for variant in sorted(results.glob("claim_*.json")):
                data = json.loads(variant.read_text())
                tag = variant.stem.removeprefix("claim_")
                sections += [f"#### Variation `{tag}`", "", f"`python -m benches claim --tag {tag} --seeds "
                             f"{' '.join(data['runs'])} --overrides ...` — {data['workload']}", "",
                             *_claim_table(data["runs"]), ""]
    generated = "\n".join([START, *sections, END])
    text = doc.read_text() if doc.exists() else "# Benchmarks\n\n" + START + "\n" + END + "\n"
    before, _, rest = text.partition(START)
    _, _, after = rest.partition(END)
    doc.parent.mkdir(exist_ok=True)
    doc.write_text(before + generated + after)
    return doc
