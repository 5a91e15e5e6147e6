"""``python -m benches attack``:

Our PGD against torchattacks' PGD on a trained MNIST LeNet: the same start, speed and accuracy.
"""

from __future__ import annotations

from benches.common import DATA_ROOT, interleaved, save, summarize, timed


def _trained_mnist_lenet():
    import torch
    import torch.nn.functional as F

    from lth_lightning.config import DataConfig, ModelConfig
    from lth_lightning.data import build_datamodule
    from lth_lightning.models import build_model

    dm = build_datamodule(DataConfig(name="mnist", root=DATA_ROOT, train_subset=10000, test_subset=1000))
    dm.setup()
    model = build_model(ModelConfig(name="lenet"), dm.info, seed=0)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for x, y in dm.train_dataloader():
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    x = dm.test_set.images.float() / 255
    return model.eval(), x, dm.test_set.labels


def run(args) -> None:
    """2. Our PGD vs torchattacks' PGD: same start (no random start), same model, batch; speed and accuracy."""
    import torch
    import torchattacks

    from lth_lightning.attacks import Attack

    model, x, y = _trained_mnist_lenet()
    eps, alpha, steps = 0.1, 0.025, 10
    ours = Attack(eps, alpha, steps, random_start=False, bn_mode="eval")
    theirs = torchattacks.PGD(model, eps=eps, alpha=alpha, steps=steps, random_start=False)
    accs = {}

    def run(name, fn):
        def go() -> int:
            correct = 0
            for i in range(0, len(x), 250):
                xb, yb = x[i : i + 250], y[i : i + 250]
                x_adv = fn(xb, yb)  # outside no_grad: torchattacks needs autograd enabled by the caller
                with torch.no_grad():
                    correct += int((model(x_adv).argmax(1) == yb).sum())
            accs[name] = 100 * correct / len(x)
            return len(x)
        return lambda: timed(go)

    samples = interleaved({"torchattacks": run("torchattacks", lambda a, b: theirs(a, b)),
                           "ours": run("ours", lambda a, b: ours(model, a, b))}, args.repeats)
    with torch.no_grad():
        clean = 100 * float((model(x).argmax(1) == y).float().mean())
    workload = f"lenet on 1000 MNIST test images, PGD-{steps} eps {eps} step {alpha}, no random start"
    save("attack", {"workload": workload, "target": 1.0, "clean_acc": clean, "robust_acc": accs,
                    "result": summarize(samples, "torchattacks")})
