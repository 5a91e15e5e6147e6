"""Small file helpers shared by tickets, stage results and report tables."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any


def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """``write`` a temp file beside ``path``, then rename: a killed run never leaves a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    write(tmp)
    os.replace(tmp, path)
    return path


def write_json(path: Path, payload: Any) -> None:
    """Atomic JSON write of a typed result (a dataclass) or plain data."""
    data = dataclasses.asdict(payload) if dataclasses.is_dataclass(payload) else payload  # type: ignore[arg-type]
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(data, indent=2, default=str)))


def write_table(rows: list[dict[str, Any]], stem: Path) -> str:
    """Rows as ``<stem>.csv`` and a markdown ``<stem>.md`` (columns: union of keys, in first-seen order).

    Returns the markdown; missing and None cells are left empty.
    """
    columns = list(dict.fromkeys(k for r in rows for k in r))
    with open(stem.with_suffix(".csv"), "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join("" if r.get(c) is None else str(r[c]) for c in columns) + " |" for r in rows]
    markdown = "\n".join(lines) + "\n"
    stem.with_suffix(".md").write_text(markdown)
    return markdown
