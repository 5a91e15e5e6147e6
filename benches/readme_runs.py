"""``python -m benches readme_runs``: the two digits commands the README quotes, stored so the README renders them.

``make run`` (``+experiment=frontier``) and ``+experiment=fast_ticket`` at their defaults (both pin one CPU thread,
so a fresh clone computes the same numbers): results/make_run.json holds the frontier, results/fast_ticket.json the
summary; ``python -m benches report`` writes the README's make-run block from them (#31).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from benches.common import ROOT, save

RUNS = {"make_run": "frontier", "fast_ticket": "fast_ticket"}  # stored name -> experiment
FILES = {"make_run": "frontier.json", "fast_ticket": "summary.json"}


def run(args) -> None:
    """11. make run's frontier and the fast_ticket summary on the bundled digits, as the README quotes them."""
    for name, experiment in RUNS.items():
        run_dir = ROOT / "outputs" / f"bench_{name}"
        cmd = [sys.executable, "-m", "lth_lightning", f"+experiment={experiment}",
               f"pipeline.cache_dir={args.cache_dir}", f"hydra.run.dir={run_dir}"]
        print(" ".join(cmd), flush=True)
        started = time.time()
        subprocess.run(cmd, check=True, cwd=ROOT)
        store(name, json.loads((run_dir / FILES[name]).read_text()), round(time.time() - started, 1))


def store(name: str, result: dict, seconds: float) -> None:
    save(name, {"workload": f"python -m lth_lightning +experiment={RUNS[name]}", "wall_seconds": seconds,
                "result": result}, echo=False)
