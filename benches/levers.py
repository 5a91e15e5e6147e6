"""``python -m benches levers``:

CPU speed levers on the PGD-10 step: channels_last, bf16 autocast, torch.compile, in-memory data.
"""

from __future__ import annotations

from benches.common import interleaved, save, summarize
from benches.workloads import MNIST_INFO, lightning_rate


def run(args) -> None:
    """5. Speed levers on the CPU PGD-10 step: channels_last, bf16 autocast, torch.compile, in-memory data."""
    steps = 3 if args.quick else 6
    variants = {
        "baseline": lambda: lightning_rate("lenet", MNIST_INFO, steps, 10),
        "channels_last": lambda: lightning_rate("lenet", MNIST_INFO, steps, 10, channels_last=True),
        "bf16_autocast": lambda: lightning_rate("lenet", MNIST_INFO, steps, 10, precision="bf16-mixed"),
        "in_memory": lambda: lightning_rate("lenet", MNIST_INFO, steps, 10, in_memory=True),
    }
    if not args.quick:
        variants["compile"] = lambda: lightning_rate("lenet", MNIST_INFO, steps, 10, compile_model=True, warmup=4)
    samples = interleaved(variants, args.repeats)
    save("levers", {"workload": f"lenet 28x28 PGD-10 train step, batch 128, {steps} timed steps",
                    "result": summarize(samples, "baseline")})
