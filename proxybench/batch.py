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

    def resized(self, resolution: int | None) -> "ProxyBatch":
        """The images at ``resolution``² (bilinear, as :func:`resize_images`); itself when already there or None."""
        if resolution is None or tuple(self.inputs.shape[-2:]) == (resolution, resolution):
            return self
        return ProxyBatch(resize_images(self.inputs, resolution), self.targets, self.num_classes)


def resize_images(inputs: torch.Tensor, resolution: int) -> torch.Tensor:
    """Normalised ``(N, C, H, W)`` images resized to ``resolution``² (bilinear, no corner alignment).

    For spaces whose architectures include the input resolution (OFA): the proxies and the
    short trainings see the images at the architecture's resolution, as its evaluation does
    (:mod:`proxybench.evaluation` resizes the uint8 images with PIL instead, then corrupts them).
    """
    return torch.nn.functional.interpolate(inputs, size=(int(resolution), int(resolution)), mode="bilinear",
                                           align_corners=False)


def input_resolution(space: object, arch: str) -> int | None:
    """The input side ``arch`` of ``space`` expects, or None when the space has no such gene."""
    fn = getattr(space, "input_resolution", None)
    return int(fn(arch)) if callable(fn) else None
