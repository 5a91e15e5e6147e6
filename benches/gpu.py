"""``python -m benches gpu``:

The GPU benches (one device run): train-step rates, channel tickets, finding, CIFAR smoke runs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from benches.common import RESULTS, ROOT, interleaved, save, summarize
from benches.workloads import CIFAR_INFO, kept_channels, lightning_rate

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


def run(args) -> None:
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
