"""A boosting ticket in your own LightningModule: LotteryTicket finds it (cheap FGSM at a small LR, 80 % pruned,
survivors reset to θ0), then the same callback keeps its mask while PGD trains it. Your model, your data loader, your
training_step: adversarial_batch is one call. Runs on the bundled digits in well under a minute on 2 CPU cores.

    python examples/own_model.py            # your own CNN (BatchNorm, a head called "head")
    python examples/own_model.py mobilenet  # torchvision's MobileNetV3-Small, its stem swapped for 1-channel input
"""

import sys

import lightning as L
import torch
import torchvision
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import lth_lightning  # noqa: F401  (patches the CPU torchvision wheel's missing C++ ops)
from lth_lightning.attacks import adversarial_batch, make_attack
from lth_lightning.callbacks import LotteryTicket


class Net(L.LightningModule):
    def __init__(self, net: nn.Module, attack: str, lr: float) -> None:
        super().__init__()
        self.net, self.lr, self.passes = net, lr, 0
        steps = {"steps": 3, "step_size": 0.1} if attack == "pgd" else {}  # PGD-3 to train; FGSM to find
        self.attack = make_attack(attack, eps=0.2, **steps)

    def training_step(self, batch, _):
        loss, _, passes = adversarial_batch(self.net, *batch, self.attack)
        self.passes += passes  # forward passes spent: the cost a ticket is meant to cut
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.net.parameters(), lr=self.lr, momentum=0.9)


def own_cnn() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.Conv2d(32, 64, 3, padding=1),
                         nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(256, 10))


def mobilenet() -> nn.Module:
    net = torchvision.models.mobilenet_v3_small(num_classes=10)
    net.features[0][0] = nn.Conv2d(1, 16, 3, padding=1, bias=False)  # 8x8 grey digits, not 224x224 colour
    return net


def main(arch: str = "own") -> float:
    torch.manual_seed(0)
    x, y = load_digits(return_X_y=True)
    data = TensorDataset(torch.tensor(x, dtype=torch.float32).view(-1, 1, 8, 8) / 16, torch.tensor(y))
    train, test = torch.utils.data.random_split(data, [1500, 297], torch.Generator().manual_seed(0))
    loader = DataLoader(train, batch_size=64, shuffle=True)
    ticket = LotteryTicket(ratio=0.8, reset="init")  # one-shot, layer-normalised |w|, back to θ0
    quiet = {"logger": False, "enable_checkpointing": False, "enable_progress_bar": False,
             "enable_model_summary": False}
    finder = Net(mobilenet() if arch == "mobilenet" else own_cnn(), "fgsm", lr=0.01)  # finding: cheap, small LR
    L.Trainer(max_epochs=2, callbacks=[ticket], **quiet).fit(finder, loader)
    model = Net(finder.net, "pgd", lr=0.05)  # the ticket (θ0 under its mask), now PGD-trained
    L.Trainer(max_epochs=3, callbacks=[ticket], **quiet).fit(model, loader)
    xt, yt = (torch.stack(t) for t in zip(*test, strict=True))
    model.eval()
    robust = (model.net(make_attack("pgd", eps=0.2, steps=10)(model.net, xt, yt)).argmax(1) == yt).float().mean()
    print(f"{arch}: {ticket.masks.sparsity()['overall']:.0%} of weights pruned; PGD-10 test accuracy {robust:.1%} "
          f"after {model.passes:,} training passes")
    return float(robust)


if __name__ == "__main__":
    main(*sys.argv[1:])
