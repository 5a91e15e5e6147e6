"""Loading raw datasets into uint8 NCHW tensors: sklearn digits, torchvision sets, synthetic.

Everything is held in memory as uint8 (CIFAR-10 is 150 MB), which keeps the per-sample work to a crop,
a flip and a divide, and makes every dataset look the same to the datamodule.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from lth_lightning.errors import ConfigError, DataError, first_line

Split = tuple[torch.Tensor, torch.Tensor]  # (uint8 images N×C×H×W, int64 labels)

# Per-channel statistics in [0, 1] pixel space, folded into the model's first layer.
STATS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "digits": ((0.3059,), (0.3791,)),
    "mnist": ((0.1307,), (0.3081,)),
    "fashion_mnist": ((0.2860,), (0.3530,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "svhn": ((0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)),
}
NUM_CLASSES = {"digits": 10, "mnist": 10, "fashion_mnist": 10, "cifar10": 10, "cifar100": 100, "svhn": 10}


def load_digits_split(train: bool) -> Split:
    """scikit-learn's bundled 8×8 digits; a fixed 20 % test split so the test set never moves."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.from_numpy(np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)).unsqueeze(1)
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(12345))
    n_test = len(labels) // 5
    idx = order[n_test:] if train else order[:n_test]
    return images[idx].contiguous(), labels[idx].contiguous()


def _torchvision_split(name: str, root: str, train: bool, download: bool) -> Split:
    from torchvision import datasets

    constructors: dict[str, Callable[..., object]] = {
        "mnist": lambda **kw: datasets.MNIST(train=train, **kw),
        "fashion_mnist": lambda **kw: datasets.FashionMNIST(train=train, **kw),
        "cifar10": lambda **kw: datasets.CIFAR10(train=train, **kw),
        "cifar100": lambda **kw: datasets.CIFAR100(train=train, **kw),
        "svhn": lambda **kw: datasets.SVHN(split="train" if train else "test", **kw),
    }
    try:
        ds = constructors[name](root=root, download=download)
    except RuntimeError as err:
        if "not found" in str(err).lower() or "corrupted" in str(err).lower():
            raise DataError(
                f"{name} not found under {Path(root).resolve()}; pass data.download=true, or "
                f"data.root=<folder holding {type_dir(name)}>"
            ) from None
        raise
    except OSError as err:  # URLError is an OSError: no network, DNS failure, refused
        raise DataError(
            f"could not download {name} to {Path(root).resolve()} ({err}); copy the files there by hand "
            f"and rerun with data.download=false"
        ) from None
    return _to_tensors(name, ds)


def check_present(name: str, root: str, download: bool) -> None:
    """Before a run starts (and writes anything): the folder a torchvision dataset reads is there, unless it is to
    be downloaded. The loader checks the files themselves; this catches a wrong ``data.root`` at once."""
    if name in ("digits", "synthetic") or download:
        return
    folder = Path(root) / ("" if name == "svhn" else type_dir(name))
    if not folder.is_dir() or (name == "svhn" and not (folder / "train_32x32.mat").is_file()):
        raise DataError(f"{name} not found under {Path(root).resolve()}; pass data.download=true, or "
                        f"data.root=<folder holding {type_dir(name)}>")


def type_dir(name: str) -> str:
    return {"mnist": "MNIST/raw", "fashion_mnist": "FashionMNIST/raw", "cifar10": "cifar-10-batches-py",
            "cifar100": "cifar-100-python", "svhn": "train_32x32.mat/test_32x32.mat"}[name]


def _to_tensors(name: str, ds: object) -> Split:
    data = ds.data  # type: ignore[attr-defined]
    images = torch.as_tensor(np.asarray(data))
    if name in ("mnist", "fashion_mnist"):
        images = images.unsqueeze(1)
    elif name in ("cifar10", "cifar100"):
        images = images.permute(0, 3, 1, 2)  # stored NHWC
    labels_attr = "labels" if name == "svhn" else "targets"
    labels = torch.as_tensor(np.asarray(getattr(ds, labels_attr)), dtype=torch.int64)
    return images.to(torch.uint8).contiguous(), labels


def synthetic_split(shape: list[int], num_classes: int, size: int, train: bool) -> Split:
    """Random images and labels for throughput benchmarks (nothing to learn)."""
    gen = torch.Generator().manual_seed(0 if train else 1)
    images = torch.randint(0, 256, (size, *shape), generator=gen, dtype=torch.uint8)
    return images, torch.randint(0, num_classes, (size,), generator=gen)


def load_split(name: str, root: str, train: bool, download: bool, **synthetic: object) -> Split:
    if name == "digits":
        return load_digits_split(train)
    if name == "synthetic":
        return synthetic_split(train=train, **synthetic)  # type: ignore[arg-type]
    return _torchvision_split(name, root, train, download)


def load_target(target: str, args: dict, num_classes: int) -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
    """``data._target_``: the factory's train and test splits as 8-bit images and labels. A LightningDataModule is set
    up and its train and test loaders read once; a (train, test) pair of datasets is read item by item. Images must
    be square, in [0, 1]; labels in [0, num_classes)."""
    from lth_lightning.config import resolve_target

    factory = resolve_target("data._target_", target)
    try:
        made = factory(**args)
    except Exception as err:  # an argument it does not take, or its own failure: one line, not its traceback
        raise ConfigError(f"data._target_={target}: {type(err).__name__}: {first_line(err)}") from None
    try:
        with torch.random.fork_rng(devices=[]):  # a dataset's random transforms: the same draw every read
            torch.manual_seed(0)
            splits = [_read(ds) for ds in _datasets(target, made)]
    except ConfigError:
        raise
    except Exception as err:  # the user's setup, collation, a missing loader: one line, not their traceback
        raise ConfigError(f"data._target_={target}: {type(err).__name__}: {first_line(err)}") from None
    for images, labels in splits:
        _require_images(target, images, labels, num_classes)
    return tuple((images.mul(255).round().to(torch.uint8), labels.long()) for images, labels in splits)


def _datasets(target: str, made: Any) -> list[Any]:
    """The train and test datasets behind a LightningDataModule's loaders (read in their order, not the loader's
    shuffle: our seeded split decides what validates), or the pair itself."""
    import lightning as L

    if isinstance(made, L.LightningDataModule):
        made.prepare_data()
        made.setup("fit")
        made.setup("test")
        return [made.train_dataloader().dataset, made.test_dataloader().dataset]
    if isinstance(made, tuple | list) and len(made) == 2:
        return list(made)
    raise ConfigError(f"data._target_={target} returned a {type(made).__name__}: give a LightningDataModule or a "
                      "(train, test) pair of datasets")


def _read(dataset: Any) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = zip(*((batch[0], batch[1]) for batch in DataLoader(dataset, batch_size=512, shuffle=False)), strict=True)
    return torch.cat(xs).float(), torch.cat(ys)


def _require_images(target: str, images: torch.Tensor, labels: torch.Tensor, num_classes: int) -> None:
    if images.dim() != 4 or images.shape[2] != images.shape[3]:
        raise ConfigError(f"data._target_={target}: images must be square (N, C, H, H); got {tuple(images.shape)}")
    if images.min() < 0 or images.max() > 1:
        raise ConfigError(f"data._target_={target}: images must be in [0, 1] (the model normalises); got "
                          f"[{images.min():.3g}, {images.max():.3g}]")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ConfigError(f"data._target_={target}: labels must be in [0, data.num_classes={num_classes})")
