"""``python -m benches claim``: fast_ticket_mnist against its dense arm on real MNIST, one pipeline run per seed."""

from __future__ import annotations

import json
import subprocess
import sys

from benches.common import DATA_ROOT, RESULTS, ROOT, save


def run(args) -> None:
    """4. fast_ticket_mnist vs its dense arm on real MNIST, one pipeline run per seed."""
    runs = {}
    suffix = f"_{args.tag}" if args.tag else ""
    stored = RESULTS / f"claim{suffix}.json"
    had = sorted(json.loads(stored.read_text())["runs"]) if stored.exists() else []
    if len(had) > len(args.seeds) and not args.force:  # never downgrade a stored result silently
        sys.exit(f"error: {stored.name} holds seeds {', '.join(had)}; --seeds {' '.join(map(str, args.seeds))} "
                 "would replace it with fewer (pass --force to do so)")
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
