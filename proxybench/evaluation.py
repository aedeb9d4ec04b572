"""Out-of-distribution evaluation: clean error, error under each CIFAR-10-C corruption, CE and mCE.

:func:`evaluate_ood` runs a network over the first ``n_images`` test images, clean and under
every requested (corruption, severity) of :mod:`proxybench.data.corruptions`, generated on
the fly at the network's input resolution, and returns an :class:`OODResult`.

**Images.** The same images are used for every corruption: ``indices`` (default the first
``n_images`` of the source, so ``n_images=10000`` is the whole CIFAR test set). When
``resolution`` differs from the images' size, each image is first resized with PIL's bilinear
filter (what torchvision's ``Resize((r, r))`` does to a PIL image) and then corrupted at that
resolution, as FlatNAS's code does (``transforms.Resize((res, res))`` followed by the
corruption; DESIGN.md §7). The clean error is measured on the resized images too. Every image
is corrupted with its own random stream keyed by ``(seed, corruption, severity, dataset
index)`` (:func:`proxybench.data.corruptions.image_rng`), so results do not depend on
``batch_size``.

**CE and mCE, following FlatNAS's code.** With ``E_{s,c}`` the top-1 error in percent under
corruption ``c`` at severity ``s``:

* ``CE_c`` = mean over the severities of ``E_{s,c}`` (:meth:`OODResult.ce`), in percent;
* ``mCE`` = mean over the corruptions of ``CE_c`` (:attr:`OODResult.mce`), in percent;
* no AlexNet normalisation (Hendrycks & Dietterich divide by AlexNet's CE; FlatNAS does not).

The FlatNAS paper writes ``CE_c = Σ_s E_{s,c}`` (so a sum over five severities, "percent × 5"),
but its code averages: ``compute_mCE`` in ``evaluate_cifar10c.py`` of
github.com/AI-Tech-Research-Lab/Robustness (the module CNAS imports as
``evaluators.evaluate_cifar10c``/``Robustness.evaluate_cifar10c``) stores
``scores['mean'] = np.mean(errs)`` per corruption, printed as "CE (unnormalized) (%)", over
``errs = [100 - acc1 for severity in 1..5]``. proxybench follows the code; the paper's sum is
:meth:`OODResult.ce` with ``reduce="sum"`` and :attr:`OODResult.mce_sum` (= 5 × ``mce`` with all
five severities). FlatNAS's own plots show, per severity, the mean error over the corruptions
(the black line of :meth:`OODResult.plot`). Two quirks of that code are not copied: it
normalises the corrupted images with ImageNet's mean/std whatever the training used (here the
``normalization`` argument, default the statistics NAS-Bench-201 trained with), and it
evaluates the whole 10,000-image test set (here ``n_images``, recorded with every row).

**Output.** :meth:`OODResult.table` is a long table, one row per measured error: the clean
row (``corruption = "none"``, ``severity = 0``) and one per (corruption, severity), with the
label, dataset, split, resolution, error (percent), n, n_wrong, seed and the settings as JSON;
:meth:`OODResult.write_parquet` also puts the settings and the CE/mCE summary into the
Parquet key-value metadata (key ``proxybench.ood``). :meth:`OODResult.plot` writes a PNG of
error against severity per corruption.

Example:
    >>> source = load_images("cifar10", "test", data_dir="~/data")  # doctest: +SKIP
    >>> result = evaluate_ood(net, source, resolution=32, n_images=1000, seed=0)  # doctest: +SKIP
    >>> result.clean_error, result.mce  # doctest: +SKIP
    (8.9, 27.4)
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from PIL import Image
from torch import nn

from proxybench.data.corruptions import (
    CORRUPTIONS,
    CORRUPTIONS_VERSION,
    SEVERITIES,
    corrupt,
    parse_corruptions,
)
from proxybench.data.sources import ImageSource
from proxybench.errors import InvalidSettingError

__all__ = ["CLEAN", "OOD_SCHEMA", "OODResult", "evaluate_ood", "parse_severities"]

#: ``corruption`` value of the clean row (its ``severity`` is 0).
CLEAN = "none"

#: Columns of the table :meth:`OODResult.table` returns and :meth:`OODResult.write_parquet` writes.
OOD_SCHEMA = pa.schema([
    pa.field("label", pa.string(), nullable=False),
    pa.field("dataset", pa.string(), nullable=False),
    pa.field("split", pa.string(), nullable=False),
    pa.field("resolution", pa.int32(), nullable=False),
    pa.field("corruption", pa.string(), nullable=False),
    pa.field("severity", pa.int8(), nullable=False),
    pa.field("error", pa.float64(), nullable=False),
    pa.field("n", pa.int64(), nullable=False),
    pa.field("n_wrong", pa.int64(), nullable=False),
    pa.field("seed", pa.int64(), nullable=False),
    pa.field("settings", pa.string(), nullable=False),
])  # fmt: skip

_METADATA_KEY = "proxybench.ood"
_DPI = 100
_PNG_METADATA = {"Software": None}


def parse_severities(spec: str | int | Sequence[int] | None) -> tuple[int, ...]:
    """Severities from ``None`` (1..5), an int, a list, or a comma list such as ``"1,3,5"``.

    Raises:
        InvalidSettingError: A value is not an integer in 1..5, or none is given.
    """
    if spec is None:
        return SEVERITIES
    if isinstance(spec, str):
        parts = [p.strip() for p in spec.split(",") if p.strip()]
    elif isinstance(spec, (int, np.integer)):
        parts = [spec]
    else:
        parts = list(spec)
    values: set[int] = set()
    for part in parts:
        try:
            value = int(part)
            ok = str(part).strip() == str(value) or isinstance(part, (int, np.integer))
        except (TypeError, ValueError):
            ok = False
        if not ok or value not in SEVERITIES:
            raise InvalidSettingError(f"severities must be integers in 1..5, got {part!r}")
        values.add(value)
    if not values:
        raise InvalidSettingError("no severity given; use e.g. 1,2,3,4,5")
    return tuple(sorted(values))


@dataclass(frozen=True)
class OODResult:
    """Errors of one network, clean and under each (corruption, severity), in percent.

    Attributes:
        label: Names the network or checkpoint (the ``label`` column).
        dataset, split: Of the images.
        resolution: Input side in pixels the network saw (images resized, then corrupted).
        seed: Corruption seed.
        n: Number of images (the same ones for every error).
        clean_error: Top-1 error on the clean images.
        errors: ``(corruption, severity)`` → top-1 error.
        n_wrong: Like ``errors`` plus ``(CLEAN, 0)``, the counts of wrong predictions.
        settings: Everything else that changes the numbers (recorded in each row).
    """

    label: str
    dataset: str
    split: str
    resolution: int
    seed: int
    n: int
    clean_error: float
    errors: dict[tuple[str, int], float]
    n_wrong: dict[tuple[str, int], int]
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def corruptions(self) -> list[str]:
        seen = {c for c, _ in self.errors}
        return [c for c in CORRUPTIONS if c in seen]

    @property
    def severities(self) -> tuple[int, ...]:
        return tuple(sorted({s for _, s in self.errors}))

    def ce(self, reduce: str = "mean") -> dict[str, float]:
        """Corruption error per corruption over the evaluated severities, in percent.

        Args:
            reduce: ``"mean"`` (FlatNAS's code, the default) or ``"sum"`` (its paper's
                ``Σ_s E_{s,c}``).
        """
        if reduce not in ("mean", "sum"):
            raise InvalidSettingError(f"reduce must be 'mean' or 'sum', got {reduce!r}")
        out: dict[str, float] = {}
        for c in self.corruptions:
            values = [self.errors[(c, s)] for s in self.severities if (c, s) in self.errors]
            out[c] = float(np.sum(values) if reduce == "sum" else np.mean(values))
        return out

    @property
    def mce(self) -> float:
        """Mean over the corruptions of :meth:`ce` (mean over severities): FlatNAS's code."""
        values = list(self.ce("mean").values())
        return float(np.mean(values)) if values else math.nan

    @property
    def mce_sum(self) -> float:
        """Mean over the corruptions of the severity *sum* (the FlatNAS paper's formula)."""
        values = list(self.ce("sum").values())
        return float(np.mean(values)) if values else math.nan

    def mean_error_by_severity(self) -> dict[int, float]:
        """Mean error over the corruptions at each severity (what FlatNAS's plots show)."""
        return {
            s: float(np.mean([self.errors[(c, s)] for c in self.corruptions if (c, s) in self.errors]))
            for s in self.severities
        }

    def summary(self) -> dict[str, Any]:
        """Clean error, CE per corruption (mean and sum), mCE and the per-severity means."""
        return {
            "clean_error": self.clean_error,
            "mce": self.mce,
            "mce_sum": self.mce_sum,
            "ce": self.ce("mean"),
            "ce_sum": self.ce("sum"),
            "mean_error_by_severity": {str(k): v for k, v in self.mean_error_by_severity().items()},
            "ce_definition": "CE_c = mean over severities of the top-1 error (percent), no AlexNet "
            "normalisation (FlatNAS code); ce_sum/mce_sum = the paper's sum over severities",
        }

    def table(self) -> pa.Table:
        """The long table (:data:`OOD_SCHEMA`): the clean row, then one row per (corruption, severity)."""
        settings = json.dumps(self.settings, sort_keys=True, default=str)
        keys = [(CLEAN, 0)] + [(c, s) for c in self.corruptions for s in self.severities if (c, s) in self.errors]
        rows = {name: [] for name in OOD_SCHEMA.names}
        for c, s in keys:
            rows["label"].append(self.label)
            rows["dataset"].append(self.dataset)
            rows["split"].append(self.split)
            rows["resolution"].append(self.resolution)
            rows["corruption"].append(c)
            rows["severity"].append(s)
            rows["error"].append(self.clean_error if c == CLEAN else self.errors[(c, s)])
            rows["n"].append(self.n)
            rows["n_wrong"].append(self.n_wrong[(c, s)])
            rows["seed"].append(self.seed)
            rows["settings"].append(settings)
        return pa.Table.from_pydict(rows, schema=OOD_SCHEMA)

    def write_parquet(self, path: str | Path) -> Path:
        """Write :meth:`table` to ``path`` (through a temporary file and a rename), summary in the metadata."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        table = self.table()
        meta = {"settings": self.settings, "summary": self.summary(), "label": self.label}
        table = table.replace_schema_metadata({_METADATA_KEY: json.dumps(meta, sort_keys=True, default=str)})
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        try:
            pq.write_table(table, tmp)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return path

    def figure(self) -> Any:
        """A matplotlib :class:`~matplotlib.figure.Figure` (Agg canvas) of error against severity."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        figure = Figure(figsize=(7.5, 4.8), dpi=_DPI)
        FigureCanvasAgg(figure)
        ax = figure.add_subplot(1, 1, 1)
        severities = list(self.severities)
        colors = _colors(len(self.corruptions))
        for color, c in zip(colors, self.corruptions):
            ys = [self.errors.get((c, s), math.nan) for s in severities]
            ax.plot(severities, ys, marker="o", markersize=3, linewidth=1.2, color=color, label=c)
        means = self.mean_error_by_severity()
        ax.plot(severities, [means[s] for s in severities], marker="s", linewidth=2.6, color="black",
                label=f"mean (mCE {self.mce:.2f})")  # fmt: skip
        ax.axhline(self.clean_error, color="0.4", linestyle="--", linewidth=1.0, label=f"clean {self.clean_error:.2f}")
        ax.set_xticks(severities)
        ax.set_xlabel("severity")
        ax.set_ylabel("top-1 error (%)")
        ax.set_title(f"{_short(self.label)} · {self.dataset} · {self.resolution}px · n={self.n} · seed {self.seed}",
                     fontsize=9)  # fmt: skip
        ax.grid(True, linewidth=0.4, alpha=0.5)
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
        figure.subplots_adjust(left=0.09, right=0.70, top=0.92, bottom=0.11)
        return figure

    def plot(self, path: str | Path) -> Path:
        """Write the PNG of :meth:`figure` (no timestamp or software tag: same inputs, same bytes)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.figure().savefig(path, dpi=_DPI, format="png", metadata=_PNG_METADATA)
        return path


def _colors(n: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab20"]
    order = list(range(0, 20, 2)) + list(range(1, 20, 2))  # the ten dark hues first, then the light ones
    return [cmap(order[i % 20]) for i in range(n)]


def _short(label: str, limit: int = 60) -> str:
    return label if len(label) <= limit else label[: limit - 3] + "..."


def _resize(images: np.ndarray, resolution: int) -> np.ndarray:
    """PIL bilinear resize to ``resolution``² (torchvision ``Resize((r, r))`` on a PIL image)."""
    if images.shape[1] == resolution and images.shape[2] == resolution:
        return images
    out = np.empty((images.shape[0], resolution, resolution, 3), dtype=np.uint8)
    for k in range(images.shape[0]):
        out[k] = np.asarray(Image.fromarray(images[k]).resize((resolution, resolution), Image.Resampling.BILINEAR))
    return out


def _to_tensor(images: np.ndarray, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 ``(n, H, W, 3)`` → normalised float32 ``(n, 3, H, W)`` (ToTensor + Normalize)."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).to(torch.float32).div(255)
    return x.sub_(mean).div_(std).contiguous()


def _default_normalization(dataset: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    from proxybench.data.batches import normalization_for
    from proxybench.presets import get_preset

    mean, std = normalization_for(get_preset("proxybench"), dataset)
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)


def evaluate_ood(
    net: nn.Module,
    source: ImageSource,
    *,
    resolution: int | None = None,
    corruptions: str | Sequence[str] | None = None,
    severities: str | Sequence[int] | None = None,
    n_images: int = 1000,
    batch_size: int = 200,
    seed: int = 0,
    device: str | torch.device | None = None,
    normalization: tuple[Sequence[float], Sequence[float]] | None = None,
    label: str = "net",
    indices: Sequence[int] | np.ndarray | None = None,
    settings: dict[str, Any] | None = None,
    progress: bool = False,
) -> OODResult:
    """Clean and corruption top-1 errors of ``net`` on the same images of ``source``.

    Args:
        net: Any module mapping normalised ``(N, 3, R, R)`` float tensors to logits
            ``(N, num_classes)``. It is moved to ``device`` and run in eval mode (its
            training flag is restored afterwards).
        source: Labelled images, normally the test split (:func:`proxybench.data.load_images`).
        resolution: Input side R; ``None`` keeps the images' size. Images are resized
            (bilinear) to R, then corrupted at R.
        corruptions: Names, groups or ``"all"`` (:func:`~proxybench.data.corruptions.parse_corruptions`);
            ``None`` = all 15.
        severities: Subset of 1..5 (``None`` = all five).
        n_images: Use the first ``n_images`` images (fewer if the source is smaller).
        batch_size: Images per forward pass (does not change the results).
        seed: Corruption seed (non-negative).
        device: Torch device; ``None`` = CUDA when available, else the CPU.
        normalization: ``(mean, std)`` of [0, 1] pixels; ``None`` = the ``proxybench``
            preset's statistics for ``source.dataset`` (NAS-Bench-201's training statistics).
        label: The ``label`` column (architecture string or checkpoint name).
        indices: Explicit image indices instead of the first ``n_images``.
        settings: Extra settings to record (e.g. where the weights came from).
        progress: Show a progress bar on stderr.

    Returns:
        An :class:`OODResult`.

    Raises:
        UnknownCorruptionError: A corruption name is unknown.
        InvalidSettingError: Bad severities, ``n_images``, ``batch_size``, ``seed``,
            ``resolution`` (< 32) or normalisation.

    Example:
        >>> result = evaluate_ood(net, source, corruptions="noise", n_images=100)  # doctest: +SKIP
        >>> result.write_parquet("results/ood/net.parquet")  # doctest: +SKIP
    """
    names = parse_corruptions(corruptions)
    sev = parse_severities(severities)
    if isinstance(seed, bool) or int(seed) < 0:
        raise InvalidSettingError(f"seed must be a non-negative integer, got {seed!r}")
    if int(batch_size) < 1:
        raise InvalidSettingError(f"batch_size must be at least 1, got {batch_size}")
    if indices is None:
        if int(n_images) < 1:
            raise InvalidSettingError(f"n_images must be at least 1, got {n_images}")
        idx = np.arange(min(int(n_images), len(source)), dtype=np.int64)
    else:
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    if idx.size == 0:
        raise InvalidSettingError(f"no images to evaluate in {source.origin}")
    native = source.images(idx[:1]).shape[1]
    res = int(native if resolution is None else resolution)
    if res < 32:
        raise InvalidSettingError(f"resolution must be at least 32 px (the corruptions' frame), got {res}")
    if normalization is None:
        mean_v, std_v = _default_normalization(source.dataset)
    else:
        mean_v, std_v = (tuple(float(v) for v in normalization[0]), tuple(float(v) for v in normalization[1]))
        if len(mean_v) != 3 or len(std_v) != 3 or any(v == 0 for v in std_v):
            raise InvalidSettingError(f"normalization needs 3 means and 3 non-zero stds, got {normalization}")
    dev = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    mean_t = torch.tensor(mean_v, dtype=torch.float32).view(1, 3, 1, 1)
    std_t = torch.tensor(std_v, dtype=torch.float32).view(1, 3, 1, 1)

    keys = [(CLEAN, 0)] + [(c, s) for c in names for s in sev]
    wrong = {key: 0 for key in keys}
    was_training = net.training
    net.to(dev)
    net.eval()
    from tqdm.auto import tqdm

    bar = tqdm(total=len(keys) * int(idx.size), unit="img", disable=not progress, desc="evaluate")
    try:
        with torch.no_grad():
            for start in range(0, idx.size, int(batch_size)):
                chunk = idx[start : start + int(batch_size)]
                images = _resize(source.images(chunk), res)
                targets = torch.from_numpy(source.labels[chunk].astype(np.int64)).to(dev)
                for c, s in keys:
                    batch = images if c == CLEAN else corrupt(images, c, s, int(seed), indices=chunk)
                    logits = net(_to_tensor(batch, mean_t, std_t).to(dev))
                    if isinstance(logits, (tuple, list)):
                        logits = logits[-1]  # (features, logits) networks
                    wrong[(c, s)] += int((logits.argmax(dim=1) != targets).sum().item())
                    bar.update(len(chunk))
    finally:
        bar.close()
        net.train(was_training)

    n = int(idx.size)
    contiguous = bool(np.array_equal(idx, np.arange(n)))
    recorded = {
        "corruptions_version": CORRUPTIONS_VERSION,
        "corruption_constants": "CIFAR-10-C (make_cifar_c.py)",
        "images": f"first {n}" if contiguous else f"{n} given indices",
        "native_size": int(native),
        "resize": "PIL bilinear, then corrupt" if res != native else "none",
        "normalization": {"mean": list(mean_v), "std": list(std_v)},
        "batch_size": int(batch_size),
        "device": dev.type,
        "data_origin": source.origin,
        "ce": "mean over severities (FlatNAS code), no AlexNet normalisation",
        **(settings or {}),
    }
    return OODResult(
        label=str(label),
        dataset=source.dataset,
        split=source.split,
        resolution=res,
        seed=int(seed),
        n=n,
        clean_error=100.0 * wrong[(CLEAN, 0)] / n,
        errors={key: 100.0 * wrong[key] / n for key in keys if key[0] != CLEAN},
        n_wrong=dict(wrong),
        settings=recorded,
    )
