"""CIFAR-style networks with the dataset's normalisation folded in (inputs stay in [0, 1])."""

from lth_lightning.models.registry import build_model, classifier_name

__all__ = ["build_model", "classifier_name"]
