"""LightningDataModules. Inputs are float tensors in [0, 1]; normalisation lives in the model."""

from lth_lightning.data.datamodule import DataInfo, ImageDataModule, build_datamodule

__all__ = ["DataInfo", "ImageDataModule", "build_datamodule"]
