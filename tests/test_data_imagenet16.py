"""ImageNet16-120: the downsampled-ImageNet pickles, built here in their format (no real copy exists)."""

from __future__ import annotations

import pickle
from pathlib import Path

import duckdb
import numpy as np
import pytest
import torch
from builders import isolate_data_env
from click.testing import CliRunner

from proxybench.data import BatchProvider, draw_indices, draw_proxy_batch, load_images, normalization_for
from proxybench.data.batches import IMAGENET16_STATS, padding_for
from proxybench.errors import DataNotFoundError
from proxybench.presets import get_preset

ALL_CONV = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate_data_env(monkeypatch, tmp_path)


def coded_rows(labels: np.ndarray, first: int) -> np.ndarray:
    """N x 768 uint8 rows, channel-major (R plane, G plane, B plane of 16x16), coded so each image is identifiable:
    channel c of image k holds (first + k) % 251 + c everywhere except pixel (0, 1), which is c (tests the layout)."""
    n = len(labels)
    planes = np.zeros((n, 3, 16, 16), dtype=np.uint8)
    for c in range(3):
        planes[:, c] = ((first + np.arange(n)) % 251 + c)[:, None, None]
        planes[:, c, 0, 1] = c
    return planes.reshape(n, 768)


def write_imagenet16(folder: Path, per_file: int = 30, val: int = 40, seed: int = 0) -> dict[str, np.ndarray]:
    """The 11 pickles in the release's format: {'data': N x 768 uint8, 'labels': 1-based list}. Labels run 1..1000,
    about one in eight <= 120; returns the labels of each split as written (1-based)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, list[np.ndarray]] = {"train": [], "test": []}
    first = 0
    names = [(f"train_data_batch_{i}", "train", per_file) for i in range(1, 11)] + [("val_data", "test", val)]
    for name, split, n in names:
        labels = np.where(rng.random(n) < 0.5, rng.integers(1, 121, n), rng.integers(121, 1001, n))
        labels[0], labels[1] = 1, 120  # both ends of the kept range
        entry = {"data": coded_rows(labels, first), "labels": labels.tolist()}
        if split == "train":
            entry["mean"] = np.zeros(768)  # the real training batches carry one too
        with open(folder / name, "wb") as fh:
            pickle.dump(entry, fh, protocol=2)
        written[split].append(labels)
        first += n
    return {k: np.concatenate(v) for k, v in written.items()}


@pytest.mark.parametrize("folder_name", ["ImageNet16-120", "ImageNet16"])
def test_pickles_load_keeping_120_classes_and_the_channel_major_layout(tmp_path: Path, folder_name: str) -> None:
    written = write_imagenet16(tmp_path / "data" / folder_name)
    for split in ("train", "test"):
        source = load_images("ImageNet16-120", split, data_dir=tmp_path / "data")
        kept = written[split][written[split] <= 120]
        assert source.layout == "imagenet16" and source.num_classes == 120 and len(source.classes) == 120
        assert source.origin == str(tmp_path / "data" / folder_name)
        assert np.array_equal(source.labels, kept - 1) and source.labels.min() == 0 and source.labels.max() == 119
        images = source.images(range(len(source)))
        assert images.shape == (len(kept), 16, 16, 3) and images.dtype == np.uint8
        assert (images[:, 0, 1] == [0, 1, 2]).all()  # pixel (row 0, col 1) of every image holds c in channel c
        assert (images[:, 5, 7, 1] == images[:, 5, 7, 0] + 1).all()
    # the kept images are the right rows: image k's value identifies its row in the files
    train = load_images("ImageNet16-120", "train", data_dir=tmp_path / "data")
    rows = np.flatnonzero(written["train"] <= 120)
    assert np.array_equal(train.images(range(len(train)))[:, 3, 3, 0], rows % 251)


def test_missing_dataset_is_one_line_with_the_fix(tmp_path: Path) -> None:
    fix = ("no download exists for ImageNet16-120: put the downsampled-ImageNet 16x16 pickles (Chrabaszcz et al. 2017; "
           "train_data_batch_1..10, val_data) in DIR/ImageNet16-120/ and pass --data-dir DIR or set "
           "PROXYBENCH_DATA_DIR")
    with pytest.raises(DataNotFoundError) as info:
        load_images("ImageNet16-120", "train")
    assert str(info.value) == ("ImageNet16-120 train images not found (no --data-dir or PROXYBENCH_DATA_DIR given); "
                               + fix)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataNotFoundError) as info:
        load_images("ImageNet16-120", "test", data_dir=empty)
    assert str(info.value) == (
        f"ImageNet16-120 test images not found; searched {empty}/ImageNet16-120/test.parquet, "
        f"{empty}/ImageNet16-120/test/, {empty}/ImageNet16-120/val_data, {empty}/ImageNet16/val_data; " + fix)


def test_incomplete_or_foreign_files_say_what_is_wrong(tmp_path: Path) -> None:
    folder = tmp_path / "ImageNet16-120"
    write_imagenet16(folder)
    (folder / "train_data_batch_7").unlink()
    with pytest.raises(DataNotFoundError, match=r"train_data_batch_7 is missing; ImageNet16 needs "
                                                r"train_data_batch_1\.\.10 and val_data in "):
        load_images("ImageNet16-120", "train", data_dir=tmp_path)
    with open(folder / "val_data", "wb") as fh:  # CIFAR-sized rows (32x32)
        pickle.dump({"data": np.zeros((4, 3072), dtype=np.uint8), "labels": [1, 2, 3, 4]}, fh)
    with pytest.raises(DataNotFoundError, match=r"val_data: data has shape \(4, 3072\) for 4 labels, expected N x 768"):
        load_images("ImageNet16-120", "test", data_dir=tmp_path)
    with open(folder / "val_data", "wb") as fh:  # 0-based labels: not the release's
        pickle.dump({"data": np.zeros((2, 768), dtype=np.uint8), "labels": [0, 5]}, fh)
    with pytest.raises(DataNotFoundError, match=r"labels span 0\.\.5, not the 1-based 1\.\.1000"):
        load_images("ImageNet16-120", "test", data_dir=tmp_path)


def test_normalisation_and_crop_padding_are_nb201s(tmp_path: Path) -> None:
    write_imagenet16(tmp_path / "ImageNet16-120")
    source = load_images("ImageNet16-120", "train", data_dir=tmp_path)
    mean, std = IMAGENET16_STATS
    assert mean == (122.68 / 255, 116.66 / 255, 104.01 / 255) and std == (63.22 / 255, 61.26 / 255, 65.09 / 255)
    for preset in ("proxybench", "suite-zero", "zc-nas"):
        assert normalization_for(get_preset(preset), "ImageNet16-120") == IMAGENET16_STATS
        settings = BatchProvider(source, get_preset(preset), seed=0, batch_size=16).settings()
        assert settings["mean"] == list(mean) and settings["dataset"] == "ImageNet16-120"
    assert padding_for("ImageNet16-120") == 2 and padding_for("cifar10") == 4
    plain = draw_proxy_batch(source, batch_size=24, seed=3, mean=mean, std=std)
    aug = draw_proxy_batch(source, batch_size=24, seed=3, mean=mean, std=std, augment=True)
    assert plain.inputs.shape == (24, 3, 16, 16) and plain.num_classes == 120
    idx = draw_indices(len(source), batch_size=24, train_fraction=1.0, rng=np.random.default_rng(3))
    pixels = torch.from_numpy(source.images(idx)).permute(0, 3, 1, 2).float() / 255
    expected = (pixels - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    assert torch.allclose(plain.inputs, expected, atol=1e-6)
    assert torch.equal(plain.targets, torch.from_numpy(source.labels[idx]))
    # every augmented image is a 16x16 window of the original padded by 2 (never 4), maybe mirrored
    zero = torch.tensor([(0 - m) / s for m, s in zip(mean, std)]).view(3, 1, 1)
    for k in range(24):
        original = np.pad(plain.inputs[k].numpy(), ((0, 0), (2, 2), (2, 2)), constant_values=np.nan)
        crop = aug.inputs[k].numpy()
        windows = [original[:, t:t + 16, l:l + 16][:, :, ::f] for t in range(5) for l in range(5)  # noqa: E741
                   for f in (1, -1)]
        matches = [np.allclose(np.where(np.isnan(w), zero.expand(3, 16, 16).numpy(), w), crop, atol=1e-5)
                   for w in windows]
        assert any(matches), k


@pytest.mark.parametrize("proxies", ["params,flops,synflow"])
def test_score_command_builds_a_120_class_head(tmp_path: Path, proxies: str) -> None:
    from proxybench_cli.main import cli

    write_imagenet16(tmp_path / "data" / "ImageNet16-120")
    archs = tmp_path / "archs.txt"
    archs.write_text(ALL_CONV + "\n")
    result = CliRunner().invoke(cli, ["score", "--archs", str(archs), "--proxies", proxies, "--dataset",
                                      "ImageNet16-120", "--data-dir", str(tmp_path / "data"), "--batch-size", "8",
                                      "--out", str(tmp_path / "out"), "-q"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = dict(duckdb.connect().execute("SELECT proxy, score FROM read_parquet(?) WHERE status = 'ok'",
                                         [str(tmp_path / "out" / "scores" / "*.parquet")]).fetchall())
    # all-conv NB201: 1,531,546 parameters with 10 classes; the 120-way head adds 64*110 + 110
    assert rows["params"] == pytest.approx((1_531_546 + 64 * 110 + 110) / 1e6)
    assert set(rows) == {"params", "flops", "synflow"}
    datasets = duckdb.connect().execute("SELECT DISTINCT dataset FROM read_parquet(?)",
                                        [str(tmp_path / "out" / "scores" / "*.parquet")]).fetchall()
    assert datasets == [("ImageNet16-120",)]


def test_score_command_without_the_files_is_one_line(tmp_path: Path) -> None:
    from proxybench_cli.main import cli

    result = CliRunner().invoke(cli, ["score", "--sample", "1", "--dataset", "ImageNet16-120", "--out",
                                      str(tmp_path / "out")], catch_exceptions=False)
    assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
    assert result.output.startswith("Error: ImageNet16-120 train images not found")
    assert "--data-dir DIR" in result.output
