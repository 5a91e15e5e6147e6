"""``python -m benches mask``:

The train step with 80 % masks (MaskEnforcer hooks) against without (target ratio >= 0.97).
"""

from __future__ import annotations

from benches.common import interleaved, save, summarize
from benches.workloads import MNIST_INFO, lightning_rate


def run(args) -> None:
    """3. Training step with 80 % masks (MaskEnforcer hooks) vs without (target ratio >= 0.97)."""
    out = {}
    for label, attack_steps, steps in (("natural", 0, 60), ("pgd10", 10, 8)):
        steps = max(2, steps // 3) if args.quick else steps
        samples = interleaved({
            "dense": lambda a=attack_steps, s=steps: lightning_rate("lenet", MNIST_INFO, s, a),
            "masked": lambda a=attack_steps, s=steps: lightning_rate("lenet", MNIST_INFO, s, a, sparsity=0.8),
        }, args.repeats)
        out[label] = summarize(samples, "dense")
    save("mask", {"workload": "lenet 28x28, batch 128, masks at 80 % sparsity", "target": 0.97, "result": out})
