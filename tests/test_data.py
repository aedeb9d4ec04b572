"""Datasets and proxy batches (proxybench.data).

Every synthetic image here is made inside the test (tmp_path or memory); the real images
come from the shared CIFAR-10 Parquet through the ``data_dir`` fixture.
"""

from __future__ import annotations

import io
import pickle
import re
import time
import urllib.error
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from builders import isolate_data_env
import torch
from PIL import Image

from proxybench.batch import ProxyBatch
from proxybench.data import (
    CIFAR10_CLASSES,
    CIFAR100_CLASSES,
    BatchProvider,
    ImageSource,
    UnknownDatasetError,
    arch_batch_seed,
    draw_indices,
    draw_proxy_batch,
    load_images,
    normalization_for,
)
from proxybench.data import sources
from proxybench.errors import DataNotFoundError, ProxybenchError
from proxybench.presets import NB201_MEAN, NB201_STD, get_preset

ARCH_A = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
ARCH_B = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
MEAN = (0.5, 0.5, 0.5)
STD = (0.25, 0.25, 0.25)


# --------------------------------------------------------------------------- helpers


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test may read the user's data/cache folders or reach the network."""
    isolate_data_env(monkeypatch, tmp_path)


def memory_source(images: np.ndarray, labels: np.ndarray, num_classes: int = 10) -> ImageSource:
    """An ImageSource over arrays built by the test."""
    return ImageSource(
        dataset="cifar10",
        split="train",
        labels=labels,
        num_classes=num_classes,
        classes=CIFAR10_CLASSES,
        origin="memory",
        layout="memory",
        fetch=lambda idx: list(images[idx]),
    )


def index_coded_source(n: int = 200) -> ImageSource:
    """Image k is filled with the value k (so a batch tells which images it holds)."""
    images = np.broadcast_to(np.arange(n, dtype=np.uint8)[:, None, None, None], (n, 32, 32, 3)).copy()
    return memory_source(images, np.arange(n) % 10)


def random_images(n: int, seed: int = 0, size: int = 32) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)


def png_bytes(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def write_torchvision_cifar10(folder: Path, images: np.ndarray, labels: np.ndarray) -> None:
    """A tiny ``cifar-10-batches-py`` in the real file format (pickled dicts with bytes keys)."""
    folder.mkdir(parents=True)
    chunks = np.array_split(np.arange(len(images)), 6)  # data_batch_1..5 + test_batch
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name, idx in zip(names, chunks):
        # The real files were pickled by Python 2; read with encoding="latin1" (as torchvision
        # does) their keys and names come back as str, which is what these hold.
        entry = {
            "batch_label": name,
            "labels": [int(v) for v in labels[idx]],
            "data": images[idx].transpose(0, 3, 1, 2).reshape(len(idx), -1),  # rows of R, G, B planes
            "filenames": [f"img_{i}.png" for i in idx],
        }
        with (folder / name).open("wb") as fh:
            pickle.dump(entry, fh, protocol=2)
    with (folder / "batches.meta").open("wb") as fh:
        meta = {"label_names": list(CIFAR10_CLASSES), "num_cases_per_batch": 10000, "num_vis": 3072}
        pickle.dump(meta, fh, protocol=2)


def write_parquet(path: Path, images: np.ndarray, labels: np.ndarray, label_col: str = "label") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = pa.array(
        [{"bytes": png_bytes(im), "path": f"{i}.png"} for i, im in enumerate(images)],
        type=pa.struct([("bytes", pa.binary()), ("path", pa.string())]),
    )
    pq.write_table(pa.table({"img": img, label_col: pa.array(labels, type=pa.int64())}), path)


# --------------------------------------------------------------------------- sources


@pytest.mark.shared
def test_shared_parquet_loads_lazily(data_dir: Path) -> None:
    source = load_images("cifar10", "train", data_dir=data_dir)
    assert len(source) == 50_000
    assert (source.num_classes, source.classes, source.layout) == (10, CIFAR10_CLASSES, "parquet")
    assert source.origin == str(data_dir / "cifar10" / "train.parquet")
    assert source.labels.dtype == np.int64 and source.labels.shape == (50_000,)
    assert source.labels.min() == 0 and source.labels.max() == 9
    assert np.bincount(source.labels).tolist() == [5000] * 10
    images = source.images([0, 49_999, 7])
    assert images.shape == (3, 32, 32, 3) and images.dtype == np.uint8
    assert images.std() > 10  # real photographs, not blanks

    test = load_images("cifar10", "test", data_dir=data_dir)
    assert len(test) == 10_000


@pytest.mark.shared
def test_drawing_a_batch_from_50k_is_fast(data_dir: Path) -> None:
    source = load_images("cifar10", "train", data_dir=data_dir)
    start = time.perf_counter()
    batch = draw_proxy_batch(source, batch_size=64, seed=0, mean=NB201_MEAN, std=NB201_STD, augment=True)
    assert time.perf_counter() - start < 1.0
    assert batch.inputs.shape == (64, 3, 32, 32) and batch.inputs.dtype == torch.float32
    assert batch.targets.dtype == torch.int64 and batch.num_classes == 10
    # NB201's statistics roughly centre the real images (no augmentation padding here).
    plain = draw_proxy_batch(source, batch_size=256, seed=1, mean=NB201_MEAN, std=NB201_STD)
    assert plain.inputs.mean().abs() < 0.3 and 0.7 < plain.inputs.std() < 1.3


@pytest.mark.shared
def test_env_var_data_dir_is_honoured(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    monkeypatch.setenv("PROXYBENCH_DATA_DIR", str(data_dir))
    source = load_images("cifar10", "test")
    assert source.origin == str(data_dir / "cifar10" / "test.parquet")


def test_data_dir_argument_beats_env_var(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    images, labels = random_images(4), np.array([0, 1, 2, 3])
    write_parquet(tmp_path / "a" / "cifar10" / "train.parquet", images, labels)
    write_parquet(tmp_path / "b" / "cifar10" / "train.parquet", images[:2], labels[:2])
    monkeypatch.setenv("PROXYBENCH_DATA_DIR", str(tmp_path / "b"))
    assert len(load_images("cifar10", data_dir=tmp_path / "a")) == 4
    assert len(load_images("cifar10")) == 2


def test_parquet_round_trip_fine_label_and_shards(tmp_path: Path) -> None:
    images = random_images(6, seed=3)
    labels = np.array([0, 99, 5, 42, 7, 1])
    write_parquet(tmp_path / "cifar100" / "test-00000-of-00002.parquet", images[:4], labels[:4], "fine_label")
    write_parquet(tmp_path / "cifar100" / "test-00001-of-00002.parquet", images[4:], labels[4:], "fine_label")
    source = load_images("cifar100", "test", data_dir=tmp_path)
    assert (len(source), source.num_classes, source.classes) == (6, 100, CIFAR100_CLASSES)
    assert source.labels.tolist() == labels.tolist()
    np.testing.assert_array_equal(source.images([5, 0]), images[[5, 0]])  # PNG is lossless


def test_parquet_missing_columns_and_corrupt_files(tmp_path: Path) -> None:
    pq.write_table(pa.table({"pixels": [b"x"], "target": [1]}), _mkparent(tmp_path / "cifar10" / "train.parquet"))
    with pytest.raises(DataNotFoundError, match=r"lacks an image column .*found columns \['pixels', 'target'\]"):
        load_images("cifar10", data_dir=tmp_path)

    pq.write_table(pa.table({"img": [b"x"], "target": [1]}), tmp_path / "cifar10" / "train.parquet")
    with pytest.raises(DataNotFoundError, match="lacks a label column"):
        load_images("cifar10", data_dir=tmp_path)

    (tmp_path / "cifar10" / "train.parquet").write_bytes(b"this is not parquet")
    with pytest.raises(DataNotFoundError, match="is not a readable Parquet file") as info:
        load_images("cifar10", data_dir=tmp_path)
    assert "\n" not in str(info.value)

    pq.write_table(
        pa.table({"img": pa.array([b"not an image"], pa.binary()), "label": [3]}),
        tmp_path / "cifar10" / "train.parquet",
    )
    source = load_images("cifar10", data_dir=tmp_path)  # lazy: opening does not decode
    with pytest.raises(DataNotFoundError, match="image 0 in .* cannot be decoded"):
        source.images([0])

    write_parquet(tmp_path / "cifar10" / "train.parquet", random_images(1), np.array([12]))
    with pytest.raises(DataNotFoundError, match=r"labels .* outside cifar10's 0\.\.9"):
        load_images("cifar10", data_dir=tmp_path)


def _mkparent(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def test_image_folder_layout(tmp_path: Path) -> None:
    images = random_images(5, seed=1)
    layout = {"cat": [0, 1], "airplane": [2], "truck": [3, 4]}
    for name, ids in layout.items():
        (tmp_path / "cifar10" / "train" / name).mkdir(parents=True)
        for i in ids:
            Image.fromarray(images[i]).save(tmp_path / "cifar10" / "train" / name / f"{i}.png")
    (tmp_path / "cifar10" / "train" / "cat" / "notes.txt").write_text("ignored")

    source = load_images("cifar10", "train", data_dir=tmp_path)
    assert source.layout == "folder" and source.origin == str(tmp_path / "cifar10" / "train")
    # Standard names keep CIFAR-10's label order even for a subset of the classes.
    assert source.labels.tolist() == [0, 3, 3, 9, 9]
    assert source.classes == CIFAR10_CLASSES and source.num_classes == 10
    np.testing.assert_array_equal(source.images([0, 1, 2, 3, 4]), images[[2, 0, 1, 3, 4]])


def test_image_folder_with_other_names(tmp_path: Path) -> None:
    root = tmp_path / "cifar10" / "test"
    for k in range(10):  # "c10" sorts after "c9": natural order
        (root / f"c{k}").mkdir(parents=True)
        Image.fromarray(random_images(1, seed=k)[0]).save(root / f"c{k}" / "x.jpg")
    source = load_images("cifar10", "test", data_dir=tmp_path)
    assert source.classes == tuple(f"c{k}" for k in range(10))
    assert source.labels.tolist() == list(range(10))
    assert source.images([0]).shape == (1, 32, 32, 3)

    (root / "c9").rename(root / "extra")
    (root / "c10").mkdir()
    (root / "c11").mkdir()
    with pytest.raises(DataNotFoundError, match="12 class folders that are not cifar10's class names"):
        load_images("cifar10", "test", data_dir=tmp_path)


@pytest.mark.parametrize("nested", [False, True], ids=["in-data-dir", "in-dataset-subdir"])
def test_torchvision_pickled_layout(tmp_path: Path, nested: bool) -> None:
    images, labels = random_images(12, seed=2), np.arange(12) % 10
    base = tmp_path / "cifar10" if nested else tmp_path
    write_torchvision_cifar10(base / "cifar-10-batches-py", images, labels)

    train = load_images("cifar10", "train", data_dir=tmp_path)
    test = load_images("cifar10", "test", data_dir=tmp_path)
    assert train.layout == "torchvision" and train.origin == str(base / "cifar-10-batches-py")
    assert len(train) + len(test) == 12 and len(test) == 2  # the sixth chunk is test_batch
    assert train.classes == CIFAR10_CLASSES
    # Pixels come back HWC exactly as written (the files store CHW planes).
    np.testing.assert_array_equal(train.images(np.arange(len(train))), images[: len(train)])
    np.testing.assert_array_equal(test.images([0, 1]), images[10:])
    assert test.labels.tolist() == labels[10:].tolist()


def test_torchvision_cifar100_layout(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    images = random_images(3, seed=5)
    for split in ("train", "test"):
        entry = {
            b"data": images.transpose(0, 3, 1, 2).reshape(3, -1),
            b"fine_labels": [0, 50, 99],
            b"coarse_labels": [0, 1, 2],
        }
        with (folder / split).open("wb") as fh:
            pickle.dump(entry, fh, protocol=2)  # bytes keys and names: accepted too
    with (folder / "meta").open("wb") as fh:
        pickle.dump({b"fine_label_names": [c.encode() for c in CIFAR100_CLASSES]}, fh, protocol=2)
    source = load_images("cifar100", "train", data_dir=tmp_path)
    assert source.labels.tolist() == [0, 50, 99] and source.classes[50] == CIFAR100_CLASSES[50]
    np.testing.assert_array_equal(source.images([2]), images[[2]])


def test_earlier_download_in_cache_is_used_without_network(tmp_path: Path) -> None:
    images = random_images(6)
    write_torchvision_cifar10(tmp_path / "cache" / "cifar10" / "cifar-10-batches-py", images, np.zeros(6, int))
    source = load_images("cifar10", "train")  # PROXYBENCH_CACHE_DIR = tmp_path/cache (fixture)
    assert source.origin == str(tmp_path / "cache" / "cifar10" / "cifar-10-batches-py")


def test_download_goes_to_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls = []

    def fake_download(dataset: str, target: Path) -> None:
        calls.append((dataset, target))
        write_torchvision_cifar10(target / "cifar-10-batches-py", random_images(6), np.ones(6, int))

    monkeypatch.setattr(sources, "_download_torchvision", fake_download)
    source = load_images("cifar10", "train", cache_dir=tmp_path / "mycache")
    assert calls == [("cifar10", tmp_path / "mycache" / "cifar10")]
    assert source.layout == "torchvision" and set(source.labels.tolist()) == {1}


def test_download_failure_says_what_was_searched_and_what_to_do(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def offline(dataset: str, target: Path) -> None:
        raise urllib.error.URLError("[Errno -3] Temporary failure\nin name resolution")

    monkeypatch.setattr(sources, "_download_torchvision", offline)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.warns(UserWarning, match="no cifar10 train images in"), pytest.raises(DataNotFoundError) as info:
        load_images("cifar10", "train", data_dir=empty)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("cifar10 train images not found and the download to ")
    assert str(tmp_path / "cache" / "cifar10") in message
    assert "URLError" in message and "Temporary failure in name resolution" in message
    assert str(empty / "cifar10" / "train.parquet") in message
    assert str(empty / "cifar10" / "train") + "/" in message
    assert str(empty / "cifar-10-batches-py") in message
    assert "--data-dir DIR" in message and "PROXYBENCH_DATA_DIR" in message
    assert "cifar10/train.parquet" in message and "connect to the internet" in message
    assert isinstance(info.value, ProxybenchError) and isinstance(info.value, FileNotFoundError)


def test_download_disabled(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match=r"^cifar100 test images not found \(download disabled\); searched "):
        load_images("cifar100", "test", download=False)


def test_bad_names_and_missing_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UnknownDatasetError, match=r"unknown dataset 'cifar-10'; did you mean 'cifar10'"):
        load_images("cifar-10")
    with pytest.raises(UnknownDatasetError, match="^unknown split 'val'; supported: train, test$"):
        load_images("cifar10", "val")
    suggestion = r"'cifar100o'; did you mean 'cifar100'.*\? Supported: cifar10, cifar100, ImageNet16-120$"
    with pytest.raises(UnknownDatasetError, match=suggestion):
        load_images("cifar100o")
    with pytest.raises(DataNotFoundError, match=r"data folder .*nope \(from --data-dir\) does not exist"):
        load_images("cifar10", data_dir=tmp_path / "nope")
    monkeypatch.setenv("PROXYBENCH_DATA_DIR", str(tmp_path / "gone"))
    with pytest.raises(DataNotFoundError, match=r"\(from PROXYBENCH_DATA_DIR\) does not exist"):
        load_images("cifar10")


def test_image_index_out_of_range() -> None:
    source = index_coded_source(5)
    with pytest.raises(IndexError, match=r"out of range 0\.\.4"):
        source.images([5])


# --------------------------------------------------------------------------- batches


def test_same_seed_same_batch_other_seed_other_batch() -> None:
    source = memory_source(random_images(300, seed=7), np.arange(300) % 10)
    for augment in (False, True):
        kwargs = dict(batch_size=16, mean=MEAN, std=STD, augment=augment)
        a = draw_proxy_batch(source, seed=3, **kwargs)
        b = draw_proxy_batch(source, seed=3, **kwargs)
        c = draw_proxy_batch(source, seed=4, **kwargs)
        assert isinstance(a, ProxyBatch) and a.inputs.shape == (16, 3, 32, 32)
        assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)
        assert not torch.equal(a.inputs, c.inputs)


def test_normalisation_is_exact() -> None:
    image = np.zeros((1, 32, 32, 3), dtype=np.uint8)
    image[0, 0, 0] = (255, 0, 51)
    image[0, 5, 7] = (10, 128, 200)
    source = memory_source(image, np.array([4]))
    batch = draw_proxy_batch(source, batch_size=1, seed=0, mean=MEAN, std=STD)
    x = batch.inputs[0]
    assert x.dtype == torch.float32 and x.shape == (3, 32, 32)
    assert x[0, 0, 0].item() == 2.0 and x[1, 0, 0].item() == -2.0  # (1 - .5)/.25, (0 - .5)/.25
    assert x[2, 1, 1].item() == -2.0
    assert batch.targets.tolist() == [4]
    # Bit-identical to the references' torchvision pipeline (ToTensor + Normalize).
    import torchvision.transforms as T

    mean, std = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)
    expected = T.Compose([T.ToTensor(), T.Normalize(mean, std)])(Image.fromarray(image[0]))
    got = draw_proxy_batch(source, batch_size=1, seed=0, mean=mean, std=std).inputs[0]
    assert torch.equal(got, expected)


def test_augmentation_is_deterministic_crop_and_flip() -> None:
    images = random_images(50, seed=11)
    source = memory_source(images, np.arange(50) % 10)
    plain = draw_proxy_batch(source, batch_size=20, seed=5, mean=MEAN, std=STD)
    aug = draw_proxy_batch(source, batch_size=20, seed=5, mean=MEAN, std=STD, augment=True)
    again = draw_proxy_batch(source, batch_size=20, seed=5, mean=MEAN, std=STD, augment=True)
    assert torch.equal(aug.inputs, again.inputs)
    assert torch.equal(aug.targets, plain.targets)  # indices are drawn before the augmentation
    assert not torch.equal(aug.inputs, plain.inputs)
    # Every augmented image is a 32x32 window of the zero-padded original, maybe mirrored.
    to_uint8 = lambda t: np.rint((t.numpy() * 0.25 + 0.5) * 255).astype(np.uint8).transpose(1, 2, 0)  # noqa: E731
    padded_zero_seen = False
    for k in range(20):
        original = to_uint8(plain.inputs[k])
        crop = to_uint8(aug.inputs[k])
        padded = np.pad(original, ((4, 4), (4, 4), (0, 0)))
        windows = [
            padded[t : t + 32, l : l + 32][:, ::f] for t in range(9) for l in range(9) for f in (1, -1)  # noqa: E741
        ]
        assert any(np.array_equal(crop, w) for w in windows)
        padded_zero_seen |= bool((aug.inputs[k] == -2.0).all(dim=0).any())
    assert padded_zero_seen  # zero padding shows up as (0 - mean)/std


def test_train_fraction_bounds_the_indices() -> None:
    source = index_coded_source(200)
    for seed in range(20):
        batch = draw_proxy_batch(source, batch_size=32, seed=seed, mean=(0, 0, 0), std=(1 / 255,) * 3,
                                 train_fraction=0.5)  # fmt: skip
        drawn = batch.inputs[:, 0, 0, 0].round().long()  # pixel value = image index
        assert drawn.max().item() < 100
        assert len(set(drawn.tolist())) == 32  # without replacement
        assert batch.targets.tolist() == (drawn % 10).tolist()
    rng = np.random.default_rng(0)
    idx = draw_indices(50_000, batch_size=32, train_fraction=0.7, rng=rng)
    assert idx.max() < 35_000 and idx.dtype == np.int64
    with pytest.raises(ValueError, match=r"cannot draw 32 distinct images from the first 10 of 200"):
        draw_proxy_batch(source, batch_size=32, seed=0, mean=MEAN, std=STD, train_fraction=0.05)
    with pytest.raises(ValueError, match=r"train_fraction must be in \(0, 1\]"):
        draw_proxy_batch(source, batch_size=8, seed=0, mean=MEAN, std=STD, train_fraction=0.0)
    with pytest.raises(ValueError, match="seed must be non-negative"):
        draw_proxy_batch(source, batch_size=8, seed=-1, mean=MEAN, std=STD)


def test_fixed_batch_provider_gives_every_arch_the_same_batch() -> None:
    source = index_coded_source(200)
    provider = BatchProvider(source, get_preset("proxybench"), seed=7, batch_size=16)
    a, id_a = provider.batch_for(ARCH_A)
    b, id_b = provider.batch_for(ARCH_B)
    assert a is b and id_a == id_b == "fixed-s7" == provider.batch_id(ARCH_A)
    direct = draw_proxy_batch(source, batch_size=16, seed=7, mean=NB201_MEAN, std=NB201_STD)
    assert torch.equal(a.inputs, direct.inputs)


def test_per_arch_batches_are_stable_across_providers_and_order() -> None:
    source = index_coded_source(200)
    preset = get_preset("suite-zero")
    first = BatchProvider(source, preset, seed=9000, batch_size=32)
    second = BatchProvider(source, preset, seed=9000, batch_size=32)
    a1, id_a = first.batch_for(ARCH_A)
    b1, id_b = first.batch_for(ARCH_B)
    b2, _ = second.batch_for(ARCH_B)  # other order, other instance
    a2, id_a2 = second.batch_for(ARCH_A)
    assert torch.equal(a1.inputs, a2.inputs) and torch.equal(b1.inputs, b2.inputs) and id_a == id_a2
    assert not torch.equal(a1.inputs, b1.inputs) and id_a != id_b
    assert re.fullmatch(r"arch-s9000-[0-9a-f]{8}", id_a)
    other_seed, _ = BatchProvider(source, preset, seed=9001, batch_size=32).batch_for(ARCH_A)
    assert not torch.equal(a1.inputs, other_seed.inputs)
    # train_fraction 0.7 of the preset applies: image indices stay below 140.
    for batch in (a1, b1):
        assert (batch.inputs[:, 0, 0, 0] * 0.24703233 + 0.49139968).mul(255).round().max() < 140
    # The derivation is pinned: changing it would silently change every stored batch.
    assert arch_batch_seed(42, "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|") == (
        7889254185725609283,
        "6d7c42e2",
    )


def test_provider_settings_and_dataset_statistics() -> None:
    source = index_coded_source(200)
    settings = BatchProvider(source, get_preset("zc-nas"), seed=42, batch_size=64).settings()
    assert settings["mean"] == [0.4914, 0.4822, 0.4465] and settings["std"] == [0.2023, 0.1994, 0.2010]
    assert settings["augment"] is True and settings["batch_per_arch"] is True and settings["train_fraction"] == 1.0
    assert settings["data_origin"] == "memory"
    assert normalization_for(get_preset("zc-nas"), "cifar100") == normalization_for(get_preset("zc-nas"), "cifar10")
    naslib_cifar100 = ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762))
    assert normalization_for(get_preset("suite-zero"), "cifar100") == naslib_cifar100
    mean100, std100 = normalization_for(get_preset("proxybench"), "cifar100")
    assert mean100 == (129.3 / 255, 124.1 / 255, 112.4 / 255) and std100 == (68.2 / 255, 65.4 / 255, 70.4 / 255)
    assert normalization_for(get_preset("proxybench"), "cifar10") == (NB201_MEAN, NB201_STD)
    with pytest.raises(ValueError, match="cannot draw 64 distinct images"):
        BatchProvider(index_coded_source(40), get_preset("proxybench"), seed=0, batch_size=64)


def test_presets_match_the_references_data_settings() -> None:
    """Values read from zero-cost-nas and NASLib (see proxybench/data/batches.py)."""
    zc, sz, pb = get_preset("zc-nas"), get_preset("suite-zero"), get_preset("proxybench")
    assert (zc.batch_size, zc.seed, zc.train_fraction, zc.augment, zc.batch_per_arch) == (64, 42, 1.0, True, True)
    assert zc.mean == (0.4914, 0.4822, 0.4465) and zc.std == (0.2023, 0.1994, 0.2010)
    assert (sz.batch_size, sz.seed, sz.train_fraction, sz.augment, sz.batch_per_arch) == (32, 9000, 0.7, True, True)
    assert sz.mean == (0.49139968, 0.48215827, 0.44653124) and sz.std == (0.24703233, 0.24348505, 0.26158768)
    assert (pb.augment, pb.batch_per_arch, pb.train_fraction) == (False, False, 1.0)
    assert pb.mean == NB201_MEAN and pb.std == NB201_STD
