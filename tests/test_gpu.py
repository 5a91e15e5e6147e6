"""On a CUDA GPU (skipped elsewhere; run by ``python -m benches gpu``'s device script): the graphed train
step computes what the eager step does, keeps pruned weights exactly zero, and a killed graphed run resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict

import lightning as L
import pytest
import torch

from lth_lightning.callbacks import MaskEnforcer
from lth_lightning.config import AttackConfig, EvalConfig, ModelConfig, OptimConfig
from lth_lightning.data import DataInfo
from lth_lightning.data.datamodule import ImageTensorDataset, TensorBatches
from lth_lightning.modules import Classifier
from lth_lightning.modules.graphed import GraphedStep
from lth_lightning.pruning import MaskSet, compute_masks, prunable_weights

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

INFO = DataInfo(3, 32, 10, (0.49, 0.48, 0.45), (0.25, 0.24, 0.26))
STEPS = 12


def _train(graph: bool, precision: str) -> tuple[Classifier, dict[str, torch.Tensor]]:
    """vgg11 with an 80 % mask, PGD-3 without random start (so both paths see the same attack), 12 steps."""
    attack = AttackConfig(name="pgd", eps=8 / 255, step_size=2 / 255, steps=3, random_start=False)
    module = Classifier(asdict(ModelConfig(name="vgg11", channels_last=True)), asdict(INFO),
                        asdict(OptimConfig(lr=0.05, schedule="constant")), asdict(attack),
                        asdict(EvalConfig(val_robust_samples=0)), init_seed=0)
    module.masks = MaskSet(compute_masks(prunable_weights(module.model), 0.8, "layer_normalized"))
    module.masks.apply_(module.model)
    start = {k: v.detach().clone() for k, v in module.model.state_dict().items()}
    module.cuda_graph = graph
    module.prepare()
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (STEPS * 64, 3, 32, 32), generator=gen, dtype=torch.uint8)
    loader = TensorBatches(ImageTensorDataset(x, torch.randint(0, 10, (len(x),), generator=gen)), 64,
                           shuffle=False, drop_last=True, device="cuda")
    trainer = L.Trainer(accelerator="gpu", devices=1, max_steps=STEPS, precision=precision, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        limit_val_batches=0, callbacks=[MaskEnforcer()],
                        deterministic="warn")  # deterministic cuDNN: PGD's sign() would amplify atomic-add noise
    trainer.fit(module, train_dataloaders=loader)
    return module, start


@pytest.mark.parametrize("precision", ["bf16-mixed", "32-true"])
def test_graphed_steps_train_the_weights_eager_steps_do(precision):
    eager, start = _train(False, precision)
    graphed, _ = _train(True, precision)
    assert eager._graphed is None and graphed._graphed is not None
    assert graphed._graphed.replays == STEPS - GraphedStep.WARMUP  # really replayed, every batch once
    a, b = eager.model.state_dict(), graphed.model.state_dict()  # both back on the CPU after fit's teardown
    moved = sum(float((a[k].float() - start[k].float()).norm() ** 2) for k in a) ** 0.5
    apart = sum(float((a[k].float() - b[k].float()).norm() ** 2) for k in a) ** 0.5
    assert moved > 0 and apart / moved < (2e-2 if precision == "bf16-mixed" else 1e-3), (apart, moved)
    weights = dict(graphed.model.named_parameters())
    for name, mask in graphed.masks.items():  # pruned weights exactly zero after every replayed step
        pruned = weights[name].detach().cpu()[~mask.bool().cpu()]
        assert pruned.numel() == 0 or float(pruned.abs().max()) == 0.0, name


def test_killed_graphed_run_resumes(tmp_path):
    """SIGKILL a trainer=gpu run after its first checkpoint; the rerun resumes, replays, and finishes."""
    args = [sys.executable, "-m", "lth_lightning", "trainer=gpu", "data=synthetic", "data.synthetic_size=8192",
            "model=vgg11", "attack=pgd", "attack.eps=0.03", "attack.steps=3", "trainer.max_epochs=6",
            "eval.val_robust_samples=64", "trainer.enable_progress_bar=false", f"hydra.run.dir={tmp_path / 'run'}",
            f"pipeline.cache_dir={tmp_path / 'cache'}"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, last = time.time() + 240, None
    while time.time() < deadline and proc.poll() is None and last is None:
        last = next(iter((tmp_path / "run").rglob("last.ckpt")), None)
        time.sleep(0.05)
    assert last is not None, "never checkpointed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    rerun = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "resuming from" in rerun.stdout + rerun.stderr
    result = json.loads(next((tmp_path / "run").rglob("result.json")).read_text())
    assert [h["epoch"] for h in result["history"]] == list(range(1, 7))
