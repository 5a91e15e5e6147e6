"""A small typed Python API: the CLI's configs, stages and cache, called from a script or a notebook.

Every function runs exactly what the command line runs (the same validated ``Config``, the same cached stages under
``pipeline.cache_dir``), so a ticket found here is the one ``python -m lth_lightning +experiment=...`` reuses and vice
versa. ``docs/api.md`` shows it in use; a test executes that page.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from lth_lightning.config import Config
from lth_lightning.data import ImageDataModule, build_datamodule
from lth_lightning.errors import UserError
from lth_lightning.pruning import Ticket, load_ticket
from lth_lightning.results import EvalResult, FrontierResult, StageResult, Summary, read_json
from lth_lightning.stages import arms
from lth_lightning.stages.identity import Stage


def compose(*overrides: str, experiment: str | None = None, run_dir: str | Path = ".") -> Config:
    """The validated config the CLI would run for ``overrides`` (Hydra's syntax: ``"prune.ratio=0.5"``), from
    ``conf/`` and an optional experiment; reports go to ``run_dir``. Bad input raises ``ConfigError`` with the CLI's
    one-line message."""
    from lth_lightning.cli import compose_and_validate

    args = [*([f"experiment={experiment}"] if experiment else []), *overrides]
    cfg = compose_and_validate(args, str(run_dir))
    assert cfg is not None  # only a multirun (-m) composes nothing here
    return cfg


@dataclass(frozen=True)
class Finding:
    """A finding stage and what it wrote: ``ticket`` (mask + reset weights) at ``ticket_path``."""

    stage: Stage
    result: StageResult
    ticket_path: Path

    @property
    def ticket(self) -> Ticket:
        return load_ticket(self.ticket_path)


def data(cfg: Config) -> ImageDataModule:
    """The data module a config trains on (pass it to several calls to build it once)."""
    return build_datamodule(cfg.data)


def find_ticket(cfg: Config, dm: ImageDataModule | None = None, lr: float | None = None) -> Finding:
    """fast_ticket's finding stage (cached): train cheaply at ``lr`` (default ``pipeline.find.lr``), prune one-shot,
    reset. ``cfg`` needs ``prune=oneshot``."""
    arms.check(dataclasses.replace(cfg, task="fast_ticket"))
    stage, result = arms.find_ticket(cfg, dm or data(cfg), lr if lr is not None else cfg.pipeline.find.lr)
    if not result.ticket:
        raise UserError(f"finding stage {stage.identity} wrote no ticket")
    return Finding(stage, result, Path(result.ticket))


def train_arm(cfg: Config, arm: str, finding: Finding | None = None, dm: ImageDataModule | None = None) -> StageResult:
    """One arm (``dense``, ``ticket``, ``reinit`` or a control) as a cached stage, on the ticket arm's schedule
    (``pipeline.ticket_epochs``; dense: ``pipeline.dense_epochs``). Every arm but dense needs ``finding``."""
    if arm != "dense" and finding is None:
        raise UserError(f"arm {arm!r} trains from a finding: pass finding=find_ticket(cfg)")
    pair = (finding.stage, finding.result) if finding is not None else None
    return arms.train_arm(cfg, dm or data(cfg), arm, arm, pair)


def run_frontier(cfg: Config) -> FrontierResult:
    """``task=frontier``: every arm at every budget, LR and seed (cached), its report written to ``cfg.run_dir``."""
    from lth_lightning.tasks.frontier import run_frontier as run

    return run(dataclasses.replace(cfg, task="frontier"))


RESULT_FILES = {"result.json": StageResult, "summary.json": Summary, "frontier.json": FrontierResult,
                "eval.json": EvalResult}


def read_result(path: str | Path) -> StageResult | Summary | FrontierResult | EvalResult:
    """A stored result as its typed dataclass, by file name (a stage's result.json, fast_ticket's summary.json, a
    frontier.json, an eval.json), or the one such file in a run folder."""
    path = Path(path)
    if path.is_dir():
        found = [path / name for name in RESULT_FILES if (path / name).is_file()]
        if len(found) != 1:
            raise UserError(f"{path} holds {len(found)} result files ({', '.join(RESULT_FILES)}): name one")
        path = found[0]
    if path.name not in RESULT_FILES:
        raise UserError(f"{path.name} is not a result file ({', '.join(RESULT_FILES)})")
    try:
        return read_json(RESULT_FILES[path.name], path)
    except (OSError, json.JSONDecodeError, TypeError, KeyError) as err:
        raise UserError(f"{path} is not a readable {path.name} ({err})") from None
