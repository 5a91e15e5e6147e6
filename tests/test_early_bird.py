"""Early-bird finding: the distance arithmetic, stopping when masks settle, never while they move, resume
mid-window, and end to end in fast_ticket (the 2-process DDP stop is in test_ddp.py)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from lth_lightning.callbacks.early_bird import EarlyBird, hamming, settled
from lth_lightning.config import FindConfig, PruneConfig
from lth_lightning.tasks.fast_ticket import run_fast_ticket


def test_hamming_and_settled():
    a = torch.tensor([True, True, False, False])
    b = torch.tensor([True, False, False, True])
    assert hamming(a, a) == 0.0 and hamming(a, b) == 0.5 and hamming(a, ~a) == 1.0
    assert settled([a, a], 3, 0.1) == (False, None)  # window not full yet: nothing compared
    assert settled([a, b, a], 3, 0.1) == (False, 0.5)  # newest vs every other: the worst counts
    assert settled([b, a, a], 3, 0.5) == (True, 0.5)
    assert settled([a, a, a], 3, 0.0) == (True, 0.0)


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(20, 20)
        self.classifier = nn.Linear(20, 2)


def _fake(epoch: int) -> SimpleNamespace:
    return SimpleNamespace(should_stop=False, current_epoch=epoch, global_step=10 * (epoch + 1),
                           strategy=SimpleNamespace(broadcast=lambda obj, src=0: obj))


def _bird(window: int = 3, threshold: float = 0.05) -> EarlyBird:
    return EarlyBird(FindConfig(stop="early_bird", window=window, threshold=threshold), PruneConfig(), 0.5)


def test_stops_once_the_mask_settles_and_never_while_it_moves():
    torch.manual_seed(0)
    module = SimpleNamespace(model=Net())
    bird = _bird()
    stops = []
    for epoch in range(8):
        if epoch < 4:  # training moves the weights: the mask keeps changing
            with torch.no_grad():
                for p in module.model.parameters():
                    p.copy_(torch.randn_like(p))
        trainer = _fake(epoch)
        bird.check(trainer, module)
        stops.append(trainer.should_stop)
    # checks 1-4 see new weights; from check 5 on the window fills with the settled mask: full at check 6
    assert stops == [False] * 5 + [True, True, True]
    assert bird.stopped_epoch == 6 and bird.stopped_step == 60
    assert all(d > 0.05 for d in bird.distances[2:4]) and bird.distances[5] == 0.0


def test_resume_mid_window_continues_the_same_decisions():
    """Killed after check 3 and restored from its saved state, the callback decides as if never stopped."""
    torch.manual_seed(1)
    a, b, c = Net(), Net(), Net()
    nets = [a, b, c, c, c, c]  # the weights move twice, then settle
    straight = _bird()
    for epoch, net in enumerate(nets):
        straight.check(_fake(epoch), SimpleNamespace(model=net))
    first = _bird()
    for epoch, net in enumerate(nets[:3]):
        first.check(_fake(epoch), SimpleNamespace(model=net))
    resumed = _bird()
    resumed.load_state_dict(torch.load(_roundtrip(first.state_dict()), weights_only=True))
    for epoch, net in enumerate(nets[3:], start=3):
        resumed.check(_fake(epoch), SimpleNamespace(model=net))
    assert resumed.distances == straight.distances
    assert resumed.stopped_epoch == straight.stopped_epoch == 5


def _roundtrip(state):
    import io

    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return buffer


TINY = ["experiment=fast_ticket", "pipeline.find.epochs=3", "pipeline.ticket_epochs=1", "pipeline.dense_epochs=1",
        "trainer.limit_train_batches=3", "attack.steps=2", "optim.warmup_epochs=0", "pipeline.arms=[ticket,dense]"]


def test_fast_ticket_with_early_bird_finding(make_cfg, tmp_path):
    """A window of 2 with threshold 1 always settles at the second check: finding stops at epoch 2 of 3."""
    cfg = make_cfg(*TINY, "pipeline.find.stop=early_bird", "pipeline.find.window=2", "pipeline.find.threshold=1.0")
    summary = run_fast_ticket(cfg)
    stop = summary.arms["ticket"].find_stop
    assert stop is not None and stop.stopped_epoch == 2 and stop.cap_epochs == 3 and len(stop.distances) == 2
    assert "early-bird finding stopped at epoch 2 of 3" in (tmp_path / "summary.md").read_text()
    fixed = run_fast_ticket(make_cfg(*TINY))
    assert summary.arms["ticket"].find_cost.passes == pytest.approx(fixed.arms["ticket"].find_cost.passes * 2 / 3)


def test_channel_tickets_compare_channel_masks():
    """With structure=channel the window holds one bit per channel, and settles when the channels do."""
    from lth_lightning.config import ModelConfig
    from lth_lightning.data import DataInfo
    from lth_lightning.models import build_model

    info = DataInfo(1, 8, 10, (0.5,), (0.25,))
    bird = EarlyBird(FindConfig(stop="early_bird", window=2, threshold=0.0),
                     PruneConfig(name="oneshot", structure="channel"), 0.5)
    module = SimpleNamespace(model=build_model(ModelConfig(name="lenet"), info, seed=0), info=info)
    first = _fake(0)
    bird.check(first, module)
    assert bird.window[0].numel() == 32 + 64 + 256 and int(bird.window[0].sum()) == 176  # channels, half kept
    with torch.no_grad():
        module.model.net.features[0].weight.mul_(2.0)  # the layer-normalised scores do not change
    second = _fake(1)
    bird.check(second, module)
    assert second.should_stop and bird.distances == [None, 0.0]  # – before the window is full
