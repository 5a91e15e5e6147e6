"""``task=eval``: evaluate a saved checkpoint (or a ticket's weights) without retraining.

``python -m lth_lightning task=eval ckpt_path=<file.ckpt> [eval=full] [eval_split=val]`` prints clean,
PGD-k×restarts and (if enabled) AutoAttack accuracy, and writes ``eval.json`` in the run dir.
The model architecture is read from the checkpoint; the data config must name the same dataset.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from lth_lightning.config import Config
from lth_lightning.data import build_datamodule
from lth_lightning.errors import UserError, first_line
from lth_lightning.io import write_json
from lth_lightning.modules import Classifier
from lth_lightning.pruning import load_ticket
from lth_lightning.results import EvalResult, fmt
from lth_lightning.stages.runner import build_trainer, is_rank_zero, make_module, test_result


def check_checkpoint(path: str) -> None:
    """The checkpoint a command names is there (the CLI asks before Hydra writes anything)."""
    if not Path(path).is_file():
        raise UserError(f"checkpoint {path} does not exist")


def _load_checkpoint(path: str) -> dict[str, Any]:
    check_checkpoint(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)  # plain data only: no pickled code
    except Exception as err:
        raise UserError(f"{path} is not a readable checkpoint ({first_line(err)})") from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise UserError(f"{path} is not a Lightning checkpoint (no state_dict)")
    return ckpt


def _module_for(cfg: Config, info: Any) -> Classifier:
    """The checkpoint's own module, rebuilt from the plain-dict hyperparameters it carries."""
    if not cfg.ckpt_path:
        return make_module(cfg, info, load_ticket(cfg.ticket))  # type: ignore[arg-type]
    ckpt = _load_checkpoint(cfg.ckpt_path)
    hparams = ckpt.get("hyper_parameters")
    if not isinstance(hparams, dict) or "model" not in hparams:
        raise UserError(f"{cfg.ckpt_path} was not written by lth_lightning (no model hyperparameters)")
    if hparams.get("dataset") and hparams["dataset"] != cfg.data.name:
        raise UserError(f"checkpoint was trained on {hparams['dataset']}; pass data={hparams['dataset']}")
    # evaluation settings come from this command (eval=full ...), the rest from the checkpoint
    module = Classifier(**{**hparams, "evaluation": dataclasses.asdict(cfg.eval)})
    module.on_load_checkpoint(ckpt)
    try:
        module.load_state_dict(ckpt["state_dict"])
    except RuntimeError as err:
        raise UserError(f"checkpoint does not fit its model: {first_line(err)}") from None
    return module


def run_eval(cfg: Config) -> EvalResult:
    dm = build_datamodule(cfg.data)
    dm.setup("test")
    module = _module_for(cfg, dm.info)
    loader = dm.val_dataloader() if cfg.eval_split == "val" else dm.test_dataloader()
    trainer = build_trainer(cfg.trainer, Path(cfg.run_dir), 1, [], False)
    metrics = trainer.test(module, dataloaders=loader, verbose=False)[0]
    result = EvalResult(str(cfg.ckpt_path or cfg.ticket), cfg.eval_split,
                        round(100 * module.weight_sparsity, 2), test_result(metrics, module))  # of the full net
    if is_rank_zero():
        write_json(Path(cfg.run_dir) / "eval.json", result)
        t = result.test
        threat = f" [{t.threat.label()}]" if t.threat else ""
        rows = [("clean", t.clean), (f"PGD{threat}", t.robust), ("AutoAttack", t.autoattack)]
        print(f"{'metric':40s} {'accuracy %':>10s}")
        for name, value in rows:
            print(f"{name:40s} {fmt(value):>10s}")
        print(f"(split {cfg.eval_split}, sparsity {result.sparsity} %; – = not measured); "
              f"written {Path(cfg.run_dir) / 'eval.json'}")
    return result
