"""``python -m benches overhead``:

Lightning's PGD-10 train step against a minimal hand-written loop (target ratio >= 0.95).
"""

from __future__ import annotations

from benches.common import interleaved, save, summarize
from benches.workloads import MNIST_INFO, handwritten_rate, lightning_rate


def run(args) -> None:
    """1. Lightning PGD-10 training step vs a minimal hand-written loop (target ratio >= 0.95)."""
    steps = 4 if args.quick else 20
    samples = interleaved({
        "handwritten": lambda: handwritten_rate("lenet", MNIST_INFO, steps, 10),
        "lightning": lambda: lightning_rate("lenet", MNIST_INFO, steps, 10),
    }, args.repeats)
    save("overhead", {"workload": f"lenet 28x28 PGD-10 train step, batch 128, {steps} timed steps",
                      "target": 0.95, "result": summarize(samples, "handwritten")})
