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

from lth_lightning.config import Config, ModelConfig
from lth_lightning.data import build_datamodule
from lth_lightning.errors import UserError
from lth_lightning.pipelines.common import build_trainer, is_rank_zero, make_module, write_json
from lth_lightning.pruning import load_ticket


def _load_checkpoint(path: str) -> dict[str, Any]:
    if not Path(path).is_file():
        raise UserError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)  # plain data only: no pickled code
    except Exception as err:
        raise UserError(f"{path} is not a readable checkpoint ({str(err).splitlines()[0][:120]})") from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise UserError(f"{path} is not a Lightning checkpoint (no state_dict)")
    return ckpt


def _module_for(cfg: Config, info: Any) -> Any:
    if not cfg.ckpt_path:
        return make_module(cfg, info, cfg.seed, load_ticket(cfg.ticket))  # type: ignore[arg-type]
    ckpt = _load_checkpoint(cfg.ckpt_path)
    meta = ckpt.get("lth_meta", {})
    if meta.get("data") and meta["data"] != cfg.data.name:
        raise UserError(f"checkpoint was trained on {meta['data']}; pass data={meta['data']}")
    if meta.get("model"):
        cfg = dataclasses.replace(cfg, model=ModelConfig(**meta["model"]))
    module = make_module(cfg, info, cfg.seed)
    module.on_load_checkpoint(ckpt)
    try:
        module.load_state_dict(ckpt["state_dict"])
    except RuntimeError as err:
        raise UserError(f"checkpoint does not fit model {cfg.model.name}: {str(err).splitlines()[0]}") from None
    return module


def run_eval(cfg: Config) -> dict[str, Any]:
    dm = build_datamodule(cfg.data)
    dm.setup("test")
    module = _module_for(cfg, dm.info)
    loader = dm.val_dataloader() if cfg.eval_split == "val" else dm.test_dataloader()
    trainer = build_trainer(cfg.trainer, Path(cfg.run_dir), 1, [], False)
    metrics = trainer.test(module, dataloaders=loader, verbose=False)[0]
    attack = module.eval_attack
    result = {
        "checkpoint": cfg.ckpt_path or cfg.ticket, "split": cfg.eval_split,
        "sparsity": round(100 * module.masks.sparsity()["overall"], 2),
        "threat_model": {"norm": attack.norm, "eps": attack.eps, "steps": attack.steps,
                         "step_size": attack.step_size, "restarts": cfg.eval.test_restarts,
                         "autoattack": cfg.eval.autoattack},
        "accuracy": {k.removeprefix("test/"): round(float(v) * 100, 2) for k, v in metrics.items()},
    }
    if is_rank_zero():
        write_json(Path(cfg.run_dir) / "eval.json", result)
        print(f"{'metric':20s} {'accuracy %':>10s}")
        for name, value in result["accuracy"].items():
            print(f"{name:20s} {value:10.2f}")
        print(f"(split {cfg.eval_split}, sparsity {result['sparsity']} %, eps {attack.eps:.4g}, "
              f"PGD-{attack.steps} x{cfg.eval.test_restarts}); written {Path(cfg.run_dir) / 'eval.json'}")
    return result
