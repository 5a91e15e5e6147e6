"""``task=fast_ticket``: the boosting-ticket pipeline of Li et al. 2020, end to end.

1. θ0 from the seed.  2. Find: train the dense net from θ0 cheaply (FGSM) at a small constant LR.
3. Prune one-shot (layer-normalised magnitude) and reset survivors (θ0, or θk with ``prune.reset=rewind``):
the ticket.  4. Train the ticket adversarially on the short schedule.  5. Controls: the dense net from θ0
on the full schedule, and the ticket's mask on a random re-init.  6. Report the cost of reaching a target
accuracy, per arm and for the whole pipeline (finding included).

Each stage is a ``Stage``: the full config it runs plus the stages it consumes. Its cache directory and
its RNG seed derive from that (``stages.py``), so reruns and sweep jobs reuse exactly the stages whose
inputs did not change, and a stage gives the same result alone, after others, or resumed after a kill.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from lth_lightning.callbacks import EarlyBird
from lth_lightning.config import Config, ConfigError, PipelineConfig, PruneConfig, with_overrides
from lth_lightning.data import ImageDataModule, build_datamodule
from lth_lightning.pipelines.level import prune_level
from lth_lightning.pipelines.report import build_summary, publish_summary, target_metric
from lth_lightning.pipelines.runner import is_rank_zero, make_module, run_stage
from lth_lightning.pipelines.stages import Stage, cached_dir
from lth_lightning.preflight import writable_dir
from lth_lightning.pruning import load_ticket
from lth_lightning.pruning.reset import snapshot
from lth_lightning.results import StageResult, Summary


def _stage_config(cfg: Config, epochs: int, **sections: object) -> Config:
    """A stage runs plain training: its epochs in ``trainer.max_epochs``, no pipeline of its own unless
    ``sections`` give one."""
    trainer = dataclasses.replace(cfg.trainer, max_epochs=epochs)
    sections.setdefault("pipeline", PipelineConfig())
    return dataclasses.replace(cfg, task="train", ticket=None, trainer=trainer, **sections)  # type: ignore[arg-type]


def find_stage(cfg: Config, lr: float) -> Stage:
    """Finding: the cheap attack at a small constant LR, no warmup, ending in the one-shot prune."""
    find = cfg.pipeline.find
    optim = dataclasses.replace(cfg.optim, lr=lr, schedule=find.schedule, warmup_epochs=0.0)
    step = cfg.attack.step_size if find.attack == "pgd" else None  # FGSM's step is ε, FGSM-RS's 1.25ε
    attack = dataclasses.replace(cfg.attack, name=find.attack, step_size=step, eps_warmup_epochs=0.0)  # no ramp
    # the finding settings that shape the run beyond optim/attack (early-bird stopping) stay in its config
    pipeline = PipelineConfig(find=dataclasses.replace(find, lr=lr))
    return Stage("find", _stage_config(cfg, find.epochs, optim=optim, attack=attack, pipeline=pipeline))


def arm_stage(cfg: Config, arm: str, find: Stage | None) -> Stage:
    """A training arm. Ticket arms consume the finding stage's ticket; ``reinit`` keeps only its mask."""
    epochs = cfg.pipeline.dense_epochs if arm == "dense" else cfg.pipeline.ticket_epochs
    prune = PruneConfig(name="none", reset="reinit" if arm == "reinit" else "init",
                        reinit_seed=cfg.prune.reinit_seed)
    inputs = (find.identity,) if find is not None and arm != "dense" else ()
    return Stage(arm, _stage_config(cfg, epochs, prune=prune), inputs)


def find_ticket(cfg: Config, dm: ImageDataModule, lr: float) -> tuple[Stage, StageResult]:
    """Stages 1-3: the finding stage and its result (``result.ticket`` is the ticket file)."""
    stage = find_stage(cfg, lr)
    out = cached_dir(stage, cfg.pipeline.cache_dir)
    module = make_module(stage.cfg, dm.info)
    theta0 = snapshot(module.model)  # the module starts at θ0 of cfg.seed (a resumed fit loads later)
    find = stage.cfg.pipeline.find
    bird = EarlyBird(find, cfg.prune, cfg.prune.cut) if find.stop == "early_bird" else None
    result = prune_level(stage, out, module, dm, target=cfg.prune.cut, theta0=theta0,
                         rewind_path=out / "rewind.pt", ticket_path=out / "ticket.pt", level=1, first_run=True,
                         test=False, name=f"find@lr{lr:g}", early_bird=bird, found_by="fast_ticket")
    return stage, result


def train_arm(cfg: Config, dm: ImageDataModule, arm: str, name: str,
              found: tuple[Stage, StageResult] | None = None) -> StageResult:
    """Stages 4-5: one training arm in its cached directory."""
    stage = arm_stage(cfg, arm, found[0] if found else None)
    out = cached_dir(stage, cfg.pipeline.cache_dir)
    ticket = load_ticket(found[1].ticket) if found and found[1].ticket else None
    return run_stage(stage, out, make_module(stage.cfg, dm.info, ticket), dm, name)


def check(cfg: Config) -> None:
    if cfg.prune.name != "oneshot":
        raise ConfigError(f"task=fast_ticket prunes one-shot; got prune={cfg.prune.name} (use prune=oneshot)")
    if cfg.attack.name == "none" and cfg.pipeline.find.attack != "none":
        raise ConfigError("attack=none trains arms naturally; set pipeline.find.attack=none to match")
    target_metric(cfg)  # a target that is never measured fails now, not after hours of training
    writable_dir(cfg.pipeline.cache_dir, "pipeline.cache_dir")


def run_fast_ticket(cfg: Config) -> Summary:
    check(cfg)
    dm = build_datamodule(cfg.data)
    p = cfg.pipeline
    arms: dict[str, StageResult] = {}
    finds: dict[str, StageResult] = {}
    main = [p.find.lr] if any(a in p.arms for a in ("ticket", "reinit")) else []
    for lr, is_main in [(lr, True) for lr in main] + [(lr, False) for lr in p.extra_find_lrs]:
        found = find_ticket(cfg, dm, lr)
        name = "ticket" if is_main else f"ticket@lr{lr:g}"
        finds[name] = found[1]
        if not is_main or "ticket" in p.arms:
            arms[name] = train_arm(cfg, dm, "ticket", name, found)
        if is_main and "reinit" in p.arms:
            arms["reinit"] = train_arm(cfg, dm, "reinit", "reinit", found)
    if "dense" in p.arms:
        dense_cfg = with_overrides(cfg, p.dense_overrides, "pipeline.dense_overrides")  # e.g. an ε ramp
        arms["dense"] = train_arm(dense_cfg, dm, "dense", "dense")
    summary = build_summary(cfg, arms, finds)
    if is_rank_zero():
        publish_summary(cfg, summary, Path(cfg.run_dir))
    return summary
