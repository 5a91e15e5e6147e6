"""The code version recorded in tickets and stage directories."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

from lth_lightning import __version__


@functools.cache
def code_version() -> str:
    """Package version plus the git commit when run from a checkout (``0.1.0+3f2c1ab``)."""
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{__version__}+{sha}" if sha else __version__
