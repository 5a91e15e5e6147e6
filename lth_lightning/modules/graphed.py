"""The adversarial train step captured once as a CUDA graph and replayed for every batch.

Why: at CIFAR batch sizes a PGD-10 step is 11 forward/backward passes of a few hundred small kernels
each. Launched one by one from Python, the GPU waits on the CPU (about 5 % of an H200 busy at batch 128).
Replayed as one graph, the whole attack + forward + backward is one launch. The optimizer step, mask
enforcement, metrics and the LR schedule stay eager -- a handful of foreach launches that overlap the next
replay -- so Lightning's loop, hooks, schedulers and checkpoints keep their meaning unchanged.

What a capture needs, and how it is met:
- fixed shapes and addresses: each batch is copied into static input buffers; a batch of another size
  runs the same function eagerly;
- warm-up before capture (cuDNN/cuBLAS handles, autotuning): the first ``WARMUP`` batches run the same
  function eagerly on a side stream -- every batch is trained on exactly once;
- gradients: each replay writes fresh gradients into the graph's own buffers, which become the
  parameters' ``.grad`` (the module skips ``zero_grad`` and ``backward`` while graphed);
- autocast's weight-cast cache is off during capture (a cached cast would freeze a stale weight copy);
- RNG (PGD's random start) is graph-safe in torch: each replay draws new numbers;
- capture errors are thread-local: a pin-memory thread (DataLoader workers, data on the host) may run CUDA
  calls during a capture without breaking it;
- no gradient accumulation: a replay overwrites the static gradient buffers, so gradients summed over
  several batches would keep only the last (``graph_blocker`` refuses it).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

StepFn = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]  # (x, y) -> (loss, logits)


class GraphedStep:
    """``step(x, y) -> (loss, logits)`` with the parameters' gradients set, from a replayed CUDA graph."""

    WARMUP = 3

    def __init__(self, loss_fn: StepFn, params: list[nn.Parameter]) -> None:
        self.loss_fn, self.params = loss_fn, params
        self.graph: torch.cuda.CUDAGraph | None = None
        self.eager_steps = 0
        self.replays = 0
        self._static: tuple[torch.Tensor, ...] = ()

    def _forward_backward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
        loss, logits = self.loss_fn(x, y)
        grads = torch.autograd.grad(loss, self.params, allow_unused=True)  # unused: None, as .grad
        return (loss.detach(), logits.detach(), *grads)

    def _set_grads(self, grads: tuple[torch.Tensor, ...]) -> None:
        for param, grad in zip(self.params, grads, strict=True):
            param.grad = grad

    def _eager(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            loss, logits, *grads = self._forward_backward(x, y)
        torch.cuda.current_stream().wait_stream(side)
        self._set_grads(tuple(grads))
        self.eager_steps += 1
        return loss, logits

    def _capture(self, x: torch.Tensor, y: torch.Tensor) -> None:
        static_x, static_y = x.clone(), y.clone()
        graph = torch.cuda.CUDAGraph()
        enabled, dtype = torch.is_autocast_enabled("cuda"), torch.get_autocast_dtype("cuda")
        torch.cuda.synchronize()
        with torch.cuda.graph(graph, capture_error_mode="thread_local"), \
                torch.autocast("cuda", dtype=dtype, enabled=enabled, cache_enabled=False):
            outputs = self._forward_backward(static_x, static_y)
        self.graph, self._static = graph, (static_x, static_y, *outputs)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.graph is None and self.eager_steps < self.WARMUP:
            return self._eager(x, y)
        if self.graph is None:
            self._capture(x, y)
        static_x, static_y, loss, logits, *grads = self._static
        if x.shape != static_x.shape:  # e.g. a last partial batch: the same function, eagerly
            return self._eager(x, y)
        static_x.copy_(x)
        static_y.copy_(y)
        self.graph.replay()  # type: ignore[union-attr]
        self._set_grads(tuple(grads))
        self.replays += 1
        return loss, logits


def graph_blocker(*, device: torch.device, world_size: int, precision: str, loss: str, compiled: bool,
                  accumulate: int = 1) -> str | None:
    """Why the train step cannot be captured here (None: it can)."""
    if device.type != "cuda":
        return "not on a CUDA device"
    if accumulate > 1:
        return f"gradients accumulate over {accumulate} batches, and a replay overwrites the graph's gradients"
    if world_size > 1:
        return "DDP all-reduces gradients during backward (eager under several processes)"
    if precision.startswith("16"):
        return "fp16 loss scaling changes per step"
    if loss == "kl":
        return "TRADES stays eager"
    if compiled:
        return "model.compile has its own graphs"
    return None
