"""Data this package does not define, for ``data._target_`` (README: Bring your own model): a LightningDataModule
of your own, or a (train, test) pair of datasets. Images in [0, 1], square; labels 0..num_classes-1.

    PYTHONPATH=. python -m lth_lightning +experiment=fast_ticket data._target_=examples.data.digits_module
"""

import lightning as L
import torch
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, TensorDataset


def _digits(flip: bool) -> tuple[TensorDataset, TensorDataset]:
    x, y = load_digits(return_X_y=True)
    images = torch.tensor(x, dtype=torch.float32).view(-1, 1, 8, 8) / 16
    if flip:
        images = images.flip(-1)  # mirrored digits: not the dataset this package bundles
    data = TensorDataset(images, torch.tensor(y))
    return tuple(torch.utils.data.random_split(data, [1500, 297], torch.Generator().manual_seed(0)))  # type: ignore


class DigitsModule(L.LightningDataModule):
    """A user's own datamodule: mirrored digits, batch 64."""

    def __init__(self, flip: bool = True) -> None:
        super().__init__()
        self.flip = flip

    def setup(self, stage: str | None = None) -> None:
        self.train, self.test = _digits(self.flip)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train, batch_size=64, shuffle=True)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.test, batch_size=256)


def digits_module(flip: bool = True) -> DigitsModule:
    return DigitsModule(flip)


def digits_pair(flip: bool = True) -> tuple[TensorDataset, TensorDataset]:
    return _digits(flip)
