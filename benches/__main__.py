"""python -m benches {overhead,attack,mask,levers,claim,frontier,regime,channels,gpu,report,all} [--repeats N] [--quick]

Each benchmark interleaves its variants (A/B/A/B...), repeats, and reports medians and median ratios;
results go to benches/results/<name>.json and ``report`` renders docs/benchmarks.md from them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benches.common import RESULTS, interleaved, save, summarize, timed
from benches.workloads import CIFAR_INFO, MNIST_INFO, handwritten_rate, kept_channels, lightning_rate

ROOT = Path(__file__).resolve().parents[1]
DATA_ROOT = os.environ.get("LTH_DATA_ROOT", str(ROOT.parent / "shared" / "data"))


def overhead(args) -> None:
    """1. Lightning PGD-10 training step vs a minimal hand-written loop (target ratio >= 0.95)."""
    steps = 4 if args.quick else 20
    samples = interleaved({
        "handwritten": lambda: handwritten_rate("lenet", MNIST_INFO, steps, 10),
        "lightning": lambda: lightning_rate("lenet", MNIST_INFO, steps, 10),
    }, args.repeats)
    save("overhead", {"workload": f"lenet 28x28 PGD-10 train step, batch 128, {steps} timed steps",
                      "target": 0.95, "result": summarize(samples, "handwritten")})


def _trained_mnist_lenet():
    import torch
    import torch.nn.functional as F

    from lth_lightning.config import DataConfig, ModelConfig
    from lth_lightning.data import build_datamodule
    from lth_lightning.models import build_model

    dm = build_datamodule(DataConfig(name="mnist", root=DATA_ROOT, train_subset=10000, test_subset=1000))
    dm.setup()
    model = build_model(ModelConfig(name="lenet"), dm.info, seed=0)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for x, y in dm.train_dataloader():
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    x = dm.test_set.images.float() / 255
    return model.eval(), x, dm.test_set.labels


def attack(args) -> None:
    """2. Our PGD vs torchattacks' PGD: same start (no random start), same model, batch; speed and accuracy."""
    import torch
    import torchattacks

    from lth_lightning.attacks import Attack

    model, x, y = _trained_mnist_lenet()
    eps, alpha, steps = 0.1, 0.025, 10
    ours = Attack(eps, alpha, steps, random_start=False, bn_mode="eval")
    theirs = torchattacks.PGD(model, eps=eps, alpha=alpha, steps=steps, random_start=False)
    accs = {}

    def run(name, fn):
        def go() -> int:
            correct = 0
            for i in range(0, len(x), 250):
                xb, yb = x[i : i + 250], y[i : i + 250]
                x_adv = fn(xb, yb)  # outside no_grad: torchattacks needs autograd enabled by the caller
                with torch.no_grad():
                    correct += int((model(x_adv).argmax(1) == yb).sum())
            accs[name] = 100 * correct / len(x)
            return len(x)
        return lambda: timed(go)

    samples = interleaved({"torchattacks": run("torchattacks", lambda a, b: theirs(a, b)),
                           "ours": run("ours", lambda a, b: ours(model, a, b))}, args.repeats)
    with torch.no_grad():
        clean = 100 * float((model(x).argmax(1) == y).float().mean())
    workload = f"lenet on 1000 MNIST test images, PGD-{steps} eps {eps} step {alpha}, no random start"
    save("attack", {"workload": workload, "target": 1.0, "clean_acc": clean, "robust_acc": accs,
                    "result": summarize(samples, "torchattacks")})


def mask(args) -> None:
    """3. Training step with 80 % masks (MaskEnforcer hooks) vs without (target ratio >= 0.97)."""
    out = {}
    for label, attack_steps, steps in (("natural", 0, 60), ("pgd10", 10, 8)):
        steps = max(2, steps // 3) if args.quick else steps
        samples = interleaved({
            "dense": lambda a=attack_steps, s=steps: lightning_rate("lenet", MNIST_INFO, s, a),
            "masked": lambda a=attack_steps, s=steps: lightning_rate("lenet", MNIST_INFO, s, a, sparsity=0.8),
        }, args.repeats)
        out[label] = summarize(samples, "dense")
    save("mask", {"workload": "lenet 28x28, batch 128, masks at 80 % sparsity", "target": 0.97, "result": out})


CHANNEL_MODELS = (("lenet", MNIST_INFO, 128), ("vgg11", CIFAR_INFO, 32), ("resnet18", CIFAR_INFO, 32))


def channels(args) -> None:
    """9. PGD-10 train step, channel ticket compacted vs dense, at 30/50/70 % of channels (target >= 2.5x at
    50 % for vgg11 and resnet18 on CPU). On a GPU also bf16 + channels_last, where the compact net's
    narrower layers may use the card less well."""
    import torch

    from lth_lightning.config import ModelConfig
    from lth_lightning.models import build_model
    from lth_lightning.pruning.channels import compact, macs

    gpu = torch.cuda.is_available()
    opts = {"accelerator": "gpu", "in_memory": True} if gpu else {}
    steps = 1 if args.quick else 3
    out = {}
    for model, info, batch in CHANNEL_MODELS:
        dense_macs = macs(build_model(ModelConfig(name=model), info, seed=0), info.shape)
        for ratio in (0.3, 0.5, 0.7):
            kept = kept_channels(model, info, ratio)
            small = compact(build_model(ModelConfig(name=model), info, seed=0), info.shape,
                            {k: torch.tensor(v) for k, v in kept.items()})
            variants = {
                "dense": lambda m=model, i=info, b=batch: lightning_rate(m, i, steps, 10, b, warmup=1, **opts),
                "compact": lambda m=model, i=info, b=batch, k=kept: lightning_rate(m, i, steps, 10, b, warmup=1,
                                                                                 channels=k, **opts),
            }
            if gpu:
                variants["dense_bf16_cl"] = lambda m=model, i=info, b=batch: lightning_rate(
                    m, i, steps, 10, b, warmup=1, precision="bf16-mixed", channels_last=True, **opts)
                variants["compact_bf16_cl"] = lambda m=model, i=info, b=batch, k=kept: lightning_rate(
                    m, i, steps, 10, b, warmup=1, channels=k, precision="bf16-mixed", channels_last=True, **opts)
            out[f"{model} @ {ratio:.0%} channels"] = {
                "macs_ratio": round(macs(small, info.shape) / dense_macs, 4), "batch": batch,
                "variants": summarize(interleaved(variants, args.repeats), "dense")}
    save("channels", {"workload": f"PGD-10 train step, {steps} timed steps after 1 warm-up, synthetic data "
                                  "(lenet 28x28 batch 128; vgg11/resnet18 32x32 batch 32)", "target": 2.5,
                      "result": out})


def levers(args) -> None:
    """5. Speed levers on the CPU PGD-10 step: channels_last, bf16 autocast, torch.compile, in-memory data."""
    steps = 3 if args.quick else 6
    variants = {
        "baseline": lambda: lightning_rate("lenet", MNIST_INFO, steps, 10),
        "channels_last": lambda: lightning_rate("lenet", MNIST_INFO, steps, 10, channels_last=True),
        "bf16_autocast": lambda: lightning_rate("lenet", MNIST_INFO, steps, 10, precision="bf16-mixed"),
        "in_memory": lambda: lightning_rate("lenet", MNIST_INFO, steps, 10, in_memory=True),
    }
    if not args.quick:
        variants["compile"] = lambda: lightning_rate("lenet", MNIST_INFO, steps, 10, compile_model=True, warmup=4)
    samples = interleaved(variants, args.repeats)
    save("levers", {"workload": f"lenet 28x28 PGD-10 train step, batch 128, {steps} timed steps",
                    "result": summarize(samples, "baseline")})


def claim(args) -> None:
    """4. fast_ticket_mnist vs its dense arm on real MNIST, one pipeline run per seed."""
    runs = {}
    suffix = f"_{args.tag}" if args.tag else ""
    for seed in args.seeds:
        run_dir = ROOT / "outputs" / "bench_claim" / f"seed{seed}{suffix}"
        cmd = [sys.executable, "-m", "lth_lightning", "+experiment=fast_ticket_mnist", f"data.root={DATA_ROOT}",
               f"seed={seed}", f"pipeline.cache_dir={args.cache_dir}", f"hydra.run.dir={run_dir}", *args.overrides]
        print(" ".join(cmd), flush=True)
        subprocess.run(cmd, check=True, cwd=ROOT)
        summary = json.loads((run_dir / "summary.json").read_text())
        for arm in summary["arms"].values():
            arm.pop("history")  # per-epoch curves stay in the run dir; the table needs the summary
        runs[str(seed)] = summary
    workload = " ".join(["+experiment=fast_ticket_mnist (2k-image MNIST subset, batch 32, 6-epoch budget for ticket "
                         "and dense, CPU)", *args.overrides])
    save(f"claim{suffix}", {"workload": workload, "runs": runs})


def frontier(args) -> None:
    """7. The budget frontier on real MNIST (+experiment=frontier_mnist): ticket vs dense at every budget and LR.

    ``--tag T --experiment E --overrides ...``: a variation, saved as results/frontier_T.json."""
    suffix = f"_{args.tag}" if args.tag else ""
    run_dir = ROOT / "outputs" / f"bench_frontier{suffix}"
    experiment = args.experiment or "frontier_mnist"
    cmd = [sys.executable, "-m", "lth_lightning", f"+experiment={experiment}", f"data.root={DATA_ROOT}",
           f"pipeline.cache_dir={args.cache_dir}", f"hydra.run.dir={run_dir}", *args.overrides]
    print(" ".join(cmd), flush=True)
    started = time.time()
    subprocess.run(cmd, check=True, cwd=ROOT)
    result = json.loads((run_dir / "frontier.json").read_text())
    wall = round(time.time() - started, 1)
    earlier = RESULTS / f"frontier{suffix}.json"  # the uncached run's time survives reruns that read the cache
    wall = max(wall, json.loads(earlier.read_text()).get("wall_seconds", 0.0)) if earlier.exists() else wall
    save(f"frontier{suffix}", {"workload": " ".join([f"+experiment={experiment}", *args.overrides]),
                               "wall_seconds": wall, "result": result,
                               "markdown": (run_dir / "frontier.md").read_text()})
    shutil.copy(run_dir / "frontier.png", ROOT / "docs" / f"frontier_mnist{suffix}.png")


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


def regime(args) -> None:
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
        first = done.get(part, {}).get("first_wall_seconds", wall)  # the uncached run's time survives reruns
        done[part] = {"command": " ".join(["python -m lth_lightning -m +experiment=regime_mnist", *REGIME[part]]),
                      "wall_seconds": wall, "first_wall_seconds": first, "axes": axes, "rows": rows}
        if part in ("early_bird_stop", "early_bird_steps"):
            done[part]["overlap"] = _early_bird_overlap(sweep, ROOT / "outputs" / "bench_regime" / "early_bird",
                                                        Path(args.cache_dir))
        if (sweep / "aggregate.png").exists():
            shutil.copy(sweep / "aggregate.png", ROOT / "docs" / f"regime_{part}.png")
        if len(rows) == 1 and (sweep / "0" / "frontier.png").exists():  # one point: its fronts and level table
            shutil.copy(sweep / "0" / "frontier.png", ROOT / "docs" / f"regime_{part}.png")
            done[part]["levels"] = (sweep / "0" / "frontier.md").read_text().split("## Each budget")[0]
        save("regime", {"workload": "+experiment=regime_mnist (2k-image MNIST subset, batch 32, 6-epoch budget, "
                                    "PGD-7 eps 0.3, 3 seeds per point)", "parts": done})


def _early_bird_overlap(bird_sweep: Path, fixed_sweep: Path, cache: Path) -> list[dict]:
    """Per seed: IoU of the kept weights of the early-bird ticket and the 10-epoch fixed one."""
    from lth_lightning.pruning.masks import overlap
    from lth_lightning.pruning.tickets import load_ticket
    from lth_lightning.results import FrontierResult, read_json

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


PEAK_BF16 = 790e12  # FLOP/s: a bf16 matmul measured on this workplace's H200 (KINDS.md), the MFU denominator
CIFAR_EPS = 8 / 255


def _rate_row(model: str, batch: int, flops: int, variants: dict, repeats: int, base: str) -> dict:
    """Median img/s of each variant, its ratio to ``base`` and its model-FLOPs utilisation."""
    result = summarize(interleaved(variants, repeats), base)
    for v in result.values():
        v["mfu"] = round(v["median"] * flops / PEAK_BF16, 4)
    return {"model": model, "batch": batch, "flops_per_image_step": flops, "variants": result}


def _step_table(args, steps: int) -> list[dict]:
    """Plain loop vs ours, eager vs graphed, per model, batch and precision (PGD-10, eps 8/255)."""
    from benches.workloads import plain_rate, step_flops

    rows = []
    for model, precisions in (("resnet18", ("bf16-mixed", "32-true")), ("vgg16", ("bf16-mixed",))):
        flops = step_flops(model, CIFAR_INFO)
        for precision in precisions:
            for batch in (128, 512):
                bf16 = precision == "bf16-mixed"

                def ours(graph: bool, m=model, b=batch, p=precision):
                    return lambda: lightning_rate(m, CIFAR_INFO, steps, 10, b, precision=p, channels_last=True,
                                                  in_memory=True, accelerator="gpu", cuda_graph=graph,
                                                  eps=CIFAR_EPS, warmup=5)
                variants = {"plain_eager": lambda m=model, b=batch, f=bf16: plain_rate(m, CIFAR_INFO, steps, b, f),
                            "plain_graphed": lambda m=model, b=batch, f=bf16: plain_rate(m, CIFAR_INFO, steps, b, f,
                                                                                       graph=True),
                            "ours_eager": ours(False), "ours_graphed": ours(True)}
                row = _rate_row(model, batch, flops, variants, args.repeats, "plain_graphed")
                rows.append({**row, "precision": precision})
                print(json.dumps({k: row[k] for k in ("model", "batch")}), precision,
                      {k: round(v["median"]) for k, v in row["variants"].items()}, flush=True)
    return rows


def _find_rates(args, steps: int) -> dict:
    """Ours, FGSM training (the finding stage), eager vs graphed, batch 128 bf16."""
    out = {}
    for model in ("resnet18", "vgg16"):
        variants = {f"{mode}": lambda m=model, g=(mode == "graphed"): lightning_rate(
            m, CIFAR_INFO, steps, 1, 128, precision="bf16-mixed", channels_last=True, in_memory=True,
            accelerator="gpu", cuda_graph=g, eps=CIFAR_EPS, attack="fgsm", warmup=5) for mode in ("eager", "graphed")}
        out[model] = summarize(interleaved(variants, args.repeats), "eager")
    return out


def _channel_table(args, steps: int) -> list[dict]:
    """Channel tickets at 50 % of channels, aligned to multiples of 8 or not, vs their dense net (bf16)."""
    from benches.workloads import step_flops

    rows = []
    for model in ("resnet18", "vgg16"):
        nets = {"dense": None, "aligned": kept_channels(model, CIFAR_INFO, 0.5, 8),
                "unaligned": kept_channels(model, CIFAR_INFO, 0.5, 1)}
        for batch in (128, 512):
            variants = {f"{net}_{mode}": lambda m=model, b=batch, k=kept, g=(mode == "graphed"): lightning_rate(
                m, CIFAR_INFO, steps, 10, b, precision="bf16-mixed", channels_last=True, in_memory=True,
                accelerator="gpu", cuda_graph=g, eps=CIFAR_EPS, channels=k, warmup=5)
                for net, kept in nets.items() for mode in ("eager", "graphed")}
            row = _rate_row(model, batch, step_flops(model, CIFAR_INFO), variants, args.repeats, "dense_graphed")
            row["flops"] = {net: step_flops(model, CIFAR_INFO, channels=k) for net, k in nets.items()}
            rows.append(row)
            print(model, batch, {k: round(v["median"]) for k, v in row["variants"].items()}, flush=True)
    return rows


CIFAR_EXPERIMENTS = ("fast_ticket_cifar10_wrn34_10", "boosting_natural_cifar10_vgg16", "fast_ticket_cifar10_resnet18",
                     "fast_ticket_cifar10_vgg16")


def _experiment_smokes(out_dir: Path, experiments: list[str]) -> dict:
    """Every CIFAR experiment config end to end on synthetic CIFAR-shaped data, short stages, AutoAttack on."""
    out = {}
    for experiment in experiments:
        run_dir = out_dir / experiment
        epochs = 1 if "wrn" in experiment else 2  # WRN-34-10: 46M parameters
        cmd = [sys.executable, "-m", "lth_lightning", f"+experiment={experiment}", "data=synthetic",
               "data.synthetic_size=1024", f"pipeline.find.epochs={epochs}", f"pipeline.ticket_epochs={epochs}",
               f"pipeline.dense_epochs={epochs}", "eval.val_robust_samples=256", "eval.autoattack_samples=32",
               f"pipeline.cache_dir={out_dir / 'cache'}", f"hydra.run.dir={run_dir}"]
        started = time.time()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        summary = run_dir / "summary.json"
        arms = json.loads(summary.read_text())["arms"] if summary.exists() else {}
        out[experiment] = {"exit": proc.returncode, "seconds": round(time.time() - started, 1),
                           "autoattack": {a: (v.get("test") or {}).get("autoattack") for a, v in arms.items()},
                           "tail": proc.stderr.strip().splitlines()[-3:] if proc.returncode else [],
                           "warnings": [line for line in proc.stderr.splitlines() if "warn" in line.lower()][:8]}
        print(experiment, out[experiment], flush=True)
    return out


def gpu(args) -> None:
    """6. The GPU: PGD-10 step img/s and MFU (plain loop vs ours, eager vs CUDA graph), aligned channel
    tickets, the FGSM finding step, and every CIFAR experiment config end to end (AutoAttack on)."""
    import torch

    if not torch.cuda.is_available():
        sys.exit("no CUDA device: run this on a GPU machine (python -m benches gpu)")
    steps = 5 if args.quick else args.steps
    parts = args.parts_gpu or ["steps", "channels", "find", "smokes"]
    path = RESULTS / "gpu.json"
    done = json.loads(path.read_text()) if path.exists() and args.resume else {}
    makers = {"steps": lambda: _step_table(args, steps), "find": lambda: _find_rates(args, steps),
              "channels": lambda: _channel_table(args, steps),
              "smokes": lambda: {**done.get("smokes", {}).get("result", {}), **_experiment_smokes(
                  ROOT / "outputs" / "bench_gpu_smokes", args.smoke or list(CIFAR_EXPERIMENTS))}}
    for part in parts:
        started = time.time()
        done[part] = {"result": makers[part](), "wall_seconds": round(time.time() - started, 1)}
        if part != "smokes":
            done[part]["timed_steps"] = steps
        timed = sorted({v["timed_steps"] for v in done.values() if isinstance(v, dict) and "timed_steps" in v})
        save("gpu", {"workload": f"PGD-10 (eps 8/255, step 2/255) train step on CIFAR-shaped synthetic data, "
                                 f"{'/'.join(map(str, timed))} timed steps after 5 warm-up; MFU vs "
                                 f"{PEAK_BF16 / 1e12:.0f} TFLOP/s bf16",
                     **{k: v for k, v in done.items() if k not in ("machine", "workload")}}, echo=False)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benches")
    parser.add_argument("what", choices=["overhead", "attack", "mask", "levers", "claim", "frontier", "regime",
                                         "channels", "gpu", "report", "all"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="fewer steps (a smoke run, not for reporting)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--cache-dir", default=str(ROOT / "cache"))
    parser.add_argument("--overrides", nargs="*", default=[], help="claim: extra Hydra overrides (a variation)")
    parser.add_argument("--parts", nargs="*", choices=list(REGIME), help="regime: which axes (default: all)")
    parser.add_argument("--experiment", default="", help="frontier: the experiment config (default frontier_mnist)")
    parser.add_argument("--tag", default="", help="claim: name of the variation (results/claim_<tag>.json)")
    parser.add_argument("--parts-gpu", nargs="*", choices=["steps", "find", "channels", "smokes"],
                        help="gpu: which parts (default: all)")
    parser.add_argument("--steps", type=int, default=20, help="gpu: timed steps per variant")
    parser.add_argument("--smoke", nargs="*", choices=CIFAR_EXPERIMENTS, help="gpu: which configs (default: all)")
    parser.add_argument("--resume", action="store_true", help="gpu: keep the parts already in results/gpu.json")
    args = parser.parse_args()
    from benches.report import render

    chosen = ["overhead", "attack", "mask", "levers", "claim"] if args.what == "all" else [args.what]
    for name in chosen:
        if name != "report":
            globals()[name](args)
    print(f"docs written: {render(RESULTS, ROOT / 'docs' / 'benchmarks.md')}")


if __name__ == "__main__":
    main()
