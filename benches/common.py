"""Shared benchmark plumbing: a fixed small workload, interleaved A/B timing, result files."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

import lth_lightning  # noqa: F401  (torchvision shim before lightning)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benches" / "results"
DATA_ROOT = os.environ.get("LTH_DATA_ROOT", str(ROOT.parent / "shared" / "data"))  # byte-exact MNIST lives here


def machine() -> dict[str, Any]:
    info = {"python": platform.python_version(), "torch": torch.__version__, "threads": torch.get_num_threads(),
            "cpu": platform.processor() or platform.machine(), "date": datetime.now(UTC).strftime("%Y-%m-%d")}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def interleaved(variants: dict[str, Callable[[], float]], repeats: int) -> dict[str, list[float]]:
    """Run each variant once per round, alternating order, ``repeats`` rounds: drift hits all alike."""
    out: dict[str, list[float]] = {k: [] for k in variants}
    names = list(variants)
    for r in range(repeats):
        for name in names if r % 2 == 0 else reversed(names):
            out[name].append(variants[name]())
    return out


def summarize(samples: dict[str, list[float]], baseline: str) -> dict[str, Any]:
    """Median images/s per variant and each variant's median ratio to ``baseline`` (per-round ratios)."""
    base = samples[baseline]
    return {name: {"median": statistics.median(vals), "samples": [round(v, 1) for v in vals],
                   "ratio": statistics.median(v / b for v, b in zip(vals, base, strict=True))}
            for name, vals in samples.items()}


def save(name: str, payload: dict[str, Any], echo: bool = True) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=2))
    if echo:
        print(json.dumps(payload, indent=2))
    return path


def timed(fn: Callable[[], int]) -> float:
    """Images per second of ``fn`` (which returns how many images it processed)."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    images = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return images / (time.perf_counter() - start)
