"""lth_lightning: boosting lottery tickets for cheaper adversarial training."""

from lth_lightning._compat import ensure_torchvision

ensure_torchvision()  # before lightning/torchmetrics import torchvision

__version__ = "0.1.0"
