"""Datasets and proxy batches: find the images a user has, and draw reproducible batches.

Public API::

    from proxybench.data import load_images, draw_proxy_batch, BatchProvider

    source = load_images("cifar10", "train", data_dir="~/data")   # Parquet, folder or torchvision files
    provider = BatchProvider(source, get_preset("proxybench"), seed=0, batch_size=64)
    batch, batch_id = provider.batch_for(arch)
"""

from __future__ import annotations

from proxybench.data.batches import (
    AUGMENT_PADDING,
    DATASET_NORMALIZATION,
    BatchProvider,
    NoImages,
    arch_batch_seed,
    draw_indices,
    draw_proxy_batch,
    normalization_for,
)
from proxybench.data.sources import (
    CIFAR10_CLASSES,
    CIFAR100_CLASSES,
    DATASETS,
    SPLITS,
    ImageSource,
    UnknownDatasetError,
    default_cache_dir,
    load_images,
)

__all__ = [
    "AUGMENT_PADDING",
    "BatchProvider",
    "CIFAR100_CLASSES",
    "CIFAR10_CLASSES",
    "DATASETS",
    "DATASET_NORMALIZATION",
    "ImageSource",
    "NoImages",
    "SPLITS",
    "UnknownDatasetError",
    "arch_batch_seed",
    "default_cache_dir",
    "draw_indices",
    "draw_proxy_batch",
    "load_images",
    "normalization_for",
]
