"""The benchmarked training steps: our Lightning module vs a minimal hand-written PyTorch loop."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from lth_lightning.attacks import Attack
from lth_lightning.callbacks import MaskEnforcer
from lth_lightning.config import AttackConfig, DataConfig, EvalConfig, ModelConfig, OptimConfig
from lth_lightning.data import DataInfo
from lth_lightning.data.datamodule import ImageTensorDataset, TensorBatches
from lth_lightning.models import build_model
from lth_lightning.modules import Classifier
from lth_lightning.pruning import MaskSet, compute_masks, prunable_weights

MNIST_INFO = DataInfo(1, 28, 10, (0.1307,), (0.3081,))
CIFAR_INFO = DataInfo(3, 32, 10, (0.49, 0.48, 0.45), (0.25, 0.24, 0.26))


def synthetic(info: DataInfo, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, info.channels, info.image_size, info.image_size), generator=gen, dtype=torch.uint8)
    return x, torch.randint(0, info.num_classes, (n,), generator=gen)


def pgd_cfg(steps: int, eps: float = 0.3) -> AttackConfig:
    return AttackConfig(name="pgd" if steps else "none", eps=eps, step_size=eps / 4, steps=max(steps, 1))


class StepTimer(L.Callback):
    """Images/s over ``steps`` consecutive full iterations after ``warmup`` (batch start to batch start).

    Trainer setup, the end-of-training epoch hooks and teardown are outside the window, as the
    hand-written loop's setup is: both sides time the same steady-state iterations.
    """

    def __init__(self, warmup: int, steps: int) -> None:
        self.warmup, self.steps, self.start, self.images, self.rate = warmup, steps, 0.0, 0, 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step in (self.warmup, self.warmup + self.steps) and torch.cuda.is_available():
            torch.cuda.synchronize()
        if trainer.global_step == self.warmup:
            self.start = time.perf_counter()
        elif trainer.global_step == self.warmup + self.steps:
            self.rate = self.images / (time.perf_counter() - self.start)
        if self.warmup <= trainer.global_step < self.warmup + self.steps:
            self.images += len(batch[0])


def lightning_rate(model_name: str, info: DataInfo, steps: int, attack_steps: int, batch: int = 128,
                   sparsity: float = 0.0, precision: str = "32-true", channels_last: bool = False,
                   compile_model: bool = False, in_memory: bool = False, warmup: int = 3,
                   accelerator: str = "cpu", channels: dict[str, list[int]] | None = None,
                   cuda_graph: bool = False, eps: float = 0.3, attack: str = "pgd") -> float:
    """Images/s of our Classifier's training step inside a Lightning Trainer (``channels``: compacted to a
    channel ticket's kept channels; on a GPU the data sits there, as ``data.on_device`` has it)."""
    torch.manual_seed(0)
    model_cfg = ModelConfig(name=model_name, channels_last=channels_last, compile=compile_model)
    attack_cfg = pgd_cfg(attack_steps, eps) if attack == "pgd" else AttackConfig(name=attack, eps=eps)
    module = Classifier(asdict(model_cfg), asdict(info), asdict(OptimConfig(schedule="constant")),
                        asdict(attack_cfg), asdict(EvalConfig(val_robust_samples=0)), init_seed=0,
                        channels=channels)
    if sparsity:
        module.masks = MaskSet(compute_masks(prunable_weights(module.model), sparsity, "layer_normalized"))
    module.cuda_graph = cuda_graph
    module.prepare()
    x, y = synthetic(info, batch * (steps + warmup + 1))
    ds = ImageTensorDataset(x, y)
    device = "cuda" if accelerator == "gpu" else "cpu"
    torch.set_float32_matmul_precision("high" if device == "cuda" else "highest")  # as trainer=gpu sets it
    loader: Any = (TensorBatches(ds, batch, shuffle=True, drop_last=True, device=device) if in_memory
                   else DataLoader(ds, batch_size=batch, shuffle=True, drop_last=True))
    timer = StepTimer(warmup, steps)
    trainer = L.Trainer(accelerator=accelerator, devices=1, max_steps=steps + warmup + 1, precision=precision,
                        logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0,
                        callbacks=[MaskEnforcer(), timer])
    trainer.fit(module, train_dataloaders=loader)
    return timer.rate


def kept_channels(model_name: str, info: DataInfo, ratio: float, multiple: int = 1) -> dict[str, list[int]]:
    """A channel ticket's kept indices at ``ratio`` of the channels (each group a multiple of ``multiple``),
    scored on θ0 (speed needs no training)."""
    from lth_lightning.pruning.channels import channel_scores, keep_channels

    model = build_model(ModelConfig(name=model_name), info, seed=0)
    return {k: v.tolist() for k, v in keep_channels(channel_scores(model, info.shape), ratio, multiple).items()}


def step_flops(model_name: str, info: DataInfo, attack_steps: int = 10,
               channels: dict[str, list[int]] | None = None) -> int:
    """FLOPs of one PGD train step per image, counted by FlopCounterMode: ``attack_steps`` forward +
    input-gradient passes, then one forward + full backward (weight gradients too)."""
    from torch.utils.flop_counter import FlopCounterMode

    from lth_lightning.pruning.channels import compact

    model = build_model(ModelConfig(name=model_name), info, seed=0)
    if channels:
        compact(model, info.shape, {k: torch.tensor(v) for k, v in channels.items()})
    x, y = torch.rand(2, *info.shape), torch.tensor([0, 1])
    counter = FlopCounterMode(display=False)
    with counter:
        x_adv = Attack(8 / 255, 2 / 255, attack_steps, bn_mode="train")(model, x, y)
        F.cross_entropy(model(x_adv), y).backward()
    return counter.get_total_flops() // 2


def plain_rate(model_name: str, info: DataInfo, steps: int, batch: int, bf16: bool = True, graph: bool = False,
               warmup: int = 5) -> float:
    """The plainest PGD-10 loop on a GPU (channels_last, optional bf16 autocast, data on the GPU), eager or
    with the whole step -- attack, update, optimizer -- captured as one CUDA graph (PyTorch's recipe)."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(name=model_name), info, seed=0).cuda().to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    attack = Attack(8 / 255, 2 / 255, 10, bn_mode="train")
    x_all, y_all = (t.cuda() for t in synthetic(info, batch * 4))
    x_all = x_all.float() / 255
    static_x, static_y = x_all[:batch].clone(), y_all[:batch].clone()

    def step() -> None:
        with torch.autocast("cuda", torch.bfloat16, enabled=bf16, cache_enabled=False):
            loss = F.cross_entropy(model(attack(model, static_x, static_y)).float(), static_y)
        loss.backward()
        opt.step()

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            opt.zero_grad(set_to_none=True)
            step()
    torch.cuda.current_stream().wait_stream(side)
    run = step
    if graph:
        g = torch.cuda.CUDAGraph()
        opt.zero_grad(set_to_none=True)
        with torch.cuda.graph(g):
            step()
        run = g.replay
    start = 0.0
    for i in range(warmup + steps):
        if i == warmup:
            torch.cuda.synchronize()
            start = time.perf_counter()
        chunk = i % 4
        static_x.copy_(x_all[chunk * batch : (chunk + 1) * batch])
        static_y.copy_(y_all[chunk * batch : (chunk + 1) * batch])
        if not graph:
            opt.zero_grad(set_to_none=True)
        run()
    torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - start)


def handwritten_rate(model_name: str, info: DataInfo, steps: int, attack_steps: int, batch: int = 128,
                     warmup: int = 3, device: str = "cpu") -> float:
    """The same model, attack and optimizer in the plainest PyTorch loop we would write by hand."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(name=model_name), info, seed=0).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    attack = Attack(0.3, 0.075, attack_steps, bn_mode="train") if attack_steps else None
    x, y = synthetic(info, batch * (steps + warmup + 1))
    loader = DataLoader(ImageTensorDataset(x, y), batch_size=batch, shuffle=True, drop_last=True)
    model.train()
    images, start = 0, 0.0
    for i, (xb, yb) in enumerate(loader):  # time iterations warmup .. warmup+steps-1, fetches included
        if i in (warmup, warmup + steps) and device == "cuda":
            torch.cuda.synchronize()
        if i == warmup:
            start = time.perf_counter()
        elif i == warmup + steps:
            break
        xb, yb = xb.to(device), yb.to(device)
        inputs = attack(model, xb, yb) if attack else xb
        loss = F.cross_entropy(model(inputs), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= warmup:
            images += len(xb)
    return images / (time.perf_counter() - start)


def data_cfg() -> DataConfig:
    return DataConfig(name="synthetic", shape=[1, 28, 28])
