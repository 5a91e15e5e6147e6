"""Stage identities: a cached stage is a pure function of the config it runs and the stages it consumes.

A ``Stage`` holds the full typed ``Config`` the stage actually runs (its epochs in
``trainer.max_epochs``, its own optimiser and attack, the pruning it does at its end) plus the
identities of the stages whose output it consumes (the finding stage that wrote its ticket). Its
identity is a hash of that config, minus

- fields marked ``NO_EFFECT`` in ``config.py`` (paths, loggers, progress bars, task plumbing; the CPU thread count
  is in, resolved: ``cpu_threads``),
- fields the current setting ignores (each config section's ``unused()``: PGD steps under FGSM,
  milestones under a constant schedule, the re-init seed when nothing is re-initialised, ...).

So a change that alters what a stage computes changes its directory, and a change that does not,
reuses it. The identity also seeds every RNG at the stage's start (``seed``), which makes a stage's
result independent of what ran before it in the same process (open_lth's design).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only

from lth_lightning.config import Config
from lth_lightning.errors import ConfigError
from lth_lightning.io import write_json
from lth_lightning.version import code_version


def identity_view(obj: Any) -> Any:
    """The part of a config that determines results, as plain JSON-able data."""
    if dataclasses.is_dataclass(obj):
        skip = obj.unused() if hasattr(obj, "unused") else set()
        return {f.name: identity_view(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                if f.metadata.get("identity", True) and f.name not in skip}
    if isinstance(obj, list | tuple):
        return [identity_view(v) for v in obj]
    return obj


# How a DataLoader-fed stage draws randomness. 2: each epoch's order from its own generator (data.epoch_order), so
# the loader takes nothing from the global RNG the attacks' random starts use; under 1 a DataLoader drew from it,
# and persistent workers drew less from epoch 2 on (issue #27). The same config computes other numbers under 2, so
# every DataLoader stage cached under 1 is invalid: the revision is part of its identity. In-memory batches always
# drew from their own generator, with the same formula: their stages and identities are unchanged.
LOADER_RNG = 2

# How a control arm (``prune.control``) is drawn. 2: its kept units take their values from the unmasked θ0 (or θk)
# and its draw is seeded by the finding and the control's name, the same for every budget and LR of a seed (issue
# #30). Under 1 they came from the ticket's masked weights -- every unit the ticket cut started at 0 and stayed dead --
# and were drawn anew per stage. The same config trains another net under 2, so every control stage cached under 1
# is invalid: the revision is part of a control stage's identity (other stages are unchanged).
CONTROL_DRAW = 2


def cpu_threads(cfg: Config) -> int | None:
    """The CPU thread count a stage computes with, resolved (``trainer.num_threads``, else torch's current count), when
    it trains on the CPU: float sums run in another order on another count, so 1 and 2 threads train different
    weights (#31) and a cache must not serve one count's result to the other. None on an accelerator."""
    accelerator = cfg.trainer.accelerator
    if accelerator not in ("cpu", "auto") or (accelerator == "auto" and torch.cuda.is_available()):
        return None
    return cfg.trainer.num_threads or torch.get_num_threads()


@dataclass(frozen=True)
class Stage:
    """One unit of cached work: ``kind`` (find, ticket, reinit, dense, level) run with ``cfg``."""

    kind: str
    cfg: Config
    inputs: tuple[str, ...] = field(default=())  # identities of the stages it consumes

    @property
    def description(self) -> dict[str, Any]:
        revision: dict[str, int] = {} if self.cfg.data.in_memory else {"loader_rng": LOADER_RNG}
        if self.cfg.prune.control != "none":
            revision["control_draw"] = CONTROL_DRAW
        threads = cpu_threads(self.cfg)
        if threads is not None:
            revision["cpu_threads"] = threads
        return {"kind": self.kind, "config": identity_view(self.cfg), "inputs": list(self.inputs), **revision}

    @property
    def identity(self) -> str:
        blob = json.dumps(self.description, sort_keys=True, default=str)
        return f"{self.kind}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"

    @property
    def seed(self) -> int:
        """Every RNG is seeded from this at the stage's start: same stage, same stream, whatever ran before."""
        return int(self.identity.rsplit("-", 1)[1][:8], 16)

    @property
    def epochs(self) -> int:
        return self.cfg.trainer.max_epochs


def claim_dir(stage: Stage, directory: Path) -> Path:
    """Create (or check) ``directory`` for ``stage``: ``stage.json`` records its identity and code version.

    A directory made for another identity is refused (a run dir reused with another config); one made by
    other code is reused, and the log says so.
    """
    directory.mkdir(parents=True, exist_ok=True)
    record = directory / "stage.json"
    if record.exists():
        made = json.loads(record.read_text())
        if made.get("identity") != stage.identity:
            raise ConfigError(f"{directory} holds stage {made.get('identity')} of another config; "
                              "use a fresh hydra.run.dir (or delete that directory)")
        if made.get("code_version") != code_version():
            rank_zero_info(f"[{stage.kind}] {directory} was made by code {made.get('code_version')} "
                           f"(this is {code_version()})")
        return directory
    if rank_zero_only.rank == 0:
        write_json(record, {"identity": stage.identity, "code_version": code_version(), **stage.description})
    return directory


def cached_dir(stage: Stage, cache_dir: str | Path) -> Path:
    """The stage's directory in the shared cache, named by its identity."""
    return claim_dir(stage, Path(cache_dir) / stage.identity)
