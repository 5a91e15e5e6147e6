"""``python -m benches wong``: Wong et al. 2020's MNIST recipe as published (+experiment=wong_mnist), 3 seeds.

Per seed: the run's per-epoch validation PGD-50 history, its test accuracy at the best checkpoint (PGD-50 x 10
restarts, step 0.01, first 2000 test images), the final epoch's net under the same attack (what their script keeps),
whether the run overfit catastrophically (robust val accuracy 10 points under its best at some epoch), and where the
catastrophic-overfitting guard (``eval.catastrophic_drop=10``) would have stopped it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from benches.common import DATA_ROOT, ROOT, save

DROP = 10.0  # the guard's threshold, as the frontier's fast-AT baselines use it


def guard_stop(robust: list[float]) -> int | None:
    """The epoch (1-based) the guard stops at: the first whose robust val accuracy is ``DROP`` below the best so far."""
    best = 0.0
    for epoch, value in enumerate(robust, start=1):
        best = max(best, value)
        if best - value >= DROP:
            return epoch
    return None


def run(args) -> None:
    """9. Wong et al.'s MNIST FGSM-RS recipe as published, 3 seeds: 88 % or catastrophic overfitting?"""
    from lth_lightning.data import build_datamodule
    from lth_lightning.tasks.evaluate import strong_eval

    seeds, rows, started = args.seeds, [], time.time()
    images = labels = None
    for seed in seeds:
        run_dir = ROOT / "outputs" / "bench_wong" / f"seed{seed}"
        cmd = [sys.executable, "-m", "lth_lightning", "+experiment=wong_mnist", f"data.root={DATA_ROOT}",
               f"seed={seed}", f"hydra.run.dir={run_dir}", *args.overrides]
        print(" ".join(cmd), flush=True)
        subprocess.run(cmd, check=True, cwd=ROOT)
        result = json.loads((run_dir / "result.json").read_text())
        if images is None:
            from lth_lightning.config import DataConfig

            dm = build_datamodule(DataConfig(name="mnist", root=DATA_ROOT, test_subset=2000))
            dm.setup("test")
            images, labels = dm.test_set.images.float().div(255.0), dm.test_set.labels
        _, final, threat = strong_eval(str(run_dir / "checkpoints" / "last.ckpt"), images, labels, 50, 10, step=0.01)
        robust = [h["val_robust"] for h in result["history"]]
        rows.append({"seed": seed, "val_robust": robust, "val_clean": [h["val_clean"] for h in result["history"]],
                     "best_epoch": max(range(len(robust)), key=robust.__getitem__) + 1,
                     "test_best": result["test"], "test_final_robust": final, "threat": threat,
                     "overfit": guard_stop(robust) is not None, "guard_stops_at": guard_stop(robust),
                     "train_seconds": result["ledger"]["train_seconds"]})
    save("wong", {"workload": "+experiment=wong_mnist (their CNN, 59k images, 10 epochs, FGSM-RS eps 0.3 step 0.375, "
                              "Adam one-cycle 5e-3, batch 100, no ramp)", "seeds": seeds,
                  "wall_seconds": round(time.time() - started, 1), "rows": rows})
