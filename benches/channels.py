"""``python -m benches channels``:

A compacted channel ticket's PGD-10 train step against the dense net's, at 30/50/70 % of channels.
"""

from __future__ import annotations

from benches.common import interleaved, save, summarize
from benches.workloads import CIFAR_INFO, MNIST_INFO, kept_channels, lightning_rate

CHANNEL_MODELS = (("lenet", MNIST_INFO, 128), ("vgg11", CIFAR_INFO, 32), ("resnet18", CIFAR_INFO, 32))


def run(args) -> None:
    """9. PGD-10 train step, channel ticket compacted vs dense, at 30/50/70 % of channels (target >= 2.5x at
    50 % for vgg11 and resnet18 on CPU). On a GPU also bf16 + channels_last, where the compact net's
    narrower layers may use the card less well."""
    import torch

    from lth_lightning.config import ModelConfig
    from lth_lightning.models import build_model
    from lth_lightning.pruning.channels import compact, macs

    gpu = torch.cuda.is_available()
    opts = {"accelerator": "gpu", "in_memory": True} if gpu else {}
    steps = 1 if args.quick else 3
    out = {}
    for model, info, batch in CHANNEL_MODELS:
        dense_macs = macs(build_model(ModelConfig(name=model), info, seed=0), info.shape)
        for ratio in (0.3, 0.5, 0.7):
            kept = kept_channels(model, info, ratio)
            small = compact(build_model(ModelConfig(name=model), info, seed=0), info.shape,
                            {k: torch.tensor(v) for k, v in kept.items()})
            variants = {
                "dense": lambda m=model, i=info, b=batch: lightning_rate(m, i, steps, 10, b, warmup=1, **opts),
                "compact": lambda m=model, i=info, b=batch, k=kept: lightning_rate(m, i, steps, 10, b, warmup=1,
                                                                                 channels=k, **opts),
            }
            if gpu:
                variants["dense_bf16_cl"] = lambda m=model, i=info, b=batch: lightning_rate(
                    m, i, steps, 10, b, warmup=1, precision="bf16-mixed", channels_last=True, **opts)
                variants["compact_bf16_cl"] = lambda m=model, i=info, b=batch, k=kept: lightning_rate(
                    m, i, steps, 10, b, warmup=1, channels=k, precision="bf16-mixed", channels_last=True, **opts)
            out[f"{model} @ {ratio:.0%} channels"] = {
                "macs_ratio": round(macs(small, info.shape) / dense_macs, 4), "batch": batch,
                "variants": summarize(interleaved(variants, args.repeats), "dense")}
    save("channels", {"workload": f"PGD-10 train step, {steps} timed steps after 1 warm-up, synthetic data "
                                  "(lenet 28x28 batch 128; vgg11/resnet18 32x32 batch 32)", "target": 2.5,
                      "result": out})
