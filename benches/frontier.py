"""``python -m benches frontier``:

A budget frontier on real MNIST (an experiment config), stored with its report and plot.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

from benches.common import DATA_ROOT, RESULTS, ROOT, save


def run(args) -> None:
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
    stored = json.loads(earlier.read_text()) if earlier.exists() else {}
    fewer = len(result["seeds"]) < len(stored.get("result", {}).get("seeds", []))
    if fewer and not args.force:  # a quick look must not replace the stored measurement (#31)
        raise SystemExit(f"{earlier} holds {len(stored['result']['seeds'])} seeds and this run {len(result['seeds'])}: "
                         "not replaced (--force replaces it)")
    same = stored.get("workload") == " ".join([f"+experiment={experiment}", *args.overrides])
    wall = max(wall, stored.get("wall_seconds", 0.0)) if same else wall
    save(f"frontier{suffix}", {"workload": " ".join([f"+experiment={experiment}", *args.overrides]),
                               "wall_seconds": wall, "result": result,
                               "markdown": (run_dir / "frontier.md").read_text()})
    shutil.copy(run_dir / "frontier.png", ROOT / "docs" / f"frontier_mnist{suffix}.png")
