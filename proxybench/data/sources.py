"""Where the images come from: a user's Parquet export, an image folder or torchvision's files.

Proxies need only a few dozen real images, but the library must find them wherever a user
keeps CIFAR, and it must never ship or fake them. :func:`load_images` looks, in this order:

1. ``data_dir`` (argument, else the ``PROXYBENCH_DATA_DIR`` environment variable), holding
   one of these layouts for ``dataset`` and ``split``:

   * ``<dataset>/<split>.parquet`` (or shards ``<dataset>/<split>-*.parquet``) in the
     Hugging Face export layout: an image column ``img`` (or ``image``) that is a struct
     ``{bytes, path}`` or plain binary holding PNG/JPEG bytes, and an int64 label column
     ``label`` (CIFAR-10) or ``fine_label`` (CIFAR-100 exports);
   * an image folder ``<dataset>/<split>/<class_name>/*.png|jpg|jpeg``;
   * torchvision's own pickled files ``cifar-10-batches-py/`` or ``cifar-100-python/``
     directly in ``data_dir`` or in ``data_dir/<dataset>/``;
   * ImageNet16-120: the downsampled-ImageNet pickles of Chrabaszcz et al. (2017), the files
     NAS-Bench-201 trained on, ``train_data_batch_1`` … ``train_data_batch_10`` (train) and
     ``val_data`` (test), in ``data_dir/ImageNet16-120/`` or ``data_dir/ImageNet16/``. Each is
     a dict with ``data`` (N×3072 uint8, channel-major 16×16) and ``labels`` (1-based,
     1..1000); as NB201's ``ImageNet16(..., use_num_of_class_only=120)`` only labels ≤ 120 are
     kept, shifted to 0..119. There is no download for it (step 3 is skipped).

2. The cache folder (``cache_dir`` argument, else ``PROXYBENCH_CACHE_DIR``, else
   ``~/.cache/proxybench``; the dataset lives in its ``<dataset>/`` subfolder): torchvision's
   files from an earlier download.
3. A torchvision download into that cache folder (``download=True``). Without a network this
   fails, and :class:`~proxybench.errors.DataNotFoundError` says, in one line, what was
   searched and how to point proxybench at local files.

Parquet images stay encoded in memory and are decoded with PIL only when
:meth:`ImageSource.images` asks for them, so drawing a 64-image batch from the 50,000
training images costs milliseconds, not the seconds a full decode would.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from proxybench._naming import natural_key, suggest
from proxybench.errors import DataNotFoundError, UnknownDatasetError

__all__ = [
    "DATASETS",
    "SPLITS",
    "CIFAR10_CLASSES",
    "CIFAR100_CLASSES",
    "IMAGENET16_120_CLASSES",
    "ImageSource",
    "UnknownDatasetError",
    "load_images",
    "default_cache_dir",
]

#: Datasets :func:`load_images` knows, with their number of classes.
DATASETS: dict[str, int] = {"cifar10": 10, "cifar100": 100, "ImageNet16-120": 120}
#: Splits every dataset has.
SPLITS: tuple[str, ...] = ("train", "test")

#: CIFAR-10 class names in label order (torchvision ``batches.meta``, Hugging Face ClassLabel).
CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
#: CIFAR-100 fine class names in label order (torchvision ``meta`` ``fine_label_names``).
CIFAR100_CLASSES: tuple[str, ...] = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle",
    "bottle", "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle",
    "caterpillar", "cattle", "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch",
    "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox",
    "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion",
    "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse", "mushroom",
    "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road",
    "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake",
    "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone",
    "television", "tiger", "tractor", "train", "trout", "tulip", "turtle", "wardrobe", "whale",
    "willow_tree", "wolf", "woman", "worm",
)  # fmt: skip

#: ImageNet16-120's classes by their original 1-based downsampled-ImageNet label (the pickles
#: carry no names); a folder layout names its class folders ``1`` … ``120``.
IMAGENET16_120_CLASSES: tuple[str, ...] = tuple(str(i) for i in range(1, 121))

_STANDARD_CLASSES: dict[str, tuple[str, ...]] = {"cifar10": CIFAR10_CLASSES, "cifar100": CIFAR100_CLASSES,
                                                 "ImageNet16-120": IMAGENET16_120_CLASSES}
#: Datasets without a downloader (their pickles must be local), with the folder names searched.
_IMAGENET16_DIRS: dict[str, tuple[str, ...]] = {"ImageNet16-120": ("ImageNet16-120", "ImageNet16")}
_IMAGENET16_FIX = (
    "no download exists for ImageNet16-120: put the downsampled-ImageNet 16x16 pickles (Chrabaszcz et al. 2017; "
    "train_data_batch_1..10, val_data) in DIR/ImageNet16-120/ and pass --data-dir DIR or set PROXYBENCH_DATA_DIR"
)
_TORCHVISION_DIR: dict[str, str] = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}
_IMAGE_COLUMNS: tuple[str, ...] = ("img", "image")
_LABEL_COLUMNS: tuple[str, ...] = ("label", "fine_label")
_IMAGE_SUFFIXES: frozenset[str] = frozenset({".png", ".jpg", ".jpeg"})
_FIX = (
    "pass --data-dir DIR or set PROXYBENCH_DATA_DIR to a folder holding {d}/{s}.parquet "
    "or {d}/{s}/<class>/*.png, or connect to the internet so torchvision can download it"
)


class ImageSource:
    """A labelled image set whose pixels are produced on demand.

    The images are kept in whatever form their files hold (decoded ``uint8`` arrays,
    encoded PNG/JPEG bytes or file paths) and decoded only for the indices requested,
    so a source over 50,000 images is cheap to open and to draw batches from.

    Attributes:
        dataset: ``"cifar10"``, ``"cifar100"`` or ``"ImageNet16-120"``.
        split: ``"train"`` or ``"test"``.
        labels: ``int64`` array ``(N,)`` of class indices in ``0 .. num_classes-1``.
        num_classes: Size of the network head for this dataset (10, 100 or 120), even when a
            folder holds only some of the classes.
        classes: Class names, ``classes[label]``.
        origin: The file or folder the images came from (recorded with the scores).
        layout: ``"parquet"``, ``"folder"``, ``"torchvision"`` or ``"imagenet16"``.
    """

    def __init__(
        self,
        *,
        dataset: str,
        split: str,
        labels: np.ndarray,
        num_classes: int,
        classes: Sequence[str],
        origin: str,
        layout: str,
        fetch: Callable[[np.ndarray], list[np.ndarray]],
    ) -> None:
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            raise DataNotFoundError(
                f"labels in {origin} span {labels.min()}..{labels.max()}, outside {dataset}'s "
                f"0..{num_classes - 1}; check that the file really holds {dataset}"
            )
        self.dataset = dataset
        self.split = split
        self.labels = labels
        self.num_classes = int(num_classes)
        self.classes: tuple[str, ...] = tuple(classes)
        self.origin = origin
        self.layout = layout
        self._fetch = fetch

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __repr__(self) -> str:
        return (
            f"ImageSource(dataset={self.dataset!r}, split={self.split!r}, n={len(self)}, "
            f"layout={self.layout!r}, origin={self.origin!r})"
        )

    def images(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """The images at ``indices`` as one ``uint8`` array ``(n, H, W, 3)``.

        Raises:
            IndexError: An index is outside ``0 .. len(self)-1``.
            DataNotFoundError: An image cannot be decoded, or the images differ in size.
        """
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f"image index out of range 0..{len(self) - 1} for {self.origin}")
        if idx.size == 0:
            return np.zeros((0, 0, 0, 3), dtype=np.uint8)
        arrays = self._fetch(idx)
        shapes = {a.shape for a in arrays}
        if len(shapes) != 1:
            raise DataNotFoundError(
                f"images in {self.origin} have different sizes {sorted(shapes)}; "
                "proxy batches need equal-sized images"
            )
        return np.ascontiguousarray(np.stack(arrays).astype(np.uint8, copy=False))


# --------------------------------------------------------------------------- lookup


def default_cache_dir() -> Path:
    """The download cache root: ``PROXYBENCH_CACHE_DIR``, else ``~/.cache/proxybench``."""
    env = os.environ.get("PROXYBENCH_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "proxybench"


def load_images(
    dataset: str,
    split: str = "train",
    data_dir: str | Path | None = None,
    download: bool = True,
    cache_dir: str | Path | None = None,
) -> ImageSource:
    """Open ``dataset``'s ``split`` from local files, downloading it only as a last resort.

    Args:
        dataset: ``"cifar10"``, ``"cifar100"`` or ``"ImageNet16-120"`` (local files only).
        split: ``"train"`` or ``"test"`` (ImageNet16-120: ``val_data``, NB201's test split).
        data_dir: Folder holding ``<dataset>/<split>.parquet``, an image folder
            ``<dataset>/<split>/<class>/`` or torchvision's files (see the module doc);
            ``None`` reads ``PROXYBENCH_DATA_DIR``.
        download: Let torchvision download the dataset into the cache when no local copy
            is found.
        cache_dir: Cache root (the dataset goes to ``<cache_dir>/<dataset>``); ``None`` reads
            ``PROXYBENCH_CACHE_DIR``, else ``~/.cache/proxybench``.

    Returns:
        An :class:`ImageSource`; its ``origin`` names the file or folder used.

    Raises:
        UnknownDatasetError: ``dataset`` or ``split`` is not supported.
        DataNotFoundError: Nothing usable was found and the download failed or was disabled,
            ``data_dir`` does not exist, or a file is corrupt or lacks the expected columns.

    Example:
        >>> source = load_images("cifar10", "train", data_dir="~/data")  # doctest: +SKIP
        >>> source.images([0, 1]).shape  # doctest: +SKIP
        (2, 32, 32, 3)
    """
    dataset, split = _validate(dataset, split)
    searched: list[str] = []

    root, root_from = _resolve_data_dir(data_dir)
    if root is not None:
        found = _load_from_root(root, dataset, split, searched)
        if found is not None:
            return found

    if dataset in _IMAGENET16_DIRS:
        where = "; searched " + ", ".join(searched) if searched else " (no --data-dir or PROXYBENCH_DATA_DIR given)"
        raise DataNotFoundError(f"{dataset} {split} images not found{where}; {_IMAGENET16_FIX}")

    cache_root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    cache = cache_root / dataset
    tv_dir = cache / _TORCHVISION_DIR[dataset]
    searched.append(str(tv_dir))
    if tv_dir.is_dir():
        return _load_torchvision(tv_dir, dataset, split)

    where = "; searched " + ", ".join(searched)
    fix = _FIX.format(d=dataset, s=split)
    if not download:
        raise DataNotFoundError(f"{dataset} {split} images not found (download disabled){where}; {fix}")
    if root is not None:
        warnings.warn(
            f"no {dataset} {split} images in {root} ({root_from}); downloading to {cache}", stacklevel=2
        )
    try:
        _download_torchvision(dataset, cache)
    except Exception as exc:  # noqa: BLE001 - any failure here means "no data": report it in one line
        reason = _one_line(f"{type(exc).__name__}: {exc}")
        raise DataNotFoundError(
            f"{dataset} {split} images not found and the download to {cache} failed ({reason}){where}; {fix}"
        ) from exc
    if not tv_dir.is_dir():
        raise DataNotFoundError(f"download of {dataset} to {cache} produced no {tv_dir.name}/{where}; {fix}")
    return _load_torchvision(tv_dir, dataset, split)


def _validate(dataset: str, split: str) -> tuple[str, str]:
    for kind, value, known in (("dataset", dataset, tuple(DATASETS)), ("split", split, SPLITS)):
        if value not in known:
            hint = suggest(str(value), known)
            supported = f" Supported: {', '.join(known)}" if hint else f"; supported: {', '.join(known)}"
            raise UnknownDatasetError(f"unknown {kind} '{value}'{hint}{supported}")
    return dataset, split


def _resolve_data_dir(data_dir: str | Path | None) -> tuple[Path | None, str]:
    """The folder to search and where its name came from (for messages)."""
    if data_dir is not None:
        root, origin = Path(data_dir).expanduser(), "--data-dir"
    elif os.environ.get("PROXYBENCH_DATA_DIR"):
        root, origin = Path(os.environ["PROXYBENCH_DATA_DIR"]).expanduser(), "PROXYBENCH_DATA_DIR"
    else:
        return None, ""
    if not root.is_dir():
        # An explicit folder that does not exist is a typo to fix, not a reason to download.
        raise DataNotFoundError(
            f"data folder {root} (from {origin}) does not exist; point {origin} at an existing folder"
        )
    return root, origin


def _load_from_root(root: Path, dataset: str, split: str, searched: list[str]) -> ImageSource | None:
    base = root / dataset
    parquet = base / f"{split}.parquet"
    searched.append(str(parquet))
    if parquet.is_file():
        return _load_parquet([parquet], dataset, split, origin=str(parquet))
    shards = sorted(base.glob(f"{split}-*.parquet"), key=lambda p: natural_key(p.name))
    if shards:
        return _load_parquet(shards, dataset, split, origin=str(base / f"{split}-*.parquet"))

    folder = base / split
    searched.append(str(folder) + "/")
    if folder.is_dir() and any(p.is_dir() for p in folder.iterdir()):
        return _load_folder(folder, dataset, split)

    if dataset in _IMAGENET16_DIRS:
        first = _imagenet16_files(split)[0]
        for candidate in (root / name for name in _IMAGENET16_DIRS[dataset]):
            searched.append(str(candidate / first))
            if (candidate / first).is_file():
                return _load_imagenet16(candidate, dataset, split)
        return None
    for candidate in (root / _TORCHVISION_DIR[dataset], base / _TORCHVISION_DIR[dataset]):
        searched.append(str(candidate))
        if candidate.is_dir():
            return _load_torchvision(candidate, dataset, split)
    return None


def _one_line(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------- Parquet


def _load_parquet(paths: list[Path], dataset: str, split: str, origin: str) -> ImageSource:
    import pyarrow as pa
    import pyarrow.parquet as pq

    blobs: list[Any] = []
    labels: list[np.ndarray] = []
    class_names: list[str] | None = None
    for path in paths:
        try:
            pf = pq.ParquetFile(path)
            schema = pf.schema_arrow
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a bad file
            raise DataNotFoundError(
                f"{path} is not a readable Parquet file ({_one_line(str(exc), 120)}); replace it with a fresh export"
            ) from exc
        names = schema.names
        img_col = next((c for c in _IMAGE_COLUMNS if c in names), None)
        label_col = next((c for c in _LABEL_COLUMNS if c in names), None)
        if img_col is None or label_col is None:
            missing = "an image column (img or image)" if img_col is None else "a label column (label or fine_label)"
            raise DataNotFoundError(
                f"{path} lacks {missing}; found columns {names}; expected the Hugging Face CIFAR export layout"
            )
        field_type = schema.field(img_col).type
        if pa.types.is_struct(field_type):
            if field_type.get_field_index("bytes") < 0:
                raise DataNotFoundError(f"{path}: column '{img_col}' is a struct without a 'bytes' field")
            columns = [f"{img_col}.bytes", label_col]
        elif pa.types.is_binary(field_type) or pa.types.is_large_binary(field_type):
            columns = [img_col, label_col]
        else:
            raise DataNotFoundError(f"{path}: column '{img_col}' has type {field_type}, expected image bytes")
        if not pa.types.is_integer(schema.field(label_col).type):
            label_type = schema.field(label_col).type
            raise DataNotFoundError(f"{path}: label column '{label_col}' has type {label_type}, expected integers")
        try:
            table = pf.read(columns=columns)
        except Exception as exc:  # noqa: BLE001
            reason = _one_line(str(exc), 120)
            raise DataNotFoundError(f"{path} cannot be read ({reason}); replace it with a fresh export") from exc
        img = table.column(0).combine_chunks()
        if pa.types.is_struct(img.type):  # older pyarrow returns the struct, not the leaf
            img = img.field("bytes")
        if img.null_count:
            raise DataNotFoundError(f"{path}: {img.null_count} rows have no image bytes")
        lab = table.column(1)
        if lab.null_count:
            raise DataNotFoundError(f"{path}: {lab.null_count} rows have no label")
        blobs.append(img)
        labels.append(_int64_numpy(lab))
        class_names = class_names or _hf_class_names(schema, label_col)

    encoded = blobs[0] if len(blobs) == 1 else pa.chunked_array(blobs).combine_chunks()
    n_classes = DATASETS[dataset]
    classes = class_names if class_names and len(class_names) == n_classes else _STANDARD_CLASSES[dataset]

    def fetch(idx: np.ndarray) -> list[np.ndarray]:
        return [_decode(encoded[int(i)].as_py(), origin, int(i)) for i in idx]

    return ImageSource(
        dataset=dataset,
        split=split,
        labels=np.concatenate(labels),
        num_classes=n_classes,
        classes=classes,
        origin=origin,
        layout="parquet",
        fetch=fetch,
    )


def _int64_numpy(column: Any) -> np.ndarray:
    """An Arrow integer column as int64 numpy, without ``to_numpy`` (which imports pandas, ~0.2 s)."""
    import pyarrow as pa

    arr = column.combine_chunks().cast(pa.int64())
    values = np.frombuffer(arr.buffers()[1], dtype=np.int64)
    return values[arr.offset : arr.offset + len(arr)].copy()


def _hf_class_names(schema: Any, label_col: str) -> list[str] | None:
    """Class names stored by ``datasets`` in the ``huggingface`` schema metadata, if any."""
    meta = schema.metadata or {}
    raw = meta.get(b"huggingface")
    if not raw:
        return None
    try:
        features = json.loads(raw)["info"]["features"]
        names = features[label_col]["names"]
    except (ValueError, KeyError, TypeError):
        return None
    return [str(n) for n in names] if isinstance(names, list) else None


def _decode(blob: bytes | None, origin: str, index: int) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(blob or b"")) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except Exception as exc:  # noqa: BLE001 - PIL raises several types for bad bytes
        raise DataNotFoundError(f"image {index} in {origin} cannot be decoded ({_one_line(str(exc), 100)})") from exc


# --------------------------------------------------------------------------- image folder


def _load_folder(folder: Path, dataset: str, split: str) -> ImageSource:
    class_dirs = sorted((p for p in folder.iterdir() if p.is_dir()), key=lambda p: natural_key(p.name))
    names = [p.name for p in class_dirs]
    standard = _STANDARD_CLASSES[dataset]
    lookup = {c.lower(): i for i, c in enumerate(standard)}
    n_classes = DATASETS[dataset]
    if all(n.lower() in lookup for n in names):
        # Standard names: keep the dataset's label order, so a folder holding only some
        # classes still gets the labels the benchmark's networks were trained with.
        label_of = {n: lookup[n.lower()] for n in names}
        classes: Sequence[str] = standard
    elif len(names) == n_classes:
        label_of = {n: i for i, n in enumerate(names)}
        classes = names
    else:
        raise DataNotFoundError(
            f"{folder} has {len(names)} class folders that are not {dataset}'s class names; use the standard "
            f"names (e.g. {standard[0]}, {standard[1]}) or exactly {n_classes} folders sorted in label order"
        )
    paths: list[Path] = []
    labels: list[int] = []
    for d in class_dirs:
        files = sorted(
            (f for f in d.iterdir() if f.is_file() and f.suffix.lower() in _IMAGE_SUFFIXES),
            key=lambda f: natural_key(f.name),
        )
        paths.extend(files)
        labels.extend([label_of[d.name]] * len(files))
    if not paths:
        raise DataNotFoundError(f"{folder} has class folders but no .png/.jpg/.jpeg images in them")

    def fetch(idx: np.ndarray) -> list[np.ndarray]:
        out = []
        for i in idx:
            path = paths[int(i)]
            try:
                blob = path.read_bytes()
            except OSError as exc:
                raise DataNotFoundError(f"cannot read {path} ({exc.strerror})") from exc
            out.append(_decode(blob, str(path), int(i)))
        return out

    return ImageSource(
        dataset=dataset,
        split=split,
        labels=np.asarray(labels, dtype=np.int64),
        num_classes=n_classes,
        classes=classes,
        origin=str(folder),
        layout="folder",
        fetch=fetch,
    )


# --------------------------------------------------------------------------- torchvision files


def _load_torchvision(folder: Path, dataset: str, split: str) -> ImageSource:
    """Read torchvision's pickled CIFAR files (the python version of the official release).

    They are read directly rather than through ``torchvision.datasets.CIFAR10`` because that
    class insists on its MD5 checks and decodes everything into PIL images one by one.
    Like torchvision, this unpickles the files, so only point it at files you trust.
    """
    if dataset == "cifar10":
        names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
        label_key, meta_name, meta_key = "labels", "batches.meta", "label_names"
    else:
        names = [split]
        label_key, meta_name, meta_key = "fine_labels", "meta", "fine_label_names"
    data: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    for name in names:
        entry = _unpickle(folder / name)
        try:
            raw = np.asarray(entry["data"], dtype=np.uint8)
            lab = np.asarray(entry[label_key], dtype=np.int64)
        except KeyError as exc:
            raise DataNotFoundError(
                f"{folder / name} lacks the key {exc}; it is not a torchvision {dataset} file"
            ) from exc
        if raw.ndim != 2 or raw.shape[1] % 3 or raw.shape[0] != lab.shape[0]:
            raise DataNotFoundError(f"{folder / name}: data has shape {raw.shape} for {lab.shape[0]} labels")
        side = int(round((raw.shape[1] // 3) ** 0.5))
        if 3 * side * side != raw.shape[1]:
            raise DataNotFoundError(f"{folder / name}: rows of {raw.shape[1]} values are not square RGB images")
        data.append(raw.reshape(-1, 3, side, side).transpose(0, 2, 3, 1))
        labels.append(lab)
    pixels = np.ascontiguousarray(np.concatenate(data))
    classes: Sequence[str] = _STANDARD_CLASSES[dataset]
    meta_path = folder / meta_name
    if meta_path.is_file():
        meta_names = _unpickle(meta_path).get(meta_key)
        if isinstance(meta_names, list) and len(meta_names) == DATASETS[dataset]:
            classes = [n.decode("latin1") if isinstance(n, bytes) else str(n) for n in meta_names]

    def fetch(idx: np.ndarray) -> list[np.ndarray]:
        return list(pixels[idx])

    return ImageSource(
        dataset=dataset,
        split=split,
        labels=np.concatenate(labels),
        num_classes=DATASETS[dataset],
        classes=classes,
        origin=str(folder),
        layout="torchvision",
        fetch=fetch,
    )


# --------------------------------------------------------------------------- ImageNet16 pickles


def _imagenet16_files(split: str) -> list[str]:
    return [f"train_data_batch_{i}" for i in range(1, 11)] if split == "train" else ["val_data"]


def _load_imagenet16(folder: Path, dataset: str, split: str) -> ImageSource:
    """Read the downsampled-ImageNet 16×16 pickles, keeping the first ``num_classes`` classes.

    Like NB201's ``ImageNet16`` dataset class with ``use_num_of_class_only=120``: rows whose
    1-based label is at most 120 are kept and labels become 0-based. Each file is filtered as
    it is read, so the full 1000-class training set (≈3.9 GB) never sits in memory at once.
    Like the CIFAR reader, this unpickles: only point it at files you trust.
    """
    n_classes = DATASETS[dataset]
    data: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    for name in _imagenet16_files(split):
        path = folder / name
        if not path.is_file():
            raise DataNotFoundError(
                f"{path} is missing; ImageNet16 needs train_data_batch_1..10 and val_data in {folder}"
            )
        entry = _unpickle(path, kind="downsampled-ImageNet (ImageNet16)")
        try:
            raw = np.asarray(entry["data"], dtype=np.uint8)
            lab = np.asarray(entry["labels"], dtype=np.int64).reshape(-1)
        except KeyError as exc:
            raise DataNotFoundError(f"{path} lacks the key {exc}; it is not a downsampled-ImageNet file") from exc
        if raw.ndim != 2 or raw.shape[1] != 3 * 16 * 16 or raw.shape[0] != lab.shape[0]:
            raise DataNotFoundError(
                f"{path}: data has shape {raw.shape} for {lab.shape[0]} labels, expected N x 768 (3x16x16 uint8)"
            )
        if lab.size and (lab.min() < 1 or lab.max() > 1000):
            raise DataNotFoundError(
                f"{path}: labels span {lab.min()}..{lab.max()}, not the 1-based 1..1000 of downsampled ImageNet"
            )
        keep = lab <= n_classes
        data.append(raw[keep].reshape(-1, 3, 16, 16).transpose(0, 2, 3, 1))
        labels.append(lab[keep] - 1)
    pixels = np.ascontiguousarray(np.concatenate(data))
    if not len(pixels):
        raise DataNotFoundError(f"{folder}: no image with a label in 1..{n_classes} in the {split} files")

    def fetch(idx: np.ndarray) -> list[np.ndarray]:
        return list(pixels[idx])

    return ImageSource(
        dataset=dataset,
        split=split,
        labels=np.concatenate(labels),
        num_classes=n_classes,
        classes=_STANDARD_CLASSES[dataset],
        origin=str(folder),
        layout="imagenet16",
        fetch=fetch,
    )


def _unpickle(path: Path, kind: str = "torchvision CIFAR") -> dict[str, Any]:
    if not path.is_file():
        raise DataNotFoundError(
            f"{path} is missing; {path.parent} is an incomplete torchvision download, delete it and retry"
        )
    try:
        with path.open("rb") as fh:
            entry = pickle.load(fh, encoding="latin1")
    except Exception as exc:  # noqa: BLE001 - truncated or foreign files raise many types
        reason = _one_line(str(exc), 100)
        raise DataNotFoundError(f"{path} is not a readable {kind} file ({reason})") from exc
    if not isinstance(entry, dict):
        raise DataNotFoundError(f"{path} is not a {kind} file (holds {type(entry).__name__})")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in entry.items()}


def _download_torchvision(dataset: str, target: Path) -> None:
    """Download ``dataset`` with torchvision into ``target`` (both splits come in one archive).

    Tests replace this function to simulate a machine without network access.
    """
    from torchvision import datasets

    target.mkdir(parents=True, exist_ok=True)
    cls = datasets.CIFAR10 if dataset == "cifar10" else datasets.CIFAR100
    cls(root=str(target), train=True, download=True)

