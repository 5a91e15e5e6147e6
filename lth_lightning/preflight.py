"""Checks on the command line that Hydra would otherwise answer with a traceback or silence.

They run before Hydra composes anything, so a bad option, an unwritable output directory or a
misspelled key gets one ``error:`` line and exit code 2, and nothing already written is touched (the only
side effect is creating the output folder the run would create anyway).
"""

from __future__ import annotations

import dataclasses
import difflib
import tempfile
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from lth_lightning.errors import ConfigError

_RUN_DIRS = ("hydra.run.dir", "hydra.sweep.dir")


def config_groups(conf_dir: str | Path) -> dict[str, list[str]]:
    """Config group name → its option names (``model`` → ``lenet, mlp, ...``), Hydra's own group excluded."""
    root = Path(conf_dir)
    return {d.name: sorted(p.stem for p in d.glob("*.yaml")) for d in sorted(root.iterdir())
            if d.is_dir() and d.name != "hydra"}


def check_groups(overrides: Iterable[str], groups: Mapping[str, list[str]]) -> None:
    """``model=resnet99``: name the group's real options instead of Hydra's multi-line error."""
    for arg in overrides:
        key, sep, value = arg.lstrip("+~").partition("=")
        if key == "hparams_search":  # Hydra's Optuna sweeper pinned Optuna < 3; it was dropped for task=search
            raise ConfigError("hparams_search is gone (Hydra's Optuna sweeper needs Optuna < 3): the recipe search is "
                              "task=search, a multi-objective Optuna study (README: Recipe search)")
        if not sep or key not in groups or value in ("null", ""):
            continue
        for option in value.split(","):  # a multirun sweep lists several
            if option not in groups[key]:
                raise ConfigError(f"{key}={option!r} is unknown; choose one of {', '.join(groups[key])}")


def check_override_keys(overrides: Iterable[str], schema: type, groups: Mapping[str, list[str]]) -> None:
    """``prune.ratoi=0.5`` or ``+prune.ratoi=0.5``: a key the schema lacks, named with the closest real one."""
    for arg in overrides:
        key, sep, _ = arg.lstrip("+~").partition("=")
        group_choice = key in groups or "/" in key  # model=lenet, hydra/launcher=slurm: checked elsewhere
        if not sep or arg.startswith("-") or group_choice or key.startswith("hydra."):
            continue
        node: Any = schema
        for depth, part in enumerate(key.split(".")):
            if not dataclasses.is_dataclass(node):
                break
            hints = typing.get_type_hints(node)
            if part not in hints:
                raise not_a_setting(key, "".join(f"{p}." for p in key.split(".")[:depth]), part, hints)
            node = hints[part]


def check_read(overrides: Iterable[str], unread: Mapping[str, str], task: str) -> None:
    """An override of a setting the task never reads (``Config.unread``) is refused, with what it means."""
    for arg in overrides:
        key, sep, _ = arg.lstrip("+~").partition("=")
        if not sep or arg.startswith("-"):
            continue
        for prefix, why in unread.items():
            if key == prefix or (prefix.endswith(".") and key.startswith(prefix)):
                raise ConfigError(f"{key} is not read by task={task}: {why}")


def writable_dir(path: str | Path, key: str) -> None:
    """Create ``path`` (as the run would) and prove a file can be written there."""
    target = Path(str(path).split("$", 1)[0] or ".")  # the part before any ${...} interpolation
    try:
        target.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target):
            pass
    except OSError as err:
        raise ConfigError(f"{key}={path} is not a writable folder ({err.strerror or err}); "
                          "point it somewhere you can write") from None


def check_output_dirs(overrides: Iterable[str]) -> None:
    """The output folders named on the command line (or ``./outputs``, the default) must be writable."""
    named = {k: v for k, _, v in (a.partition("=") for a in overrides) if k in _RUN_DIRS}
    for key, value in named.items():
        writable_dir(value, key)
    if not named:
        writable_dir(Path.cwd(), "the current folder (outputs/ goes here)")


def check_keys(raw: Mapping[str, Any], schema: type, prefix: str = "") -> None:
    """Every key of the composed config is a field of the schema (``+prune.ratoi=0.5`` is refused)."""
    hints = typing.get_type_hints(schema)
    for key, value in raw.items():
        if key == "hydra" and not prefix:
            continue
        if key not in hints:
            raise not_a_setting(f"{prefix}{key}", prefix, str(key), hints)
        if dataclasses.is_dataclass(hints[key]) and isinstance(value, Mapping):
            check_keys(value, hints[key], f"{prefix}{key}.")


def not_a_setting(name: str, prefix: str, part: str, fields: Iterable[str]) -> ConfigError:
    """``name`` is not in the schema; suggest the field under ``prefix`` closest to ``part``."""
    close = difflib.get_close_matches(part, list(fields), n=1)
    return ConfigError(f"{name} is not a setting" + (f"; did you mean {prefix}{close[0]}?" if close else ""))
