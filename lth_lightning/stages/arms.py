"""Building the stages every task trains: the finding stage that writes a ticket, and the training arms.

A task (fast_ticket, the frontier) decides which arms exist and how their configs differ; this module turns
each into a ``Stage`` -- the full config the stage runs plus the stages it consumes -- and runs it in its
cached directory. The finding stage is cheap (FGSM) training at a small constant LR with no ε ramp, ending
in the one-shot prune (``prune_step``); ticket arms consume its ticket, ``reinit`` only its mask.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from pathlib import Path

import lightning as L
import torch
from torch import nn

from lth_lightning.callbacks import EarlyBird
from lth_lightning.config import CONTROLS, Config, ConfigError, PipelineConfig, PruneConfig
from lth_lightning.data import DataInfo, ImageDataModule
from lth_lightning.errors import TicketError, first_line
from lth_lightning.models import build_model
from lth_lightning.preflight import writable_dir
from lth_lightning.pruning import MaskSet, Ticket, load_ticket
from lth_lightning.pruning.controls import control_ticket, default_init
from lth_lightning.pruning.reset import snapshot
from lth_lightning.results import StageResult
from lth_lightning.stages.identity import Stage, cached_dir
from lth_lightning.stages.prune_step import prune_step
from lth_lightning.stages.runner import make_module, run_stage


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
    ratio = cfg.attack.step_ratio if find.attack == cfg.attack.name else None  # a step is its own attack's only
    attack = dataclasses.replace(cfg.attack, name=find.attack, step_size=step, step_ratio=ratio,
                                 eps_warmup_epochs=0.0, switch_at=1.0)  # no ramp, no hand-over to PGD
    # the finding settings that shape the run beyond optim/attack (early-bird stopping) stay in its config
    pipeline = PipelineConfig(find=dataclasses.replace(find, lr=lr))
    return Stage("find", _stage_config(cfg, find.epochs, optim=optim, attack=attack, pipeline=pipeline))


def arm_stage(cfg: Config, arm: str, find: Stage | None) -> Stage:
    """A training arm. Ticket arms consume the finding stage's ticket; ``reinit`` keeps only its mask; a control
    (``CONTROLS``) keeps what it is named for (``prune.control``) and trains on the ticket's schedule."""
    epochs = cfg.pipeline.dense_epochs if arm == "dense" else cfg.pipeline.ticket_epochs
    prune = PruneConfig(name="none", reset="reinit" if arm == "reinit" else "init",
                        reinit_seed=cfg.prune.reinit_seed, control=arm if arm in CONTROLS else "none")
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
    result = prune_step(stage, out, module, dm, target=cfg.prune.cut, theta0=theta0,
                         rewind_path=out / "rewind.pt", ticket_path=out / "ticket.pt", level=1, first_run=True,
                         test=False, name=f"find@lr{lr:g}", early_bird=bird, found_by="fast_ticket")
    return stage, result


def train_arm(cfg: Config, dm: ImageDataModule, arm: str, name: str,
              finding: tuple[Stage, StageResult] | None = None, callbacks: Sequence[L.Callback] = ()) -> StageResult:
    """Stages 4-5: one training arm in its cached directory. ``callbacks`` watch it (the search's pruner): they may
    stop it with an exception, which leaves the stage unfinished and resumable, never a shorter finished one."""
    stage = arm_stage(cfg, arm, finding[0] if finding else None)
    out = cached_dir(stage, cfg.pipeline.cache_dir)
    ticket = load_ticket(finding[1].ticket) if finding and finding[1].ticket else None
    control, seed = stage.cfg.prune.control, 0
    if finding is not None and ticket is not None and control != "none":
        seed = control_seed(finding[0], control)
        full = build_model(stage.cfg.model, dm.info)
        source = unmasked_source(finding[0], ticket, full, dm.info, Path(finding[1].ticket).parent)
        ticket = control_ticket(ticket, control, full, dm.info.shape, seed, source)
    module = make_module(stage.cfg, dm.info, ticket)
    if control == "narrow":
        default_init(module.model, seed)
    return run_stage(stage, out, module, dm, name, callbacks)


def control_seed(find: Stage, control: str) -> int:
    """A control's draws: one per finding and control, so every budget and LR of a seed trains the same control
    net (as they train the same ticket); the finding's identity holds the seed and everything the ticket depends on."""
    return int(hashlib.sha256(f"{find.identity}/{control}".encode()).hexdigest()[:8], 16)


def unmasked_source(find: Stage, ticket: Ticket, full: nn.Module, info: DataInfo,
                    find_dir: Path) -> dict[str, torch.Tensor]:
    """The state the ticket's survivors were reset to, before its mask zeroed the rest: θ0 of the finding's seed
    (``prune.reset=init``) or its θk snapshot (``rewind``). A control's kept units come from here, so a channel or
    weight the ticket removed starts at its θ0 value, not at the 0 the ticket file holds. Checked against the
    ticket: this state under the ticket's mask must be the ticket's weights, bit for bit."""
    reset = find.cfg.prune.reset
    if reset == "init":
        source = snapshot(build_model(find.cfg.model, info, seed=find.cfg.seed))
    elif reset == "rewind":
        source = torch.load(find_dir / "rewind.pt", map_location="cpu", weights_only=True)
    else:
        raise TicketError(f"controls draw from the state a ticket was reset to; prune.reset={reset} has none to "
                          "draw from (use reset=init or rewind)")
    full.load_state_dict(source)
    MaskSet(ticket.masks).apply_(full)
    if any(not torch.equal(v, ticket.weights[k]) for k, v in full.state_dict().items()):
        raise TicketError(f"the finding's {reset} state under the ticket's mask is not the ticket's weights: the "
                          "ticket was not found by this finding stage (or the model code changed since)")
    return source


def check(cfg: Config) -> None:
    """What a pipeline that finds one-shot tickets needs, refused before any training."""
    if cfg.prune.name != "oneshot":
        raise ConfigError(f"task={cfg.task} prunes one-shot; got prune={cfg.prune.name} (use prune=oneshot)")
    if cfg.attack.name == "none" and cfg.pipeline.find.attack != "none":
        raise ConfigError("attack=none trains arms naturally; set pipeline.find.attack=none to match")
    sc = cfg.search
    if cfg.task == "search" and cfg.model._target_ and set(sc.space.width) != {1.0}:
        raise ConfigError(f"search.space.width={sc.space.width} scales this package's models; model._target_="
                          f"{cfg.model._target_} builds its own net: set search.space.width=[1.0]")
    if cfg.task == "search":
        _check_search(cfg)
    if cfg.task == "search" and sc.confirm and cfg.seed in sc.confirm_seeds:
        raise ConfigError(f"search.confirm_seeds={sc.confirm_seeds} holds the search's own seed={cfg.seed}: a "
                          "confirmation needs fresh seeds")
    cfg.target_metric()  # a target that is never measured fails now, not after hours of training
    writable_dir(cfg.pipeline.cache_dir, "pipeline.cache_dir")




def check_model(cfg: Config) -> None:
    """A network or data of your own (``model._target_``, ``data._target_``) is built and read once before anything
    trains: a path that does not import, a factory that fails, images outside [0, 1], a net that does not take the
    data's images or gives another number of classes are one line; so is a channel ticket on a graph torch-pruning
    cannot trace."""
    from lth_lightning.data import build_datamodule
    from lth_lightning.pruning.channels import groups

    info = build_datamodule(cfg.data).info  # data of your own is read here once (the task reads it again)
    model = build_model(cfg.model, info, seed=cfg.seed)
    try:
        with torch.no_grad():
            out = model.eval()(torch.zeros(2, *info.shape))
    except Exception as err:
        raise ConfigError(f"model._target_={cfg.model._target_ or cfg.model.name} does not take this data's "
                          f"{tuple(info.shape)} images ({type(err).__name__}: {first_line(err)})") from None
    if tuple(out.shape) != (2, info.num_classes):
        raise ConfigError(f"model._target_={cfg.model._target_ or cfg.model.name} gives {tuple(out.shape[1:])} "
                          f"outputs an image; this data has {info.num_classes} classes")
    channel = cfg.prune.structure == "channel" or "channel" in cfg.frontier.structures or (
        cfg.task == "search" and "channel" in cfg.search.space.ticket)
    if channel and cfg.task in ("fast_ticket", "frontier", "search"):
        try:
            groups(model, info.shape)
        except Exception as err:
            why = str(err).splitlines()[0] if str(err) else ""
            raise ConfigError(f"a channel ticket needs torch-pruning to trace model._target_={cfg.model._target_}, "
                              f"and it cannot ({type(err).__name__}: {why}); use prune.structure=unstructured"
                              ) from None


def _check_search(cfg: Config) -> None:
    """What a search's trials would only find out after the study has run for a while."""
    p, find, tc = cfg.prune, cfg.pipeline.find, cfg.trainer
    if "rewind" in cfg.search.space.reset and p.rewind_step is None and p.rewind_epoch > find.epochs:
        raise ConfigError(f"search.space.reset holds rewind, to prune.rewind_epoch={p.rewind_epoch}, after the finding "
                          f"ends (pipeline.find.epochs={find.epochs}): rewind within it, or leave rewind out")
    if tc.num_nodes > 1 or str(tc.devices) not in ("1", "auto") or "ddp" in tc.strategy:
        raise ConfigError("task=search runs its study in one process: trainer.devices=1 (several GPUs: run several "
                          "searches with their own search.sampler_seed, or a frontier of the recipes found)")
