"""Command-line entry: ``python -m lth_lightning`` / ``lth-lightning`` (Hydra, config dir ``conf/``)."""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

import lth_lightning  # noqa: F401  (torchvision compatibility before lightning is imported)
from lth_lightning.config import Config, register_schema, validate
from lth_lightning.errors import ConfigError, UserError
from lth_lightning.preflight import check_groups, check_output_dirs, check_override_keys, check_read, config_groups

CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")
register_schema()


_NOISE = ("GPU available", "TPU available", "HPU available", "Loading `train_dataloader`", "Restoring states from",
          "Loaded model weights from", "`Trainer.fit` stopped", "💡")  # Lightning's per-stage chatter


def _quiet_logging() -> None:
    """Hydra's root handler already prints and files Lightning's records: drop Lightning's own
    console handlers (else every line prints twice), its advertising tip and a third-party deprecation."""
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        log = logging.getLogger(name)
        for handler in list(log.handlers):
            log.removeHandler(handler)
        log.propagate = True
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logging.getLogger(name).addFilter(lambda record: not record.getMessage().startswith(_NOISE)
                                          and "litlogger" not in record.getMessage())
    warnings.filterwarnings("ignore", message=".*treespec, LeafSpec.*")


def run(raw: DictConfig) -> object:
    """Validate, seed, dispatch on ``task``. Returns the task's result (for Optuna: a float)."""
    import lightning as L

    _quiet_logging()
    cfg = validate(raw)
    check_accelerator(cfg.trainer.accelerator)
    if "ddp" in cfg.trainer.strategy and HydraConfig.initialized():
        from lth_lightning.launch.ddp import install_hydra_ddp_fix

        install_hydra_ddp_fix()
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    if cfg.task == "fast_ticket":
        from lth_lightning.tasks.fast_ticket import run_fast_ticket

        return run_fast_ticket(cfg)
    if cfg.task == "frontier":
        from lth_lightning.tasks.frontier import run_frontier

        return run_frontier(cfg)
    if cfg.task == "search":
        from lth_lightning.tasks.search import run_search

        return run_search(cfg)
    if cfg.task == "eval":
        from lth_lightning.tasks.evaluate import run_eval

        return run_eval(cfg)
    from lth_lightning.tasks.train import run_train

    return run_train(cfg)


def check_accelerator(accelerator: str) -> None:
    """A GPU asked for on a machine without one: one line that says how to run on the CPU instead."""
    import torch

    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ConfigError(f"trainer.accelerator={accelerator} but this machine has no CUDA GPU: use trainer=cpu "
                          "(or trainer=default, which picks what is there)")


def pick_metric(result: object, path: str) -> float:
    """``arms.ticket.best_val_robust`` → that number in the task's result (what Optuna maximises)."""
    from lth_lightning.results import to_json

    value = to_json(result)
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            raise ConfigError(f"optimized_metric={path!r}: no '{part}' in the task's result")
        value = value[part]
    if not isinstance(value, int | float):
        raise ConfigError(f"optimized_metric={path!r} is not a number ({value!r})")
    return float(value)


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def _hydra_main(raw: DictConfig) -> object:
    try:
        result = run(raw)
        metric = raw.get("optimized_metric")
        return pick_metric(result, metric) if metric else result
    except UserError as err:  # one clear line, exit 2; files already written are left alone
        print(f"error: {err}", file=sys.stderr)
        if HydraConfig.get().mode == RunMode.MULTIRUN:  # the other jobs run; the sweep exits 2 at its end
            FAILED_JOBS.append(f"job {HydraConfig.get().job.num} ({' '.join(HydraConfig.get().overrides.task)})")
            return None
        sys.exit(2)


FAILED_JOBS: list[str] = []  # a multirun's jobs refused with an error line (the in-process launcher's)
SLOTS = ("experiment",)  # defaults-list slots that are null unless chosen
DICT_SETTINGS = ("frontier.baselines", "frontier.ticket_variants")  # name -> overrides


def normalize_argv(argv: list[str]) -> list[str]:
    """Accept ``+experiment=x`` as well as ``experiment=x``: both pick the option for the null slot.

    Hydra refuses the ``+`` form once a slot exists ("Multiple values for experiment"); users coming from
    the lightning-hydra-template type it either way. ``task=search`` as the whole command runs ``+experiment=search``
    (its standard recipe is an adversarially trained net; the defaults train naturally); with more settings and no
    experiment, ``check_search_experiment`` refuses it rather than load the digits experiment under them.
    """
    argv = [a[1:] if any(a.startswith(f"+{slot}=") for slot in SLOTS) else a for a in argv]
    if [a for a in argv if not a.startswith("hydra.")] == ["task=search"]:  # the README's command: the digits
        argv = ["experiment=search", *argv]  # search (its standard recipe trains with PGD)
    # named variant sets are dicts Hydra keeps in struct mode: a new name needs its force-add form
    named = (*(f"{k}=" for k in DICT_SETTINGS), "model.args.", "data.args.")  # model.args.width=8: a factory's
    return [f"++{a}" if a.startswith(named) else a for a in argv]


def compose_and_validate(args: list[str], run_dir: str = ".") -> Config | None:
    """The config this command runs, composed and validated before Hydra writes anything (``.hydra/``, the log):
    a bad value is one line, and an output folder holds only runs that started. A multirun composes each job
    in its own process (None here: each job validates itself)."""
    if any(a in ("-m", "--multirun") for a in args):
        return None
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from lth_lightning.errors import first_line

    plain = [a for a in args if not a.lstrip("+~").startswith(("hydra.", "hydra/"))]
    try:
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            raw = compose("config", overrides=[*plain, f"run_dir={run_dir}"])  # the CLI's: Hydra's, set as it runs
    except (HydraException, OmegaConfBaseException) as err:
        cause = err.__cause__ or err
        raise ConfigError(f"{first_line(err)}: {first_line(cause)}" if cause is not err else first_line(err)) from None
    return validate(raw)


def check_search_experiment(args: list[str]) -> None:
    """``task=search`` with settings of one's own and no experiment: the defaults train naturally (attack=none), so
    the search's standard recipe would be a natural net; say which experiment to start from instead of guessing."""
    own = [a for a in args if not a.startswith("hydra.")]
    if "task=search" in own and len(own) > 1 and not any(a.startswith("experiment=") for a in own):
        raise ConfigError("task=search starts from a search experiment: +experiment=search (digits), search_mnist or "
                          "search_cifar10, then your settings on top (python -m lth_lightning task=search alone runs "
                          "the digits one)")


def check_files(cfg: Config) -> None:
    """The ticket and checkpoint a command names are readable files of the right kind (nothing runs yet)."""
    if cfg.ticket:
        from lth_lightning.pruning import load_ticket

        load_ticket(cfg.ticket)
    if cfg.ckpt_path:
        from lth_lightning.tasks.evaluate import check_checkpoint

        check_checkpoint(cfg.ckpt_path)
    check_accelerator(cfg.trainer.accelerator)  # before Hydra makes the run folder, not only inside it
    if cfg.model._target_ or cfg.data._target_:
        from lth_lightning.stages.arms import check_model

        check_model(cfg)


def main() -> None:
    if sys.argv[1:2] == ["tickets"]:  # a plain subcommand, not a Hydra run
        from lth_lightning.pruning.cli import main as tickets_main

        sys.exit(tickets_main(sys.argv[2:]))
    args = normalize_argv(sys.argv[1:])
    try:  # what Hydra would answer with a traceback: one line and exit 2 instead
        groups = config_groups(CONF_DIR)
        check_search_experiment(args)
        check_groups(args, groups)
        check_override_keys(args, Config, groups)
        if not any(a.startswith(("--help", "-h", "--cfg", "-c", "--info", "--hydra-help")) for a in args):
            check_output_dirs(args)
            composed = compose_and_validate(args)
            if composed is not None:
                from lth_lightning.data.sources import check_present

                check_read(args, composed.unread(), composed.task)
                if not composed.data._target_:  # data of your own is read by check_model
                    check_present(composed.data.name, composed.data.root, composed.data.download)
                check_files(composed)
                if composed.task in ("fast_ticket", "frontier", "search"):
                    from lth_lightning.stages.arms import check

                    check(composed)  # one-shot pruning, a target that is measured, a writable cache
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    sys.argv = [sys.argv[0], *args]
    _hydra_main()
    if FAILED_JOBS:  # one line for the sweep, no traceback: each job said why above
        print(f"error: {len(FAILED_JOBS)} job(s) of the multirun failed: {'; '.join(FAILED_JOBS)}", file=sys.stderr)
        sys.exit(2)
