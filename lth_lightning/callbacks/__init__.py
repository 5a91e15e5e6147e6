"""Lightning callbacks: mask enforcement, weight snapshots (θ0/θk), pruning, overfitting watch, epoch lines."""

from lth_lightning.callbacks.early_bird import EarlyBird
from lth_lightning.callbacks.masking import MaskEnforcer
from lth_lightning.callbacks.overfit import CatastrophicOverfitting
from lth_lightning.callbacks.progress import EpochLine
from lth_lightning.callbacks.pruning import PruneCallback, WeightSnapshot

__all__ = ["CatastrophicOverfitting", "EarlyBird", "EpochLine", "MaskEnforcer", "PruneCallback", "WeightSnapshot"]
