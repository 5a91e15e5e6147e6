"""One LightningDataModule for every image dataset: seeded val split, optional augmentation."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from lth_lightning.config import DataConfig
from lth_lightning.data.sources import NUM_CLASSES, STATS, load_split, load_target


@dataclass(frozen=True)
class DataInfo:
    """What a model needs to know about its inputs."""

    channels: int
    image_size: int
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @property
    def shape(self) -> tuple[int, int, int]:
        """One example's shape (channels, height, width)."""
        return (self.channels, self.image_size, self.image_size)


class ImageTensorDataset(Dataset):
    """uint8 images in memory; yields float [0, 1] images. Augmenting sets also yield each sample's index:
    its crop and flip are drawn from (stage seed, epoch, index) when the batch reaches the device
    (``ImageDataModule.on_after_batch_transfer``), so worker processes never hold augmentation RNG."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, augment: bool = False) -> None:
        self.images, self.labels, self.augment = images, labels, augment

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        image = self.images[index].float().div_(255.0)
        return (image, self.labels[index], torch.tensor(index)) if self.augment else (image, self.labels[index])


class TensorBatches:
    """Batches sliced straight from one in-memory uint8 tensor: no per-sample indexing, no collate.

    The ``data.in_memory`` speed lever for small datasets, and ``data.on_device``: the tensor lives on the
    GPU (CIFAR-10 is 150 MB) and each batch is cut and converted there. Each epoch's order is seeded by the
    stage's seed (``torch.initial_seed``) and the trainer's epoch, so it is the same on every DDP rank and
    after a resume. Under DDP each rank takes a disjoint strided shard (the job DistributedSampler does).
    """

    def __init__(self, ds: ImageTensorDataset, batch_size: int, shuffle: bool, drop_last: bool,
                 rank: int = 0, world: int = 1, epoch: Callable[[], int] = lambda: 0,
                 device: torch.device | str = "cpu") -> None:
        self.x, self.y = ds.images.to(device), ds.labels.to(device)
        self.augment, self.batch_size, self.shuffle, self.drop_last = ds.augment, batch_size, shuffle, drop_last
        self.rank, self.world, self.epoch = rank, world, epoch

    def _indices(self) -> torch.Tensor:
        n = len(self.y)
        order = epoch_order(n, self.epoch()) if self.shuffle else torch.arange(n)
        return order[self.rank :: self.world]

    def __len__(self) -> int:
        n = len(self.y[self.rank :: self.world])
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        idx = self._indices().to(self.x.device)
        for i in range(len(self)):
            batch = idx[i * self.batch_size : (i + 1) * self.batch_size]
            x = self.x[batch].float().div_(255.0)
            yield (x, self.y[batch], batch) if self.augment else (x, self.y[batch])


def epoch_order(n: int, epoch: int) -> torch.Tensor:
    """One epoch's shuffled order, from a generator of its own seeded by (stage seed, epoch): loaders never
    draw from the global RNG, which the attacks' random starts use, so how batches are loaded (workers,
    persistence, in memory) cannot move what the model draws."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(torch.initial_seed() + epoch))


class EpochSampler(Sampler[int]):
    """A ``DataLoader``'s shuffling sampler that draws ``epoch_order``: the same order whether its iterator is
    made each epoch (no workers) or once (persistent workers), and the same as in-memory batches."""

    def __init__(self, n: int, epoch: Callable[[], int]) -> None:
        self.n, self.epoch = n, epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        return iter(epoch_order(self.n, self.epoch()).tolist())


def crop_flip_params(seed: int, epoch: int, n: int, pad: int = 4) -> torch.Tensor:
    """Every sample's (top, left, flip) for one epoch, ``n`` rows from a generator seeded by (seed, epoch):
    a sample's augmentation is its row, whatever process, device or batch it lands in."""
    gen = torch.Generator().manual_seed((seed * 1_000_003 + epoch) % 2**63)
    offsets = torch.randint(0, 2 * pad + 1, (n, 2), generator=gen)
    return torch.cat([offsets, torch.randint(0, 2, (n, 1), generator=gen)], 1)


def batch_crop_flip(x: torch.Tensor, params: torch.Tensor, pad: int = 4) -> torch.Tensor:
    """The CIFAR augmentation for a batch on its own device: zero-pad by ``pad``, crop back at each image's
    (top, left), flip where asked (one gather)."""
    n, _, h, w = x.shape
    top, left, flip = params.to(x.device).unbind(1)
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    rows = (top[:, None] + torch.arange(h, device=x.device))[:, :, None]
    cols = (left[:, None] + torch.arange(w, device=x.device))[:, None, :]
    cols = torch.where(flip.bool()[:, None, None], cols.flip(-1), cols)
    return padded[torch.arange(n, device=x.device)[:, None, None], :, rows, cols].permute(0, 3, 1, 2).contiguous()


class ImageDataModule(L.LightningDataModule):
    def __init__(self, cfg: DataConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.test_set: Dataset | None = None
        self._augment_key: tuple[int, int] | None = None
        self._augment_table = torch.empty(0, 3, dtype=torch.long)
        self._own: tuple[tuple[torch.Tensor, torch.Tensor], ...] | None = None  # data._target_'s splits, read once

    @functools.cached_property
    def info(self) -> DataInfo:
        """Once per data module: for data of your own it reads the train split and measures its mean and std, which
        every stage asks for."""
        if self.cfg._target_:  # data of your own: its shape, and its mean and std measured on the train split
            images, _ = self._load(train=True)
            pixels = images.float().div(255.0).transpose(0, 1).reshape(images.shape[1], -1)
            return DataInfo(images.shape[1], images.shape[2], self.cfg.num_classes,
                            tuple(pixels.mean(1).tolist()), tuple(pixels.std(1).clamp_min(1e-3).tolist()))
        if self.cfg.name == "synthetic":
            c, h, _ = self.cfg.shape
            return DataInfo(c, h, self.cfg.num_classes, (0.5,) * c, (0.25,) * c)
        mean, std = STATS[self.cfg.name]
        size = {"digits": 8, "mnist": 28, "fashion_mnist": 28}.get(self.cfg.name, 32)
        return DataInfo(len(mean), size, NUM_CLASSES[self.cfg.name], mean, std)

    def _load(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.cfg
        if c._target_:
            if self._own is None:
                self._own = load_target(c._target_, c.args, c.num_classes)
            return self._own[0 if train else 1]
        synthetic = {"shape": c.shape, "num_classes": c.num_classes, "size": c.synthetic_size}
        return load_split(c.name, c.root, train, c.download, **(synthetic if c.name == "synthetic" else {}))

    def prepare_data(self) -> None:
        """Download once (rank 0); later loads find the files."""
        if self.cfg.download:
            self._load(True)
            self._load(False)

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        c = self.cfg
        images, labels = self._load(train=True)
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(c.split_seed))
        n_val = round(len(labels) * c.val_fraction)
        val_idx, train_idx = order[:n_val], order[n_val:]
        if c.train_subset is not None:
            train_idx = train_idx[: c.train_subset]
        augment = c.augment and self.info.image_size >= 32
        self.train_set = ImageTensorDataset(images[train_idx], labels[train_idx], augment=augment)
        self.val_set = ImageTensorDataset(images[val_idx], labels[val_idx])
        test_images, test_labels = self._load(train=False)
        if c.test_subset is not None:
            test_images, test_labels = test_images[: c.test_subset], test_labels[: c.test_subset]
        self.test_set = ImageTensorDataset(test_images, test_labels)

    def _loader(self, ds: Dataset | None, train: bool) -> DataLoader | TensorBatches:
        assert ds is not None, "call setup() first"
        c = self.cfg
        if c.in_memory or c.on_device:
            trainer = self.trainer
            rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
            device = trainer.strategy.root_device if trainer is not None and c.on_device else "cpu"
            size = c.batch_size if train else c.eval_batch_size
            return TensorBatches(ds, size, shuffle=train, drop_last=train and len(ds) > size,  # type: ignore
                                 rank=rank, world=world, epoch=self._epoch,
                                 device=device)
        return DataLoader(
            ds,
            batch_size=c.batch_size if train else c.eval_batch_size,
            sampler=EpochSampler(len(ds), self._epoch) if train else None,  # type: ignore[arg-type]
            drop_last=train and len(ds) > c.batch_size,  # type: ignore[arg-type]
            num_workers=c.num_workers,
            persistent_workers=c.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
            # the iterator's worker base seed comes from here, not from the global RNG (workers draw nothing:
            # augmentation happens after the batch reaches the device)
            generator=torch.Generator().manual_seed(0),
        )

    def _epoch(self) -> int:
        return self.trainer.current_epoch if self.trainer is not None else 0

    def on_after_batch_transfer(self, batch: tuple[torch.Tensor, ...], dataloader_idx: int) -> tuple[torch.Tensor, ...]:
        """Augment on the device the batch reached: each sample's crop/flip from (stage seed, epoch, index)."""
        if len(batch) != 3:
            return batch
        x, y, index = batch
        key = (torch.initial_seed(), self.trainer.current_epoch if self.trainer is not None else 0)
        if self._augment_key != key:  # one table per epoch, on the batches' device
            self._augment_key = key
            self._augment_table = crop_flip_params(*key, len(self.train_set)).to(x.device)  # type: ignore[arg-type]
        return batch_crop_flip(x, self._augment_table[index.to(x.device)]), y

    def train_dataloader(self) -> DataLoader | TensorBatches:
        return self._loader(self.train_set, train=True)

    def val_dataloader(self) -> DataLoader | TensorBatches:
        return self._loader(self.val_set, train=False)

    def test_dataloader(self) -> DataLoader | TensorBatches:
        return self._loader(self.test_set, train=False)


def build_datamodule(cfg: DataConfig) -> ImageDataModule:
    return ImageDataModule(cfg)
