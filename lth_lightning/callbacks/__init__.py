"""Lightning callbacks: a lottery ticket in any module (``LotteryTicket``), mask enforcement, weight snapshots (θ0/θk),
pruning, overfitting watch, epoch lines."""

from lth_lightning.callbacks.early_bird import EarlyBird
from lth_lightning.callbacks.masking import MaskEnforcer
from lth_lightning.callbacks.overfit import CatastrophicOverfitting
from lth_lightning.callbacks.progress import EpochLine
from lth_lightning.callbacks.pruning import PruneCallback, WeightSnapshot
from lth_lightning.callbacks.ticket import LotteryTicket

__all__ = ["CatastrophicOverfitting", "EarlyBird", "EpochLine", "LotteryTicket", "MaskEnforcer", "PruneCallback",
           "WeightSnapshot"]
