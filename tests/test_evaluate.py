"""OOD evaluation: error arithmetic (CE, mCE), the Parquet table, the plot and `proxybench evaluate`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from builders import isolate_data_env
import torch
from click.testing import CliRunner
from PIL import Image
from proxybench_cli.evaluate_commands import evaluate

from proxybench.data.corruptions import corrupt
from proxybench.data.sources import CIFAR10_CLASSES, ImageSource
from proxybench.errors import InvalidSettingError
from proxybench.evaluation import CLEAN, OOD_SCHEMA, evaluate_ood, parse_severities

ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate_data_env(monkeypatch, tmp_path)


def memory_source(images: np.ndarray, labels: np.ndarray) -> ImageSource:
    return ImageSource(dataset="cifar10", split="test", labels=labels, num_classes=10, classes=CIFAR10_CLASSES,
                       origin="memory", layout="memory", fetch=lambda idx: list(images[idx]))  # fmt: skip


def smooth_images(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(n, 4, 4, 3), dtype=np.uint8)
    return np.stack([np.asarray(Image.fromarray(im).resize((32, 32), Image.Resampling.BICUBIC)) for im in small])


class AlwaysZero(torch.nn.Module):
    """Predicts class 0 whatever the input; records the input shapes."""

    def __init__(self) -> None:
        super().__init__()
        self.shapes: list[tuple[int, ...]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.shapes.append(tuple(x.shape))
        logits = torch.zeros(x.shape[0], 10)
        logits[:, 0] = 1
        return logits


class Bright(torch.nn.Module):
    """Class 1 when the un-normalised mean pixel exceeds 0.5, else class 0."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        brightness = (x * 0.25 + 0.5).mean(dim=(1, 2, 3))
        return torch.stack([0.5 - brightness, brightness - 0.5] + [torch.full_like(brightness, -9)] * 8, dim=1)


def bright_predictions(images: np.ndarray) -> np.ndarray:
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255).sub(0.5).div(0.25)
    return Bright()(x).argmax(1).numpy()


def test_constant_network_errors_and_mce():
    n = 40
    labels = np.arange(n) % 10  # 10 % class 0 → error 90 % everywhere
    source = memory_source(smooth_images(n), labels)
    result = evaluate_ood(AlwaysZero(), source, corruptions="noise,contrast", severities="1,5", n_images=n,
                          batch_size=16, device="cpu", normalization=(MEAN, STD))  # fmt: skip
    assert result.clean_error == pytest.approx(90.0)
    assert result.corruptions == ["gaussian_noise", "shot_noise", "impulse_noise", "contrast"]
    assert result.severities == (1, 5)
    assert all(v == pytest.approx(90.0) for v in result.errors.values())
    assert result.ce() == pytest.approx(dict.fromkeys(result.corruptions, 90.0))
    assert result.mce == pytest.approx(90.0)  # mean over severities (FlatNAS's code) ...
    assert result.mce_sum == pytest.approx(180.0)  # ... the paper's sum over the 2 severities
    assert result.n_wrong[(CLEAN, 0)] == 36


def test_errors_match_an_independent_computation_and_ignore_batch_size():
    n = 24
    images = smooth_images(n, seed=3)
    labels = bright_predictions(images)  # clean error 0 by construction
    source = memory_source(images, labels)
    kwargs = {"corruptions": "brightness,contrast,gaussian_noise,fog", "severities": (2, 4, 5), "n_images": n,
              "device": "cpu", "normalization": (MEAN, STD), "seed": 5}
    result = evaluate_ood(Bright(), source, batch_size=7, **kwargs)
    again = evaluate_ood(Bright(), source, batch_size=50, **kwargs)
    assert result.errors == again.errors and result.clean_error == 0.0
    expected = {}
    for c in result.corruptions:
        for s in (2, 4, 5):
            wrong = bright_predictions(corrupt(images, c, s, seed=5, indices=np.arange(n))) != labels
            expected[(c, s)] = 100.0 * wrong.mean()
    assert result.errors == pytest.approx(expected)
    assert any(v > 0 for v in expected.values())  # brightness pushes dark images over the threshold
    ce = {c: np.mean([expected[(c, s)] for s in (2, 4, 5)]) for c in result.corruptions}
    assert result.ce() == pytest.approx(ce)
    assert result.mce == pytest.approx(np.mean(list(ce.values())))
    assert result.ce("sum") == pytest.approx({c: 3 * v for c, v in ce.items()})


def test_resolution_resizes_then_corrupts():
    source = memory_source(smooth_images(6), np.zeros(6, dtype=np.int64))
    net = AlwaysZero()
    result = evaluate_ood(net, source, resolution=48, corruptions="pixelate", severities=[3], n_images=6,
                          batch_size=4, device="cpu")  # fmt: skip
    assert {s[1:] for s in net.shapes} == {(3, 48, 48)} and result.resolution == 48
    assert result.settings["resize"].startswith("PIL bilinear")
    assert result.clean_error == 0.0 and net.training  # training flag restored


def test_parquet_schema_metadata_and_plot(tmp_path: Path):
    source = memory_source(smooth_images(10), np.arange(10) % 10)
    result = evaluate_ood(AlwaysZero(), source, corruptions="blur", severities="1,3", n_images=10, device="cpu",
                          label="my-net", settings={"weights": "init"})  # fmt: skip
    path = result.write_parquet(tmp_path / "ood" / "x.parquet")
    table = pq.read_table(path)
    assert table.schema.remove_metadata().equals(OOD_SCHEMA)
    rows = table.to_pylist()
    assert len(rows) == 1 + 4 * 2
    assert rows[0]["corruption"] == CLEAN and rows[0]["severity"] == 0 and rows[0]["error"] == pytest.approx(90.0)
    assert {(r["corruption"], r["severity"]) for r in rows[1:]} == {
        (c, s) for c in ("defocus_blur", "glass_blur", "motion_blur", "zoom_blur") for s in (1, 3)
    }
    assert {r["label"] for r in rows} == {"my-net"} and {r["n"] for r in rows} == {10}
    assert '"weights": "init"' in rows[0]["settings"]
    meta = table.schema.metadata[b"proxybench.ood"].decode()
    assert '"mce": 90.0' in meta and '"ce_sum"' in meta
    png = result.plot(tmp_path / "ood" / "x.png")
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert result.plot(tmp_path / "again.png").read_bytes() == data  # deterministic


def test_library_errors():
    source = memory_source(smooth_images(4), np.zeros(4, dtype=np.int64))
    with pytest.raises(InvalidSettingError, match=r"severities must be integers in 1..5, got '6'"):
        evaluate_ood(AlwaysZero(), source, severities="1,6")
    with pytest.raises(InvalidSettingError, match="resolution must be at least 32"):
        evaluate_ood(AlwaysZero(), source, resolution=16)
    with pytest.raises(InvalidSettingError, match="n_images"):
        evaluate_ood(AlwaysZero(), source, n_images=0)
    assert parse_severities(None) == (1, 2, 3, 4, 5) and parse_severities("5,1,1") == (1, 5)


# --------------------------------------------------------------------------- command line


def invoke(*args: str):
    return CliRunner().invoke(evaluate, list(args), catch_exceptions=False)


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    """A 10-image CIFAR-10 test split as an image folder."""
    images = smooth_images(10, seed=9)
    for k, name in enumerate(CIFAR10_CLASSES):
        folder = tmp_path / "data" / "cifar10" / "test" / name
        folder.mkdir(parents=True)
        Image.fromarray(images[k]).save(folder / f"{k}.png")
    return tmp_path / "data"


def test_cli_untrained_arch_writes_parquet_and_plot(data_dir: Path, tmp_path: Path):
    out = tmp_path / "out"
    result = invoke("--arch", ARCH, "--data-dir", str(data_dir), "--n-images", "10", "--corruptions", "contrast",
                    "--severities", "1,2", "--device", "cpu", "--out", str(out), "--plot", "--label", "tiny")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "UNTRAINED" in result.output and "mCE" in result.output
    assert "contrast" in result.output
    table = pq.read_table(out / "ood" / "tiny-cifar10-r32-s0.parquet")
    assert table.num_rows == 3 and (out / "ood" / "tiny-cifar10-r32-s0.png").is_file()
    assert '"weights": "init"' in table.column("settings")[0].as_py()


def test_cli_checkpoint_with_its_arch(data_dir: Path, tmp_path: Path):
    from proxybench.spaces import get_space

    net = get_space("nb201").build(ARCH, 10)
    path = tmp_path / "net.pt"
    torch.save({"state_dict": net.state_dict(), "arch": ARCH}, path)
    result = invoke("--checkpoint", str(path), "--data-dir", str(data_dir), "--n-images", "4", "--corruptions",
                    "fog", "--severities", "5", "--device", "cpu")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "weights: checkpoint" in result.output and "UNTRAINED" not in result.output
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    result = invoke("--checkpoint", str(bad), "--arch", ARCH, "--data-dir", str(data_dir))
    assert result.exit_code == 1 and result.output.startswith(f"Error: cannot read {bad} as a state dict")


def test_cli_one_line_errors(data_dir: Path, monkeypatch: pytest.MonkeyPatch):
    result = invoke()
    assert result.exit_code == 2 and "give --checkpoint PATH or --arch STR" in result.output
    result = invoke("--arch", ARCH, "--corruptions", "gausian_noise")
    assert result.exit_code == 1
    assert result.output.startswith("Error: unknown corruption 'gausian_noise'; did you mean 'gaussian_noise'")
    assert result.output.count("\n") == 1
    result = invoke("--arch", ARCH, "--severities", "0,3")
    assert result.exit_code == 1 and result.output == "Error: severities must be integers in 1..5, got '0'\n"
    result = invoke("--arch", ARCH, "--plot")
    assert result.exit_code == 2 and "add --out DIR" in result.output
    import proxybench.weights as weights_module

    monkeypatch.delattr(weights_module, "get_weights_provider", raising=False)
    result = invoke("--arch", ARCH, "--weights", "train:epochs=1", "--data-dir", str(data_dir), "--n-images", "2")
    assert result.exit_code == 1
    assert result.output == "Error: --weights is not available yet (proxybench.weights has no get_weights_provider)\n"


def test_cli_has_help_with_an_example():
    result = invoke("-h")
    assert result.exit_code == 0 and "--corruptions" in result.output and "Example" in (evaluate.help or "")
