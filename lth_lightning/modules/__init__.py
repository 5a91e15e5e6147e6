"""LightningModules: one classifier module covers dense, pruned and adversarially trained nets."""

from lth_lightning.modules.classifier import Classifier
from lth_lightning.modules.schedule import lr_factor

__all__ = ["Classifier", "lr_factor"]
