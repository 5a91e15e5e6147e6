"""``task=fast_ticket``: the boosting-ticket pipeline of Li et al. 2020, end to end.

1. θ0 from the seed.  2. Find: train the dense net from θ0 cheaply (FGSM) at a small constant LR.
3. Prune one-shot (layer-normalised magnitude) and reset survivors (θ0, or θk with ``prune.reset=rewind``):
the ticket.  4. Train the ticket adversarially on the short schedule.  5. Controls: the dense net from θ0
on the full schedule, the ticket's mask on a random re-init, and with ``pipeline.arms`` the controls of
``pruning/controls.py`` (random_mask, random_channels, narrow) on the ticket's schedule.  6. Report the cost
of reaching a target accuracy, per arm and for the whole pipeline (finding included).

Each stage is a ``Stage``: the full config it runs plus the stages it consumes. Its cache directory and
its RNG seed derive from that (``stages/identity.py``), so reruns and sweep jobs reuse exactly the stages whose
inputs did not change, and a stage gives the same result alone, after others, or resumed after a kill.
"""

from __future__ import annotations

from pathlib import Path

from lth_lightning.config import CONTROLS, Config, with_overrides
from lth_lightning.data import build_datamodule
from lth_lightning.reports.summary import build_summary, publish_summary
from lth_lightning.results import StageResult, Summary
from lth_lightning.stages.arms import check, find_ticket, train_arm
from lth_lightning.stages.runner import is_rank_zero


def run_fast_ticket(cfg: Config) -> Summary:
    check(cfg)
    dm = build_datamodule(cfg.data)
    p = cfg.pipeline
    arms: dict[str, StageResult] = {}
    finds: dict[str, StageResult] = {}
    main = [p.find.lr] if any(a != "dense" for a in p.arms) else []
    for lr, is_main in [(lr, True) for lr in main] + [(lr, False) for lr in p.extra_find_lrs]:
        finding = find_ticket(cfg, dm, lr)
        name = "ticket" if is_main else f"ticket@lr{lr:g}"
        finds[name] = finding[1]
        if not is_main or "ticket" in p.arms:
            arms[name] = train_arm(cfg, dm, "ticket", name, finding)
        for control in [a for a in p.arms if is_main and (a == "reinit" or a in CONTROLS)]:
            arms[control] = train_arm(cfg, dm, control, control, finding)
            if control == "reinit":  # it needs the mask, so it pays for the finding, as in the frontier (#31)
                finds[control] = finding[1]
    if "dense" in p.arms:
        dense_cfg = with_overrides(cfg, p.dense_overrides, "pipeline.dense_overrides")  # e.g. an ε ramp
        arms["dense"] = train_arm(dense_cfg, dm, "dense", "dense")
    summary = build_summary(cfg, arms, finds)
    if is_rank_zero():
        publish_summary(cfg, summary, Path(cfg.run_dir))
    return summary
