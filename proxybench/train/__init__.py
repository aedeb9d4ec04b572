"""Training: optimizers (SAM, ASAM), short training and evaluation loops, corruption error.

Public API::

    from proxybench.train import SAM, ASAM, frozen_bn_stats, train, evaluate, ImageBatches, holdout_split
"""

from proxybench.train.loop import (
    DEFAULT_RHO,
    OPTIMIZERS,
    SCHEDULES,
    ImageBatches,
    Split,
    TrainResult,
    evaluate,
    held_out_batch,
    holdout_split,
    make_optimizer,
    train,
)
from proxybench.train.sam import ASAM, SAM, frozen_bn_stats, samsung_unscaled

__all__ = [
    "ASAM",
    "DEFAULT_RHO",
    "ImageBatches",
    "OPTIMIZERS",
    "SAM",
    "SCHEDULES",
    "Split",
    "TrainResult",
    "evaluate",
    "frozen_bn_stats",
    "held_out_batch",
    "holdout_split",
    "make_optimizer",
    "samsung_unscaled",
    "train",
]
