"""Shared fixtures. ``import lth_lightning`` first: it makes torchvision importable on CPU-only torch."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

import lth_lightning  # noqa: F401  (must precede lightning/torchmetrics/torchvision imports)
from lth_lightning.cli import CONF_DIR
from lth_lightning.config import Config, validate

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
# one thread a process under pytest-xdist (make test: -n 2 on 2 cores; two 2-thread OpenMP processes spin-wait), else
# 2; LTH_TEST_THREADS=1 beside a running science job
torch.set_num_threads(int(os.environ.get("LTH_TEST_THREADS", "1" if os.environ.get("PYTEST_XDIST_WORKER") else "2")))

# Small, fast defaults for every test run: no progress bar, no robust-val subset beyond one batch.
FAST = [
    "trainer.enable_progress_bar=false",
    "trainer.accelerator=cpu",
    "eval.val_robust_samples=64",
    "eval.autoattack=off",
]


def compose_cfg(overrides: list[str], tmp_path: Path) -> DictConfig:
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("config", overrides=[*overrides, f"run_dir={tmp_path}"])
    return cfg


@pytest.fixture
def make_cfg(tmp_path: Path):
    """Compose and validate a config (as the CLI does), rooted at a temp run dir and cache."""

    def factory(*overrides: str, fast: bool = True) -> Config:
        extra = [*FAST] if fast else []
        raw = compose_cfg([*extra, f"pipeline.cache_dir={tmp_path / 'cache'}", *overrides], tmp_path)
        return validate(raw)

    return factory


def assert_png(path: Path, min_side: int = 200) -> None:
    """``path`` is a PNG image of a real plot: the signature, and an IHDR of at least ``min_side`` pixels a side."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", path
    width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    assert min(width, height) >= min_side, (path, width, height)
