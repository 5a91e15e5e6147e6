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


def _train(graph: bool, precision: str, noisy: bool = False) -> tuple[Classifier, dict[str, torch.Tensor]]:
    """vgg11 with an 80 % mask, PGD-3, 12 steps. ``noisy``: the random start and an ε ramp over the first 8 steps
    on (fresh noise per replay, the ramp's scale read under the graph); else neither, so both paths see the same
    attack."""
    attack = AttackConfig(name="pgd", eps=8 / 255, step_size=2 / 255, steps=3, random_start=noisy,
                          eps_warmup_epochs=8 / STEPS if noisy else 0.0)
    module = Classifier(asdict(ModelConfig(name="vgg11", channels_last=True)), asdict(INFO),
                        asdict(OptimConfig(lr=0.05, schedule="constant")), asdict(attack),
                        asdict(EvalConfig(val_robust_samples=0)), init_seed=0)
    module.masks = MaskSet(compute_masks(prunable_weights(module.model), 0.8, "layer_normalized"))
    module.masks.apply_(module.model)
    start = {k: v.detach().clone() for k, v in module.model.named_parameters()}  # trainable weights only
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
    torch.manual_seed(0)
    trainer.fit(module, train_dataloaders=loader)
    return module, start


def _apart(a: Classifier, b: Classifier, start: dict[str, torch.Tensor]) -> tuple[float, float]:
    """How far ``a``'s trainable weights moved from ``start``, and how far ``b``'s are from ``a``'s (BatchNorm's
    running statistics and step counters are buffers, left out: they made the tolerance meaningless)."""
    pa = {k: v.detach().cpu().float() for k, v in a.model.named_parameters()}
    pb = {k: v.detach().cpu().float() for k, v in b.model.named_parameters()}
    moved = sum(float((pa[k] - start[k].cpu().float()).norm() ** 2) for k in pa) ** 0.5
    return moved, sum(float((pa[k] - pb[k]).norm() ** 2) for k in pa) ** 0.5


@pytest.mark.parametrize("precision", ["bf16-mixed", "32-true"])
def test_graphed_steps_train_the_weights_eager_steps_do(precision):
    eager, start = _train(False, precision)
    graphed, _ = _train(True, precision)
    assert eager._graphed is None and graphed._graphed is not None
    assert graphed._graphed.replays == STEPS - GraphedStep.WARMUP  # really replayed, every batch once
    moved, apart = _apart(eager, graphed, start)
    assert moved > 0 and apart / moved < (2e-2 if precision == "bf16-mixed" else 1e-3), (apart, moved)
    weights = dict(graphed.model.named_parameters())
    for name, mask in graphed.masks.items():  # pruned weights exactly zero after every replayed step
        pruned = weights[name].detach().cpu()[~mask.bool().cpu()]
        assert pruned.numel() == 0 or float(pruned.abs().max()) == 0.0, name


def test_graphed_steps_with_random_start_and_ramp_train_as_eager_ones():
    """Random starts draw other numbers under the graph than eagerly, so the two runs are compared as training
    runs (how far they moved, how far apart they end), not bit for bit; the ramp ends at the full ε in both."""
    eager, start = _train(False, "32-true", noisy=True)
    graphed, _ = _train(True, "32-true", noisy=True)
    assert graphed._graphed is not None and graphed._graphed.replays == STEPS - GraphedStep.WARMUP
    assert eager.train_eps == graphed.train_eps == pytest.approx(8 / 255)
    moved, apart = _apart(eager, graphed, start)
    moved_graphed, _ = _apart(graphed, eager, start)
    assert 0.8 < moved_graphed / moved < 1.25 and apart / moved < 0.5, (moved, moved_graphed, apart)


def test_each_replay_draws_fresh_noise_and_reads_the_ramp():
    """The graph's RNG gives every replay new numbers, and a scale tensor set in place between replays (the ε
    ramp's) is what the replay reads."""
    p = torch.nn.Parameter(torch.ones((), device="cuda"))
    scale = torch.ones((), device="cuda")

    def loss_fn(x, y):
        noise = torch.rand(8, device="cuda")
        return (p * scale * (x.sum() + noise.sum())), x

    step = GraphedStep(loss_fn, [p])
    x, y = torch.zeros(4, device="cuda"), torch.zeros(4, device="cuda")
    grads = []
    for i in range(GraphedStep.WARMUP + 3):
        scale.fill_(1.0 if i < GraphedStep.WARMUP + 2 else 0.0)
        step(x, y)
        grads.append(float(p.grad))
    assert step.replays == 3
    replayed = grads[GraphedStep.WARMUP:]
    assert replayed[0] != replayed[1] and all(0 < g < 8 for g in replayed[:2])  # fresh noise, sums of 8 U(0, 1)
    assert replayed[2] == 0.0  # the scale set before the replay


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
