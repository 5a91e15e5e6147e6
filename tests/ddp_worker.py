"""Run a tiny fast_ticket under 2-process CPU DDP and dump every rank's weights and masks per stage.

Launched by test_ddp.py as ``python tests/ddp_worker.py OUT_DIR [OVERRIDE ...]``; Lightning re-runs this script for
rank 1, so both ranks execute the whole pipeline, as with ``trainer=ddp``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

import lth_lightning  # noqa: F401
from lth_lightning.cli import CONF_DIR
from lth_lightning.config import validate
from lth_lightning.stages import arms, prune_step
from lth_lightning.tasks import fast_ticket


def main(out: Path, extra: list[str]) -> None:
    overrides = ["experiment=fast_ticket", "trainer=ddp_sim", "trainer.enable_progress_bar=false",
                 "pipeline.find.epochs=3", "pipeline.find.stop=early_bird", "pipeline.find.window=2",
                 # early-bird settles at the 2nd check: both ranks must stop there
                 "pipeline.find.threshold=1.0", "pipeline.ticket_epochs=1", "pipeline.dense_epochs=1",
                 "trainer.limit_train_batches=3", "trainer.limit_test_batches=1", "eval.autoattack=off",
                 "eval.val_robust_samples=64", "attack.steps=2", f"pipeline.cache_dir={out / 'cache'}",
                 f"run_dir={out / 'run'}", *extra]
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = validate(compose("config", overrides=overrides))
    rank = int(os.environ.get("LOCAL_RANK", 0))
    original = arms.run_stage

    def dumping_stage(stage, out_dir, module, dm, name=None, *args, **kwargs):
        result = original(stage, out_dir, module, dm, name, *args, **kwargs)
        state = {"weights": {k: v.cpu() for k, v in module.model.state_dict().items()},
                 "masks": module.masks.as_dict(), "ledger": {"passes": module.ledger.passes},
                 "epochs": len(module.history)}
        torch.save(state, out / f"rank{rank}_{name or stage.kind}.pt")
        return result

    arms.run_stage = dumping_stage
    prune_step.run_stage = dumping_stage  # the finding stage runs through the shared prune step
    fast_ticket.run_fast_ticket(cfg)


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2:])
