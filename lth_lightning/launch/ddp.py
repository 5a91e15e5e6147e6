"""DDP under Hydra without duplicate runs or output dirs.

Lightning starts ranks 1..N-1 by re-running the parent's command line with ``hydra.run.dir`` pointed at
the run dir. Under ``-m`` (multirun) that replays the *sweep*: every child would launch all jobs again,
and ``hydra.run.dir`` is not the job's directory (``hydra.sweep.dir/<num>``) anyway -- the known
Lightning+Hydra-template trap. We rebuild the child command from the job's own resolved overrides,
in run mode, writing into the job's output directory, with no second ``.hydra`` config dump.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def child_command(local_rank: int) -> tuple[Sequence[str], str]:
    """The command and cwd for DDP rank ``local_rank`` of the current Hydra job."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import get_original_cwd

    hc = HydraConfig.get()
    overrides = [o for o in hc.overrides.task if not o.startswith("hydra.")]
    command = [sys.executable, "-m", "lth_lightning", *overrides,
               f"hydra.run.dir={hc.runtime.output_dir}", "hydra.output_subdir=null",
               f"hydra.job.name={hc.job.name}_rank{local_rank}", "hydra.callbacks={}"]
    return command, get_original_cwd()


def install_hydra_ddp_fix() -> None:
    """Route Lightning's child-process command through ``child_command`` (both launcher modules)."""
    from lightning.fabric.strategies.launchers import subprocess_script as fabric_launcher
    from lightning.pytorch.strategies.launchers import subprocess_script as pl_launcher

    fabric_launcher._hydra_subprocess_cmd = child_command  # type: ignore[assignment]
    pl_launcher._hydra_subprocess_cmd = child_command  # type: ignore[assignment]
