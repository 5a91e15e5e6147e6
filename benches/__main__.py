"""python -m benches {overhead,attack,mask,levers,claim,frontier,regime,wong,search,readme_runs,channels,gpu,relevel,
report,all}

One module per bench (``benches/<name>.py``, each with ``run(args)``); this file only parses and dispatches.
Each benchmark interleaves its variants (A/B/A/B...), repeats, and reports medians and median ratios;
results go to benches/results/<name>.json and ``report`` renders docs/benchmarks.md from them.
``all`` runs the CPU benches that take minutes (ALL); frontier, regime, wong and search take hours, gpu needs a GPU.
"""

from __future__ import annotations

import argparse
import importlib

from benches.common import RESULTS, ROOT
from benches.gpu import CIFAR_EXPERIMENTS
from benches.regime import REGIME

BENCHES = ("overhead", "attack", "mask", "levers", "claim", "frontier", "regime", "wong", "search", "readme_runs",
           "channels", "gpu", "relevel")
ALL = ("overhead", "attack", "mask", "levers", "channels", "claim")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benches")
    parser.add_argument("what", choices=[*BENCHES, "report", "all"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="fewer steps (a smoke run, not for reporting)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="claim: seeds (the stored result's)")
    parser.add_argument("--force", action="store_true", help="claim: replace a stored result with fewer seeds")
    parser.add_argument("--cache-dir", default=str(ROOT / "cache"))
    parser.add_argument("--overrides", nargs="*", default=[], help="claim: extra Hydra overrides (a variation)")
    parser.add_argument("--parts", nargs="*", choices=list(REGIME), help="regime: which axes (default: all)")
    parser.add_argument("--experiment", default="",
                        help="frontier / search: the experiment config (default frontier_mnist / search_mnist)")
    parser.add_argument("--tag", default="", help="claim: name of the variation (results/claim_<tag>.json)")
    parser.add_argument("--parts-gpu", nargs="*", choices=["steps", "find", "channels", "smokes"],
                        help="gpu: which parts (default: all)")
    parser.add_argument("--steps", type=int, default=20, help="gpu: timed steps per variant")
    parser.add_argument("--smoke", nargs="*", choices=CIFAR_EXPERIMENTS, help="gpu: which configs (default: all)")
    parser.add_argument("--resume", action="store_true", help="gpu: keep the parts already in results/gpu.json")
    args = parser.parse_args()
    from benches.report import render, render_readme

    for name in ALL if args.what == "all" else [args.what]:
        if name != "report":
            importlib.import_module(f"benches.{name}").run(args)
    print(f"docs written: {render(RESULTS, ROOT / 'docs' / 'benchmarks.md')}, "
          f"{render_readme(RESULTS, ROOT / 'README.md')}")


if __name__ == "__main__":
    main()
