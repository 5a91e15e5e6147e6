"""A report's files in its run dir: the typed result as JSON, the markdown (also printed), the plot."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from lth_lightning.io import write_json


def write_report(run_dir: Path, stem: str, result: object, markdown: str,
                 plot: Callable[[Path], Path], png_name: str) -> Path:
    """``<stem>.json`` + ``<stem>.md`` + the plot in the run dir, the markdown printed; returns the plot."""
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / f"{stem}.json", result)
    (run_dir / f"{stem}.md").write_text(markdown)
    png = plot(run_dir / png_name)
    print(markdown)
    print(f"written: {run_dir / f'{stem}.md'}, {run_dir / f'{stem}.json'}, {png}")
    return png
