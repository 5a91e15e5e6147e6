"""``task=fast_ticket``: the boosting-ticket pipeline of Li et al. 2020, end to end.

1. θ0 from the seed.  2. Find: train the dense net from θ0 cheaply (FGSM) at a small constant LR.
3. Prune one-shot (layer-normalised magnitude) and reset survivors to θ0: the ticket.
4. Train the ticket adversarially on the short schedule.  5. Controls: the dense net from θ0 on the full
schedule, and the ticket's mask on a random re-init.  6. Report the cost of reaching a target robust
accuracy, per arm and for the whole pipeline (finding included).

Every stage is cached under ``pipeline.cache_dir`` by the hash of the config that determines it
(see ``cache.py``): reruns and sweep jobs reuse finished stages and resume interrupted ones.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict
from pathlib import Path
from typing import Any

from lth_lightning.callbacks import PruneCallback
from lth_lightning.config import Config, ConfigError
from lth_lightning.data import ImageDataModule, build_datamodule
from lth_lightning.models import build_model
from lth_lightning.pipelines.cache import stage_dir, stage_identity
from lth_lightning.pipelines.common import is_rank_zero, make_module, run_stage
from lth_lightning.pipelines.imp import provenance
from lth_lightning.pipelines.report import build_summary, publish_summary
from lth_lightning.pruning import Ticket, load_ticket, save_ticket
from lth_lightning.pruning.reset import snapshot


def find_config(cfg: Config, lr: float) -> Config:
    """The ticket-finding variant: cheap attack, small constant LR, no warmup."""
    find = cfg.pipeline.find
    optim = dataclasses.replace(cfg.optim, lr=lr, schedule=find.schedule, warmup_epochs=0.0)
    attack = dataclasses.replace(cfg.attack, name=find.attack, step_size=None)
    if find.attack == "pgd":
        attack = dataclasses.replace(attack, step_size=cfg.attack.step_size)
    return dataclasses.replace(cfg, optim=optim, attack=attack)


def find_ticket(cfg: Config, dm: ImageDataModule, lr: float) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    """Stages 1-3. Returns the ticket file, the finding stage's result (its cost ledger) and its identity."""
    find_cfg = find_config(cfg, lr)
    find = asdict(dataclasses.replace(cfg.pipeline.find, lr=lr))
    ident = stage_identity(cfg, "find", find=find)
    out = stage_dir(cfg.pipeline.cache_dir, ident)
    ticket_path = out / "ticket.pt"
    theta0 = snapshot(build_model(cfg.model, dm.info, seed=cfg.seed))
    pruner = PruneCallback(cfg.prune, cfg.prune.ratio, lambda: theta0,
                           lambda: build_model(cfg.model, dm.info, seed=cfg.prune.reinit_seed))

    def write_ticket(module) -> dict[str, Any]:
        if is_rank_zero():
            prov = provenance(cfg, sparsity=cfg.prune.ratio, lr=lr, epochs=find["epochs"],
                              attack=find["attack"], found_by="fast_ticket")
            save_ticket(ticket_path, Ticket(module.masks.as_dict(), snapshot(module.model), prov))
        return {"ticket": str(ticket_path)}

    module = make_module(find_cfg, dm.info, cfg.seed)
    result = run_stage(find_cfg, f"find@lr{lr:g}", out, module, dm, cfg.pipeline.find.epochs, [pruner],
                       test=False, after_fit=write_ticket)
    return ticket_path, result, ident


def train_arm(cfg: Config, dm: ImageDataModule, arm: str, ticket_path: Path | None,
              find_ident: dict[str, Any] | None) -> dict[str, Any]:
    """Stages 4-5: one training arm (ticket, reinit or dense) in its cached directory."""
    p = cfg.pipeline
    epochs = p.dense_epochs if arm == "dense" else p.ticket_epochs
    extra: dict[str, Any] = {"epochs": epochs}
    if arm != "dense":
        extra["ticket_from"] = find_ident
    if arm == "reinit":
        extra["reinit_seed"] = cfg.prune.reinit_seed
    out = stage_dir(p.cache_dir, stage_identity(cfg, "dense" if arm == "dense" else arm, **extra))
    ticket = load_ticket(ticket_path) if ticket_path is not None else None
    reinit_seed = cfg.prune.reinit_seed if arm == "reinit" else None
    module = make_module(cfg, dm.info, cfg.seed, ticket, reinit_seed=reinit_seed)
    result = run_stage(cfg, arm, out, module, dm, epochs)
    result["dir"] = str(out)
    return result


def run_fast_ticket(cfg: Config) -> dict[str, Any]:
    if cfg.prune.name != "oneshot":
        raise ConfigError(f"task=fast_ticket prunes one-shot; got prune={cfg.prune.name} (use prune=oneshot)")
    if cfg.attack.name == "none" and cfg.pipeline.find.attack != "none":
        raise ConfigError("attack=none trains arms naturally; set pipeline.find.attack=none to match")
    dm = build_datamodule(cfg.data)
    arms: dict[str, dict[str, Any]] = {}
    finds: dict[str, dict[str, Any]] = {}
    main = [cfg.pipeline.find.lr] if any(a in cfg.pipeline.arms for a in ("ticket", "reinit")) else []
    for lr, is_main in [(lr, True) for lr in main] + [(lr, False) for lr in cfg.pipeline.extra_find_lrs]:
        ticket_path, found, find_ident = find_ticket(cfg, dm, lr)
        name = "ticket" if is_main else f"ticket@lr{lr:g}"
        finds[name] = found
        if not is_main or "ticket" in cfg.pipeline.arms:
            arms[name] = train_arm(cfg, dm, "ticket", ticket_path, find_ident)
        if is_main and "reinit" in cfg.pipeline.arms:
            arms["reinit"] = train_arm(cfg, dm, "reinit", ticket_path, find_ident)
    if "dense" in cfg.pipeline.arms:
        arms["dense"] = train_arm(cfg, dm, "dense", None, None)
    summary = build_summary(cfg, arms, finds)
    if is_rank_zero():
        publish_summary(cfg, summary, Path(cfg.run_dir))
    return summary
