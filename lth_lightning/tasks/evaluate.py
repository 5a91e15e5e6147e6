"""``task=eval``: evaluate a saved checkpoint (or a ticket's weights) without retraining.

``python -m lth_lightning task=eval ckpt_path=<file.ckpt> [eval=full] [eval_split=val]`` prints clean,
PGD-k×restarts and (if enabled) AutoAttack accuracy, and writes ``eval.json`` in the run dir.
The model architecture is read from the checkpoint; the data config must name the same dataset.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch

from lth_lightning.config import Config
from lth_lightning.data import build_datamodule
from lth_lightning.errors import UserError, first_line
from lth_lightning.io import write_json
from lth_lightning.modules import Classifier
from lth_lightning.pruning import load_ticket
from lth_lightning.results import EvalResult, ThreatModel, fmt
from lth_lightning.stages.runner import build_trainer, is_rank_zero, make_module, test_result


def check_checkpoint(path: str) -> None:
    """The checkpoint a command names is a readable Lightning checkpoint (the CLI asks before Hydra writes anything:
    a corrupt file once left a run folder behind). Memory-mapped, so a large checkpoint is not read twice."""
    _load_checkpoint(path, mmap=True)


def _load_checkpoint(path: str, mmap: bool = False) -> dict[str, Any]:
    if not Path(path).is_file():
        raise UserError(f"checkpoint {path} does not exist")
    try:  # plain data only: no pickled code
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
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
    dataset = cfg.data._target_ or cfg.data.name
    if isinstance(hparams, dict) and hparams.get("dataset") and hparams["dataset"] != dataset:
        key = "data._target_" if "." in hparams["dataset"] else "data"  # a factory's dotted path, or a dataset name
        raise UserError(f"checkpoint was trained on {hparams['dataset']}; pass {key}={hparams['dataset']}")
    # evaluation settings come from this command (eval=full ...), the rest from the checkpoint
    return load_checkpoint_module(cfg.ckpt_path, dataclasses.asdict(cfg.eval), ckpt)


def load_checkpoint_module(path: str, evaluation: dict[str, Any], ckpt: dict[str, Any] | None = None) -> Classifier:
    """A checkpoint's module, rebuilt from its own plain-dict hyperparameters, with ``evaluation`` settings
    (``ckpt``: the file already read)."""
    ckpt = ckpt if ckpt is not None else _load_checkpoint(path)
    hparams = ckpt.get("hyper_parameters")
    if not isinstance(hparams, dict) or "model" not in hparams:
        raise UserError(f"{path} was not written by lth_lightning (no model hyperparameters)")
    module = Classifier(**{**hparams, "evaluation": evaluation})
    module.on_load_checkpoint(ckpt)
    try:
        module.load_state_dict(ckpt["state_dict"])
    except RuntimeError as err:
        raise UserError(f"checkpoint does not fit its model: {first_line(err)}") from None
    return module


@torch.no_grad()
def strong_eval(path: str, images: torch.Tensor, labels: torch.Tensor, steps: int, restarts: int,
                step: float | None = None) -> tuple[float, float, str]:
    """Clean and robust accuracy (%) of a checkpoint on fixed images under PGD-``steps`` × ``restarts`` at the
    checkpoint's own threat model (ε from its training attack, ``step`` or 2.5 ε / steps as Madry et al.'s, eval-mode
    BatchNorm); an image counts as robust only if every restart fails. Seeded: a rerun gives the same number.
    Returns (clean, robust, the threat model's label). The result is written beside the checkpoint's stage once."""
    name = f"{Path(path).stem}_pgd{steps}x{restarts}{f'_step{step:g}' if step else ''}_n{len(images)}.json"
    record = Path(path).parent.parent / name
    if record.exists():
        done = json.loads(record.read_text())
        return done["clean"], done["robust"], done["threat"]
    module = load_checkpoint_module(path, {})
    model = module.model.eval()
    base = module.eval_attack
    attack = dataclasses.replace(base, steps=steps, step_size=step or 2.5 * base.eps / steps)
    clean = robust = 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        for x, y in zip(images.split(500), labels.split(500), strict=True):
            correct = model(x).argmax(1) == y
            clean += int(correct.sum())
            for _ in range(restarts):
                correct &= model(attack(model, x, y)).argmax(1) == y
            robust += int(correct.sum())
    threat = ThreatModel(attack.norm, attack.eps, steps, restarts).label()
    out = (round(100 * clean / len(images), 2), round(100 * robust / len(images), 2), threat)
    write_json(record, {"clean": out[0], "robust": out[1], "threat": threat})
    return out


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
