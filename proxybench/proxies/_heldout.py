"""The evaluation images of proxies on trained weights (flatnas_r, genas)."""

from __future__ import annotations

import torch
from torch import nn

from proxybench.batch import ProxyBatch
from proxybench.errors import InvalidSettingError

__all__ = ["evaluation_images"]


def evaluation_images(net: nn.Module, batch: ProxyBatch, eval_images: int | None,
                      proxy: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``eval_images`` images and labels of ``batch`` (all when None), on ``net``'s device.

    The engine hands these proxies the weight provider's held-out images, so the numbers are
    measured on data the weights never saw.

    Raises:
        InvalidSettingError: The batch holds fewer images than asked for.
    """
    n = batch.size if eval_images is None else int(eval_images)
    if n < 1 or n > batch.size:
        raise InvalidSettingError(
            f"{proxy} evaluates on {n} images but the batch holds {batch.size}; pass a held-out batch of at "
            f"least {n} images (the weight provider's held_out_batch) or lower eval_images")
    device = next(net.parameters()).device
    return batch.inputs[:n].to(device), batch.targets[:n].to(device)
