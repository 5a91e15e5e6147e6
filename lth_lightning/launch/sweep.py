"""Hydra callback that keeps a multirun's aggregate table and heatmap up to date."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig


def _aggregate(sweep_dir: str, quiet: bool) -> None:
    path = Path(sweep_dir)
    if path.is_dir() and any(path.glob("*/.hydra")):
        from lth_lightning.reports.aggregate import aggregate

        aggregate(path, quiet=quiet)


class AggregateSweep(Callback):
    """Re-aggregates after every sweep job (files only), and once more at the end of the multirun, printed.

    After every job, because Hydra re-raises a failed job's error before ``on_multirun_end`` runs: the
    files then still hold every finished job, with the failed one marked ``failed``.
    """

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        if config.hydra.mode == RunMode.MULTIRUN:
            _aggregate(config.hydra.sweep.dir, quiet=True)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        _aggregate(config.hydra.sweep.dir, quiet=False)
