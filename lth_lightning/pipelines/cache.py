"""Stage identities: a stage's directory is named by a hash of exactly the config that determines it.

Two runs (or sweep jobs) asking for the same dense baseline or the same ticket get the same directory,
so the second one reuses the first one's result (open_lth style). Presentation-only settings
(progress bar, logging cadence, threads, logger) are left out of the hash.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from lth_lightning.config import Config

_PRESENTATION = ("enable_progress_bar", "log_every_n_steps", "num_threads", "max_epochs")


def _common(cfg: Config) -> dict[str, Any]:
    data = {k: v for k, v in asdict(cfg.data).items() if k not in ("num_workers", "root", "download")}
    trainer = {k: v for k, v in asdict(cfg.trainer).items() if k not in _PRESENTATION}
    model = {k: v for k, v in asdict(cfg.model).items() if k != "compile"}
    return {"seed": cfg.seed, "data": data, "model": model, "trainer": trainer, "eval": asdict(cfg.eval)}


def stage_identity(cfg: Config, kind: str, **extra: Any) -> dict[str, Any]:
    """What determines a stage of ``kind`` (find | ticket | dense | reinit)."""
    ident: dict[str, Any] = {"kind": kind, **_common(cfg)}
    if kind == "find":
        ident.update(find=extra.pop("find"), prune=asdict(cfg.prune), attack_eps=cfg.attack.eps,
                     optim={k: v for k, v in asdict(cfg.optim).items() if k in ("name", "momentum",
                                                                                 "weight_decay", "nesterov")})
    else:
        ident.update(optim=asdict(cfg.optim), attack=asdict(cfg.attack))
    ident.update(extra)
    return ident


def stage_dir(cache_dir: str | Path, ident: dict[str, Any]) -> Path:
    digest = hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:12]
    path = Path(cache_dir) / f"{ident['kind']}-{digest}"
    path.mkdir(parents=True, exist_ok=True)
    ident_file = path / "identity.json"
    if not ident_file.exists():
        ident_file.write_text(json.dumps(ident, indent=2, sort_keys=True, default=str))
    return path
