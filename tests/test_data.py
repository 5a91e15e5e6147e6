"""Datamodules: [0, 1] float inputs, seeded splits, real torchvision parsing on small fakes, clear errors."""

from __future__ import annotations

import dataclasses
import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from lth_lightning.config import DataConfig
from lth_lightning.data import build_datamodule
from lth_lightning.data.datamodule import batch_crop_flip, crop_flip_params
from lth_lightning.errors import DataError


def test_digits_split_is_deterministic_and_disjoint():
    a, b = build_datamodule(DataConfig(name="digits")), build_datamodule(DataConfig(name="digits"))
    a.setup()
    b.setup()
    assert torch.equal(a.val_set.images, b.val_set.images)
    assert len(a.train_set) + len(a.val_set) + len(a.test_set) == 1797
    x, y = next(iter(a.train_dataloader()))
    assert x.dtype == torch.float32 and x.shape[1:] == (1, 8, 8)
    assert x.min() >= 0.0 and x.max() <= 1.0 and y.dtype == torch.int64
    other = build_datamodule(DataConfig(name="digits", split_seed=1))
    other.setup()
    assert not torch.equal(a.val_set.images, other.val_set.images)
    assert torch.equal(a.test_set.images, other.test_set.images)  # test split never moves


def test_synthetic_any_shape():
    dm = build_datamodule(DataConfig(name="synthetic", shape=[3, 16, 16], num_classes=7, synthetic_size=64))
    dm.setup()
    assert dm.info.num_classes == 7 and dm.info.image_size == 16
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape[1:] == (3, 16, 16) and int(y.max()) < 7


def _windows(image: torch.Tensor, pad: int = 4) -> list[torch.Tensor]:
    """Every crop of the zero-padded image, and its mirror: the only outputs crop+flip may produce."""
    _, h, w = image.shape
    padded = torch.nn.functional.pad(image, (pad, pad, pad, pad))
    crops = [padded[:, t : t + h, s : s + w] for t in range(2 * pad + 1) for s in range(2 * pad + 1)]
    return crops + [c.flip(-1) for c in crops]


def test_crop_flip_is_the_padded_window_its_params_name():
    image = torch.arange(1, 3 * 8 * 8 + 1, dtype=torch.float32).view(3, 8, 8)  # every pixel unique, none zero
    windows = _windows(image)
    params = crop_flip_params(seed=7, epoch=0, n=200)
    out = batch_crop_flip(image.expand(200, -1, -1, -1), params)
    for (top, left, flip), res in zip(params.tolist(), out, strict=True):
        assert [i for i, w in enumerate(windows) if torch.equal(res, w)] == [81 * flip + 9 * top + left]
    assert len({tuple(p) for p in params.tolist()}) > 60  # offsets and flips really vary (162 possible)


def test_crop_flip_params_depend_on_seed_and_epoch_only():
    a = crop_flip_params(seed=3, epoch=1, n=50)
    assert torch.equal(a, crop_flip_params(seed=3, epoch=1, n=50))
    assert not torch.equal(a, crop_flip_params(seed=3, epoch=2, n=50))
    assert not torch.equal(a, crop_flip_params(seed=4, epoch=1, n=50))


def _write_idx(path, array: np.ndarray) -> None:
    dims = struct.pack(">" + "I" * array.ndim, *array.shape)
    magic = struct.pack(">HBB", 0, 0x08, array.ndim)
    with gzip.open(path, "wb") if str(path).endswith(".gz") else open(path, "wb") as fh:
        fh.write(magic + dims + array.astype(np.uint8).tobytes())


def test_mnist_parsed_from_torchvision_layout(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 50), ("t10k", 20)):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, (n,)))
    dm = build_datamodule(DataConfig(name="mnist", root=str(tmp_path), val_fraction=0.2))
    dm.setup()
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (40, 10, 20)
    assert dm.info.channels == 1 and dm.info.image_size == 28


def test_cifar10_parsed_from_python_pickles(tmp_path, monkeypatch):
    from torchvision.datasets import cifar

    base = tmp_path / "cifar-10-batches-py"
    base.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {"data": rng.integers(0, 256, (10, 3072), dtype=np.uint8), "labels": list(rng.integers(0, 10, 10))}
        (base / name).write_bytes(pickle.dumps(batch))
    (base / "batches.meta").write_bytes(pickle.dumps({"label_names": [str(i) for i in range(10)]}))
    monkeypatch.setattr(cifar, "check_integrity", lambda *a, **k: True)  # fakes cannot match the md5s
    dm = build_datamodule(DataConfig(name="cifar10", root=str(tmp_path), val_fraction=0.1))
    dm.setup()
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (45, 5, 10)
    x, _, index = next(iter(dm.train_dataloader()))  # the sample index travels with the batch ...
    x, _ = dm.on_after_batch_transfer((x, _, index), 0)  # ... to where it is cropped and flipped
    assert x.shape[1:] == (3, 32, 32) and dm.train_set.augment


def test_missing_data_without_download_is_a_clear_error(tmp_path):
    dm = build_datamodule(DataConfig(name="cifar10", root=str(tmp_path)))
    with pytest.raises(DataError, match=r"data\.download=true"):
        dm.setup()


def test_unreachable_download_is_a_clear_error(tmp_path, monkeypatch):
    import urllib.error

    from torchvision.datasets import MNIST

    def offline(self):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(MNIST, "download", offline)
    dm = build_datamodule(DataConfig(name="mnist", root=str(tmp_path), download=True))
    with pytest.raises(DataError, match="could not download mnist"):
        dm.prepare_data()


def test_in_memory_batches_match_the_dataloader_contents():
    from lth_lightning.data.datamodule import TensorBatches

    dm = build_datamodule(DataConfig(name="digits", in_memory=True, batch_size=100))
    dm.setup()
    loader = dm.train_dataloader()
    assert isinstance(loader, TensorBatches) and len(loader) == len(dm.train_set) // 100
    xs, _ = zip(*loader, strict=True)
    assert all(x.shape == (100, 1, 8, 8) and x.dtype == torch.float32 for x in xs)
    # every image is a real training image, and each appears at most once per epoch
    seen = torch.cat(xs).flatten(1)
    assert len(torch.unique(seen, dim=0)) >= len(seen) - 5  # digits has a few duplicate images
    shards = [TensorBatches(dm.train_set, 50, False, False, rank=r, world=2) for r in (0, 1)]
    a, b = (torch.cat([y for _, y in s]) for s in shards)
    assert len(a) + len(b) == len(dm.train_set)




def test_first_epoch_weights_do_not_depend_on_workers():
    """Crop/flip come from (seed, epoch, sample index), not from the process that loads the sample: one epoch
    with 0 or 2 DataLoader workers trains the same weights, bit for bit."""
    from dataclasses import asdict

    import lightning as L

    from lth_lightning.config import EvalConfig, ModelConfig, OptimConfig
    from lth_lightning.modules import Classifier

    cfg = DataConfig(name="synthetic", shape=[3, 32, 32], synthetic_size=96, batch_size=16, val_fraction=0.0)
    weights = []
    for workers in (0, 2):
        dm = build_datamodule(dataclasses.replace(cfg, num_workers=workers))
        module = Classifier(asdict(ModelConfig(name="lenet")), asdict(dm.info), asdict(OptimConfig(lr=0.05)),
                            {"name": "none"}, asdict(EvalConfig(val_robust_samples=0)), init_seed=0)
        torch.manual_seed(5)  # the stage seed: the shuffling order and the augmentation both derive from it
        L.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                  enable_model_summary=False, limit_val_batches=0).fit(module, datamodule=dm)
        weights.append(module.model.state_dict())
    assert all(torch.equal(value, weights[1][name]) for name, value in weights[0].items())


def test_in_memory_batches_augment_each_sample_as_the_loader_does():
    """In-memory batches shuffle with their own generator, but a sample's crop/flip is the same."""
    cfg = DataConfig(name="synthetic", shape=[3, 32, 32], synthetic_size=64, batch_size=16, val_fraction=0.0)
    out = {}
    for key, extra in {"loader": {}, "memory": {"in_memory": True}}.items():
        dm = build_datamodule(dataclasses.replace(cfg, **extra))
        dm.setup()
        torch.manual_seed(5)
        out[key] = {}
        for batch in dm.train_dataloader():
            xs, _ = dm.on_after_batch_transfer(batch, 0)
            out[key].update(zip(batch[2].tolist(), xs, strict=True))
    assert set(out["loader"]) == set(out["memory"])
    assert all(torch.equal(x, out["memory"][i]) for i, x in out["loader"].items())


# Loader settings marked NO_EFFECT that a CPU run can flip, each with a value other than its default. A new
# NO_EFFECT data field fails test_every_no_effect_data_field_is_flipped until it is listed here (or shown not
# to run on a CPU).
LOADER_FLIPS = {"num_workers": 2}
NOT_ON_CPU = {"on_device"}  # needs a GPU: it implies in_memory, which is part of the identity (see config)
PATHS = {"root", "download"}  # where files are, not what they hold: the data's own tests cover them


def test_every_no_effect_data_field_is_flipped():
    from lth_lightning.config import NO_EFFECT

    marked = {f.name for f in dataclasses.fields(DataConfig) if f.metadata == NO_EFFECT}
    assert marked == set(LOADER_FLIPS) | NOT_ON_CPU | PATHS


def _pgd_stage(tmp_path: Path, name: str, threads: int | None = None, **data: object):
    """A 3-epoch PGD stage (random start, a validation robust number each epoch), run as the pipelines do."""
    from lth_lightning.config import AttackConfig, Config, EvalConfig, ModelConfig, OptimConfig, TrainerConfig
    from lth_lightning.stages.identity import Stage
    from lth_lightning.stages.runner import make_module, run_stage

    cfg = Config(seed=3, data=DataConfig(name="digits", batch_size=64, train_subset=384, **data),
                 model=ModelConfig(name="lenet"), optim=OptimConfig(lr=0.05),
                 attack=AttackConfig(name="pgd", eps=0.1, steps=2, random_start=True),
                 eval=EvalConfig(val_robust_samples=96, steps=2),
                 trainer=TrainerConfig(max_epochs=3, accelerator="cpu", enable_progress_bar=False, num_threads=threads))
    stage = Stage("train", cfg)
    dm = build_datamodule(cfg.data)
    module = make_module(cfg, dm.info)
    result = run_stage(stage, tmp_path / name, module, dm, test=True)
    return stage.identity, result, module.model.state_dict()


@pytest.mark.parametrize(("field", "value"), LOADER_FLIPS.items())
def test_loader_settings_change_no_trained_weight(tmp_path, field, value):
    """From epoch 2 on as well: the loaders draw nothing from the RNG the attacks' random starts use."""
    base_id, base, base_w = _pgd_stage(tmp_path, "base")
    flip_id, flip, flip_w = _pgd_stage(tmp_path, "flip", **{field: value})
    assert flip_id == base_id  # NO_EFFECT: the same cached stage ...
    assert [(h.val_clean, h.val_robust) for h in flip.history] == [(h.val_clean, h.val_robust) for h in base.history]
    assert flip.test == base.test  # ... so the same numbers, bit for bit
    assert all(torch.equal(v, flip_w[k]) for k, v in base_w.items())


def test_the_cpu_thread_count_is_part_of_a_stages_identity(tmp_path):
    """#31: float sums run in another order on another thread count, so a 1-thread and a 2-thread run of the same
    PGD stage are different stages (a cache never serves one to the other); the same count reproduces, bit for bit,
    and an unset count is the count it resolves to."""
    before = torch.get_num_threads()
    try:
        one_id, one, one_w = _pgd_stage(tmp_path, "one", threads=1)
        two_id, _, _ = _pgd_stage(tmp_path, "two", threads=2)
        again_id, again, again_w = _pgd_stage(tmp_path, "again", threads=1)
        torch.set_num_threads(1)
        unset_id, _, _ = _pgd_stage(tmp_path, "unset")
    finally:
        torch.set_num_threads(before)
    assert one_id != two_id and unset_id == one_id == again_id
    assert [(h.val_clean, h.val_robust) for h in again.history] == [(h.val_clean, h.val_robust) for h in one.history]
    assert again.test == one.test
    assert all(torch.equal(v, again_w[k]) for k, v in one_w.items())


def test_on_device_sets_in_memory_which_the_identity_holds():
    """The GPU path cuts in-memory batches: a stage run with data.on_device is an in_memory stage."""
    from lth_lightning.config import Config
    from lth_lightning.stages.identity import Stage

    gpu, host = DataConfig(on_device=True), DataConfig(in_memory=True)
    assert gpu.in_memory
    assert Stage("train", Config(data=gpu)).identity == Stage("train", Config(data=host)).identity
    assert Stage("train", Config(data=gpu)).identity != Stage("train", Config()).identity
