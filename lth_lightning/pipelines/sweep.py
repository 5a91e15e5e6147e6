"""Aggregating a Hydra multirun: one table (CSV + markdown) and heatmaps over the swept axes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


class AggregateSweep(Callback):
    """Hydra callback: at the end of a multirun, aggregate every job's summary in the sweep dir."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if any(sweep_dir.glob("*/summary.json")):
            from lth_lightning.pipelines.aggregate import aggregate

            aggregate(sweep_dir)
