"""The data a proxy sees: one fixed batch of normalised images and their labels."""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["ProxyBatch"]


@dataclass(frozen=True)
class ProxyBatch:
    """A batch of normalised images with labels.

    Attributes:
        inputs: ``float32`` tensor ``(N, C, H, W)``, already normalised.
        targets: ``int64`` tensor ``(N,)`` of class indices.
        num_classes: Number of classes of the dataset (size of the network's head).
    """

    inputs: torch.Tensor
    targets: torch.Tensor
    num_classes: int

    def __post_init__(self) -> None:
        if self.inputs.dim() != 4:
            raise ValueError(f"ProxyBatch.inputs must be (N, C, H, W), got shape {tuple(self.inputs.shape)}")
        if self.targets.shape != (self.inputs.shape[0],):
            raise ValueError(
                f"ProxyBatch.targets must have shape ({self.inputs.shape[0]},), got {tuple(self.targets.shape)}"
            )

    @property
    def size(self) -> int:
        return int(self.inputs.shape[0])

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image."""
        return tuple(self.inputs.shape[1:])  # type: ignore[return-value]

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> "ProxyBatch":
        """A copy on ``device`` with inputs cast to ``dtype`` (targets stay int64)."""
        return ProxyBatch(self.inputs.to(device=device, dtype=dtype), self.targets.to(device), self.num_classes)
