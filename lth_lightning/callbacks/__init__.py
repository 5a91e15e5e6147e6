"""Lightning callbacks: mask enforcement, weight snapshots (θ0/θk), pruning, overfitting watch."""

from lth_lightning.callbacks.masking import MaskEnforcer
from lth_lightning.callbacks.overfit import CatastrophicOverfitting
from lth_lightning.callbacks.pruning import PruneCallback, WeightSnapshot

__all__ = ["CatastrophicOverfitting", "MaskEnforcer", "PruneCallback", "WeightSnapshot"]
