"""The proxy batch: which images a proxy sees, drawn reproducibly from an :class:`ImageSource`.

How the two reference implementations draw their batch (read at zero-cost-nas ``a43bfbc``
and NASLib ``Develop``; both take **one new batch per architecture** from a shuffled,
augmented training loader):

* **zero-cost-nas / foresight** (Abdelfattah et al. 2021). ``nasbench2_pred.py`` calls
  ``torch.manual_seed(42)`` once (``--seed 42``), builds the loaders with
  ``get_cifar_dataloaders(64, 64, dataset, 2)`` (``--batch_size 64``) and, for every
  architecture, ``predictive.find_measures(net, train_loader, ("random", 1, n_classes))``.
  ``foresight/pruners/predictive.py`` turns ``dataload="random"`` with ``dataload_info=1``
  into ``p_utils.get_some_data(train_loader, num_batches=1)``: ``next(iter(loader))``, one
  fresh batch from the ``shuffle=True`` loader per architecture. ``foresight/dataset.py``
  uses, for CIFAR-10 *and* CIFAR-100, mean ``(0.4914, 0.4822, 0.4465)``, std
  ``(0.2023, 0.1994, 0.2010)`` and the training transform ``RandomCrop(32, padding=4)`` →
  ``Resize(32)`` (a no-op at 32 px) → ``RandomHorizontalFlip()`` → ``ToTensor`` →
  ``Normalize``, over the whole 50,000-image training set. The alternative
  ``--dataload grasp`` (``p_utils.get_some_data_grasp``) fills ``dataload_info`` images per
  class instead; it is not the default and proxybench does not implement it.
* **NASLib / NAS-Bench-Suite-Zero** (Krishnakumar et al. 2022).
  ``naslib/runners/zc/benchmarks/runner.py`` calls ``utils.set_seed(config.seed)`` and
  ``utils.get_train_val_loaders(config)`` once, then ``ZeroCost.query(graph, train_loader)``
  per architecture; ``naslib/predictors/zerocost.py`` fixes ``dataload="random"``,
  ``num_imgs_or_batches=1``, so again ``get_some_data`` takes one fresh batch per
  architecture (``naslib/predictors/pruners/p_utils.py``). The seed is 9000
  (``scripts/zc/bash_scripts/benchmarks/create_configs_nb201.sh`` passes it as
  ``start_seed``); ``naslib/runners/zc/zc_config.yaml`` and ``scripts/zc/create_configs_*.py``
  set ``batch_size: 32``, ``train_portion: 0.7``, ``cutout: false``.
  ``naslib/utils/dataset.py`` ``get_train_val_loaders`` samples with
  ``SubsetRandomSampler(indices[:floor(0.7 * 50000)])`` (the first 35,000 training images in
  file order; the shared Parquet copy is row-shuffled, so its prefix is a different 70 %)
  and ``_data_transforms_cifar10`` uses mean
  ``(0.49139968, 0.48215827, 0.44653124)``, std ``(0.24703233, 0.24348505, 0.26158768)``,
  ``RandomCrop(32, padding=4)`` → ``RandomHorizontalFlip()`` (Cutout only when
  ``cutout`` is true, which it is not here). For CIFAR-100, ``_data_transforms_cifar100``
  switches to mean ``(0.5071, 0.4865, 0.4409)``, std ``(0.2673, 0.2564, 0.2762)``.

What proxybench does instead, and why:

* The pixels are drawn with ``numpy.random.default_rng(seed)`` (indices without
  replacement, then crop offsets, then flips), not with torch's global generator, so a
  batch depends only on ``(seed, arch)`` and never on how many architectures ran before it
  in the same process. The references' exact images cannot be reproduced anyway (their
  batch depends on the loader's position in torch's random stream); the presets reproduce
  their *distribution* of batches.
* "A new batch per architecture" becomes a batch seeded by a SHA-256 hash of
  ``(seed, arch)`` (:func:`arch_batch_seed`), so resuming, sharding or reordering a run
  gives every architecture the same batch it would have had.
* Normalisation follows ``torchvision.transforms.ToTensor`` + ``Normalize`` operation by
  operation in float32 (``x / 255``, ``- mean``, ``/ std``), so it is bit-identical to the
  references' pipelines; padding is zero on uint8 pixels, as ``RandomCrop(padding=4)``.
* The per-dataset statistics the references switch to for CIFAR-100 live in
  :data:`DATASET_NORMALIZATION`; :func:`normalization_for` picks them, and
  :meth:`BatchProvider.settings` reports the values actually used.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from proxybench.errors import InvalidSettingError, UnknownDatasetError
from proxybench.batch import ProxyBatch
from proxybench.data.sources import DATASETS, ImageSource
from proxybench.presets import Preset

__all__ = [
    "AUGMENT_PADDING",
    "DATASET_NORMALIZATION",
    "DATASET_PADDING",
    "IMAGENET16_STATS",
    "BatchProvider",
    "NoImages",
    "arch_batch_seed",
    "draw_indices",
    "draw_proxy_batch",
    "normalization_for",
    "padding_for",
]

#: Zero padding of the random crop (CIFAR's ``RandomCrop(32, padding=4)`` in both references).
AUGMENT_PADDING = 4

_Stats = tuple[tuple[float, float, float], tuple[float, float, float]]

#: ``{preset name: {dataset: (mean, std)}}`` where a reference's statistics depend on the
#: dataset; a preset's own ``mean``/``std`` (its CIFAR-10 values) apply everywhere else.
#: ``proxybench``: xautodl ``get_dataset_with_transform.py`` (what NAS-Bench-201 trained with);
#: ``suite-zero``: NASLib ``naslib/utils/dataset.py`` ``_data_transforms_cifar100``;
#: ``zc-nas`` uses the same values for both CIFARs (``foresight/dataset.py``).
#: ImageNet16-120 (every preset): NB201's statistics, xautodl ``get_datasets`` (``name.startswith
#: ("ImageNet16")``) and NASLib ``_data_transforms_ImageNet_16_120`` alike; zero-cost-nas has no
#: ImageNet16 loader of its own to differ from.
IMAGENET16_STATS: _Stats = (
    (122.68 / 255, 116.66 / 255, 104.01 / 255),
    (63.22 / 255, 61.26 / 255, 65.09 / 255),
)

DATASET_NORMALIZATION: dict[str, dict[str, _Stats]] = {
    "proxybench": {
        "cifar100": (
            (129.3 / 255, 124.1 / 255, 112.4 / 255),
            (68.2 / 255, 65.4 / 255, 70.4 / 255),
        ),
        "ImageNet16-120": IMAGENET16_STATS,
    },
    "suite-zero": {
        "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
        "ImageNet16-120": IMAGENET16_STATS,
    },
    "zc-nas": {
        "ImageNet16-120": IMAGENET16_STATS,
    },
}

#: Zero padding of the random crop where a dataset's references differ from CIFAR's 4:
#: ImageNet16's ``RandomCrop(16, padding=2)`` (xautodl and NASLib).
DATASET_PADDING: dict[str, int] = {"ImageNet16-120": 2}


def padding_for(dataset: str) -> int:
    """Zero padding of the augmentation's random crop for ``dataset`` (4, ImageNet16-120: 2)."""
    return DATASET_PADDING.get(dataset, AUGMENT_PADDING)


def normalization_for(preset: Preset, dataset: str) -> _Stats:
    """The ``(mean, std)`` ``preset`` normalises ``dataset`` with.

    A preset's ``mean``/``std`` fields hold its CIFAR-10 statistics; the references switch
    to dataset-specific values for CIFAR-100 (see :data:`DATASET_NORMALIZATION`).
    """
    override = DATASET_NORMALIZATION.get(preset.name, {}).get(dataset)
    if override is not None:
        return override
    return tuple(preset.mean), tuple(preset.std)  # type: ignore[return-value]


def arch_batch_seed(seed: int, arch: str) -> tuple[int, str]:
    """A batch seed derived from ``(seed, arch)`` and its 8-hex-digit tag.

    SHA-256 rather than ``hash()``: Python salts string hashes per process, and the batch
    must be the same in every process, shard and resumed run.
    """
    digest = hashlib.sha256(f"proxybench-batch\x00{int(seed)}\x00{arch}".encode()).digest()
    return int.from_bytes(digest[:8], "big"), digest[:4].hex()


def draw_indices(n_images: int, *, batch_size: int, train_fraction: float, rng: np.random.Generator) -> np.ndarray:
    """``batch_size`` distinct indices below ``floor(train_fraction * n_images)``.

    Raises:
        InvalidSettingError: ``train_fraction`` is not in ``(0, 1]``, ``batch_size`` < 1, or the
            allowed prefix holds fewer than ``batch_size`` images.
    """
    if not 0.0 < train_fraction <= 1.0:
        raise InvalidSettingError(f"train_fraction must be in (0, 1], got {train_fraction}")
    if batch_size < 1:
        raise InvalidSettingError(f"batch_size must be at least 1, got {batch_size}")
    bound = math.floor(train_fraction * n_images)
    if bound < batch_size:
        raise InvalidSettingError(
            f"cannot draw {batch_size} distinct images from the first {bound} of {n_images} "
            f"(train_fraction={train_fraction}); lower the batch size or use more images"
        )
    return rng.choice(bound, size=batch_size, replace=False).astype(np.int64)


def _augment(images: np.ndarray, rng: np.random.Generator, padding: int = AUGMENT_PADDING) -> np.ndarray:
    """Random crop back to the input size after zero padding, then a random horizontal flip."""
    n, h, w, _ = images.shape
    padded = np.pad(images, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    offsets = rng.integers(0, 2 * padding + 1, size=(n, 2))
    flips = rng.random(n) < 0.5
    out = np.empty_like(images)
    for k in range(n):
        top, left = int(offsets[k, 0]), int(offsets[k, 1])
        crop = padded[k, top : top + h, left : left + w]
        out[k] = crop[:, ::-1] if flips[k] else crop
    return out


def _normalise(images: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 ``(n, H, W, 3)`` → float32 ``(n, 3, H, W)``, as torchvision's ToTensor + Normalize."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).to(torch.float32).div(255)
    m = torch.as_tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.as_tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return x.sub_(m).div_(s).contiguous()


def draw_proxy_batch(
    source: ImageSource,
    *,
    batch_size: int,
    seed: int,
    mean: Sequence[float],
    std: Sequence[float],
    train_fraction: float = 1.0,
    augment: bool = False,
) -> ProxyBatch:
    """Draw a normalised batch from ``source``, determined entirely by ``seed``.

    One ``numpy.random.default_rng(seed)`` draws, in this order, the image indices (without
    replacement, from the first ``floor(train_fraction * len(source))`` images), the crop
    offsets and the flips, so the same arguments always give the same tensors.

    Args:
        source: Images and labels (see :func:`~proxybench.data.load_images`).
        batch_size: Number of images.
        seed: Non-negative seed of the generator.
        mean: Per-channel mean of [0, 1] pixels.
        std: Per-channel standard deviation of [0, 1] pixels.
        train_fraction: Draw only from this leading share of the source (NASLib keeps the
            rest of the training split for validation).
        augment: Zero-pad by 4 (ImageNet16-120: 2, :func:`padding_for`), crop back to the
            input size at a random offset and flip horizontally with probability 0.5, as both
            references' training transforms.

    Returns:
        A :class:`~proxybench.batch.ProxyBatch` with float32 ``(N, 3, H, W)`` inputs and
        int64 targets.

    Raises:
        InvalidSettingError: A negative seed, a bad ``train_fraction`` or ``batch_size``, or
            ``mean``/``std`` without 3 values or with a zero std.

    Example:
        >>> batch = draw_proxy_batch(source, batch_size=64, seed=0,  # doctest: +SKIP
        ...                          mean=(0.49, 0.48, 0.45), std=(0.25, 0.24, 0.26))
    """
    if int(seed) < 0:
        raise InvalidSettingError(f"seed must be non-negative, got {seed}")
    if len(mean) != 3 or len(std) != 3:
        raise InvalidSettingError(f"mean and std need 3 values (RGB), got {len(mean)} and {len(std)}")
    if any(float(v) == 0.0 for v in std):
        raise InvalidSettingError(f"std must not contain zeros, got {tuple(std)}")
    rng = np.random.default_rng(int(seed))
    idx = draw_indices(len(source), batch_size=batch_size, train_fraction=train_fraction, rng=rng)
    images = source.images(idx)
    if augment:
        images = _augment(images, rng, padding_for(source.dataset))
    inputs = _normalise(images, mean, std)
    targets = torch.from_numpy(source.labels[idx].astype(np.int64, copy=True))
    return ProxyBatch(inputs=inputs, targets=targets, num_classes=source.num_classes)


class NoImages:
    """Stands in for an :class:`ImageSource` when no requested proxy reads images.

    It knows what the dataset is (name, split, number of classes, image size: the data
    settings and the network's head do not change) but holds no pixels, so scoring the
    data-free proxies (``params``, ``flops``, ``synflow``, ``zen``, ...) needs no download.
    Its batches (:meth:`placeholder`) have the real batch's shape, dtype and ids, NaN pixels
    and label -1: a proxy that reads them anyway gets a NaN score or an error, never a
    plausible number.

    Args:
        dataset: A key of :data:`~proxybench.data.DATASETS`.
        split: Recorded like an image source's split.
    """

    origin = None
    layout = None
    #: ``(H, W, C)`` of every image of the datasets proxybench knows (CIFAR-10/100).
    image_shape = (32, 32, 3)

    def __init__(self, dataset: str, split: str = "train") -> None:
        if dataset not in DATASETS:
            raise UnknownDatasetError(f"unknown dataset '{dataset}'; choose from {', '.join(DATASETS)}")
        self.dataset, self.split, self.num_classes = dataset, split, DATASETS[dataset]

    def __repr__(self) -> str:
        return f"NoImages(dataset={self.dataset!r}, split={self.split!r})"

    def placeholder(self, batch_size: int) -> ProxyBatch:
        """A batch of ``batch_size`` images' shape with NaN pixels and label -1."""
        h, w, c = self.image_shape
        return ProxyBatch(inputs=torch.full((batch_size, c, h, w), float("nan")),
                          targets=torch.full((batch_size,), -1, dtype=torch.int64), num_classes=self.num_classes)


class BatchProvider:
    """Hands each architecture its proxy batch under a preset's data settings.

    With ``preset.batch_per_arch`` false (the ``proxybench`` default) every architecture
    gets the same batch, drawn once with ``seed`` and cached (id ``fixed-s{seed}``): score
    differences then come from the architectures, not from the data. With it true (both
    references) each architecture gets a batch seeded by :func:`arch_batch_seed`
    (id ``arch-s{seed}-{hex8}``), which no other architecture, run order or shard changes.

    Args:
        source: Images and labels to draw from.
        preset: Supplies ``mean``/``std`` (via :func:`normalization_for`), ``augment``,
            ``train_fraction`` and ``batch_per_arch``.
        seed: Run seed (usually ``preset.seed`` unless the user overrides it).
        batch_size: Images per batch (usually ``preset.batch_size``).

    Example:
        >>> provider = BatchProvider(source, get_preset("zc-nas"), seed=42, batch_size=64)  # doctest: +SKIP
        >>> batch, batch_id = provider.batch_for(arch)  # doctest: +SKIP
    """

    def __init__(self, source: ImageSource | NoImages, preset: Preset, seed: int, batch_size: int) -> None:
        if int(seed) < 0:
            raise InvalidSettingError(f"seed must be non-negative, got {seed}")
        self.source = source
        self.preset = preset
        self.seed = int(seed)
        self.batch_size = int(batch_size)
        self.mean, self.std = normalization_for(preset, source.dataset)
        self._fixed: ProxyBatch | None = None
        if isinstance(source, NoImages):
            return
        # Fail now, not at the first architecture, when the source is too small.
        draw_indices(len(source), batch_size=self.batch_size, train_fraction=preset.train_fraction,
                     rng=np.random.default_rng(0))  # fmt: skip

    @property
    def per_arch(self) -> bool:
        return bool(self.preset.batch_per_arch)

    def batch_id(self, arch: str) -> str:
        """The id :meth:`batch_for` records for ``arch``, without drawing the batch."""
        if not self.per_arch:
            return f"fixed-s{self.seed}"
        return f"arch-s{self.seed}-{arch_batch_seed(self.seed, arch)[1]}"

    def batch_for(self, arch: str) -> tuple[ProxyBatch, str]:
        """The batch ``arch`` is scored on and its ``batch_id``."""
        if not self.per_arch:
            if self._fixed is None:
                self._fixed = self._draw(self.seed)
            return self._fixed, self.batch_id(arch)
        derived, _ = arch_batch_seed(self.seed, arch)
        return self._draw(derived), self.batch_id(arch)

    def settings(self) -> dict[str, Any]:
        """The data settings actually used, for the run's metadata."""
        return {
            "dataset": self.source.dataset,
            "split": self.source.split,
            "data_origin": self.source.origin,
            "data_layout": self.source.layout,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "mean": list(self.mean),
            "std": list(self.std),
            "augment": bool(self.preset.augment),
            "train_fraction": float(self.preset.train_fraction),
            "batch_per_arch": self.per_arch,
        }

    def _draw(self, seed: int) -> ProxyBatch:
        if isinstance(self.source, NoImages):
            return self.source.placeholder(self.batch_size)
        return draw_proxy_batch(
            self.source,
            batch_size=self.batch_size,
            seed=seed,
            mean=self.mean,
            std=self.std,
            train_fraction=self.preset.train_fraction,
            augment=self.preset.augment,
        )
