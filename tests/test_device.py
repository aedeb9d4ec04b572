"""CUDA determinism settings (proxybench.device) and run agreement (proxybench.agreement), on the CPU.

What needs no GPU is tested here: the settings dict and its modes, that configuring sets the
torch switches, that the engine records the dict only for CUDA (CPU hashes are the ones
every stored CPU score already has), which aten ops the zero-cost suite dispatches (none
without a deterministic CUDA kernel), and the comparison functions. tests/test_cuda.py
checks the same things on a GPU.
"""

from __future__ import annotations

import io
import math
import warnings

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image
from torch.utils._python_dispatch import TorchDispatchMode

from proxybench import device as det
from proxybench.agreement import CUDA_VS_CPU, UNVETTED, compare_rows, identical_rows
from proxybench.errors import InvalidSettingError, ProxybenchError
from proxybench.scoring import _prepare, score_architectures
from proxybench.spaces import get_space

ARCHS = [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
]

#: settings_hash of CPU rows as computed before proxybench.device existed (default preset,
#: seed 0, batch 64; and seed 3, batch 8): the CUDA key must not change them.
CPU_HASHES = {"grad_norm": "4381e4268a61de72", "params": "99f4ae1a5223ee80", "synflow": "3e1aa87f15f00aac",
              "zen": "271362d9ed1bd948"}
CPU_HASHES_SEED3_B8 = {"grad_norm": "122e797817d8af90", "synflow": "5671c437edb314bb"}


@pytest.fixture()
def torch_state(monkeypatch):
    """Put the process-wide torch switches (and CUBLAS_WORKSPACE_CONFIG) back after the test."""
    monkeypatch.delenv(det.DETERMINISM_ENV, raising=False)
    state = det.TorchDeterminismState.capture()
    yield state
    state.restore()


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    """64 random images (one default batch) as CIFAR-10 Parquet in the shared layout (JPEG struct, int64)."""
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    blobs = []
    for _ in range(64):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(buf, format="JPEG")
        blobs.append({"bytes": buf.getvalue(), "path": None})
    table = pa.table({"img": pa.array(blobs, type=pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
                      "label": pa.array([i % 10 for i in range(64)], type=pa.int64())})
    (root / "cifar10").mkdir()
    pq.write_table(table, root / "cifar10" / "train.parquet")
    return root


def _setup(data, device="cpu", proxies="zero-cost", seed=None, batch_size=None):
    return _prepare(get_space("nb201"), "nb201", proxies, "cifar10", None, seed, batch_size, device, data, None, False)


# ----------------------------------------------------------------------------- settings


def test_settings_of_each_mode():
    warn = det.determinism_settings(environ={})
    assert warn == {"mode": "warn", "cublas_workspace_config": ":4096:8", "cudnn_deterministic": True,
                    "cudnn_benchmark": False, "deterministic_algorithms": True, "warn_only": True, "tf32": False}
    assert det.determinism_settings("strict", environ={})["warn_only"] is False
    assert det.determinism_settings("off", environ={}) == {"mode": "off"}
    assert det.determinism_settings(environ={det.DETERMINISM_ENV: "STRICT"})["mode"] == "strict"
    # a deterministic value the user chose is kept; anything else is replaced
    assert det.determinism_settings(environ={det.CUBLAS_ENV: ":16:8"})["cublas_workspace_config"] == ":16:8"
    assert det.determinism_settings(environ={det.CUBLAS_ENV: ":0:0"})["cublas_workspace_config"] == ":4096:8"
    with pytest.raises(InvalidSettingError, match="warn, strict, off"):
        det.determinism_settings("fast")
    assert issubclass(InvalidSettingError, ProxybenchError)


def test_configure_sets_the_torch_switches_and_returns_what_it_set(torch_state):
    env: dict[str, str] = {}
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = True
    settings = det.configure_cuda_determinism(environ=env)
    assert settings == det.determinism_settings(environ={})
    assert env[det.CUBLAS_ENV] == ":4096:8"
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    assert torch.are_deterministic_algorithms_enabled() and torch.is_deterministic_algorithms_warn_only_enabled()
    assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
    det.configure_cuda_determinism("strict", environ=env)
    assert not torch.is_deterministic_algorithms_warn_only_enabled()


def test_off_touches_nothing(torch_state):
    torch.backends.cudnn.benchmark = True
    env: dict[str, str] = {}
    assert det.configure_cuda_determinism("off", environ=env) == {"mode": "off"}
    assert env == {} and torch.backends.cudnn.benchmark and not torch.are_deterministic_algorithms_enabled()


def test_state_restore_undoes_configure(torch_state):
    before = det.TorchDeterminismState.capture()
    det.configure_cuda_determinism()
    assert det.TorchDeterminismState.capture() != before
    before.restore()
    assert det.TorchDeterminismState.capture() == before


def test_alerts_are_collected_and_other_warnings_pass():
    with pytest.warns(UserWarning, match="unrelated"):
        with det.nondeterministic_alerts() as alerts:
            for _ in range(2):
                warnings.warn("index_add_cuda_ does not have a deterministic implementation, but you set "
                              "'torch.use_deterministic_algorithms(True, warn_only=True)'")
            warnings.warn("unrelated")
    assert alerts == ["index_add_cuda_"]


# ----------------------------------------------------------------------------- engine


def test_cpu_settings_and_hashes_are_unchanged(tiny_data):
    setup = _setup(tiny_data)
    assert "determinism" not in setup.run_settings
    assert {k: setup.hashes[k] for k in CPU_HASHES} == CPU_HASHES
    setup = _setup(tiny_data, proxies="grad_norm,synflow", seed=3, batch_size=8)
    assert setup.hashes == CPU_HASHES_SEED3_B8


def test_cuda_runs_record_the_settings_in_settings_and_hash(tiny_data, monkeypatch, torch_state):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # torch.device("cuda") needs no GPU
    cpu = _setup(tiny_data)
    warn = _setup(tiny_data, device="cuda")
    assert warn.run_settings["determinism"] == det.determinism_settings("warn", environ={})
    assert torch.are_deterministic_algorithms_enabled()  # configured by _prepare
    monkeypatch.setenv(det.DETERMINISM_ENV, "strict")
    strict = _setup(tiny_data, device="cuda")
    assert strict.run_settings["determinism"]["warn_only"] is False
    for name in CPU_HASHES:
        assert len({cpu.hashes[name], warn.hashes[name], strict.hashes[name]}) == 3
    monkeypatch.setenv(det.DETERMINISM_ENV, "nonsense")
    with pytest.raises(InvalidSettingError):
        _setup(tiny_data, device="cuda")


def test_cuda_without_a_gpu_is_still_a_clear_error(tiny_data):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ProxybenchError, match="CUDA is not available"):
        _setup(tiny_data, device="cuda")


class _AtenOps(TorchDispatchMode):
    """Records the overload-packet name of every aten op dispatched inside the block."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: set[str] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.add(func.overloadpacket.__name__)
        return func(*args, **(kwargs or {}))


def test_recorder_sees_an_op_without_deterministic_cuda_kernel():
    """The audit below can fail: the recorder's names are the ones the list uses."""
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    with _AtenOps() as rec:
        torch.nn.AdaptiveAvgPool2d(2)(x).sum().backward()
        torch.histc(torch.randn(10), bins=4)
    assert {"_adaptive_avg_pool2d_backward", "histc"} <= rec.ops & det.NO_DETERMINISTIC_CUDA_KERNEL


def test_zero_cost_suite_dispatches_no_op_without_deterministic_cuda_kernel(tiny_data, tmp_path):
    """Every aten op of the suite on the real engine (NB201, both archs) has a deterministic CUDA kernel.

    The engine dispatches the same aten ops on CUDA, except backends (cuDNN convolution and
    BatchNorm instead of oneDNN's), which are covered by ``cudnn.deterministic``. NB201's
    global pooling (``AdaptiveAvgPool2d(1)``) is a ``mean``, not the adaptive-pool backward.
    """
    with _AtenOps() as rec:
        summary = score_architectures(ARCHS, proxies="zero-cost", data_dir=tiny_data, batch_size=8,
                                      out=tmp_path, progress=False)
    assert summary.errors == 0
    assert {"convolution_backward", "nll_loss_forward", "native_batch_norm_backward", "mean"} <= rec.ops
    assert rec.ops & det.NO_DETERMINISTIC_CUDA_KERNEL == set()


# ----------------------------------------------------------------------------- agreement


def _rows(scores, proxy="grad_norm", statuses=None):
    return [{"arch": f"a{i}", "proxy": proxy, "score": s, "status": (statuses or {}).get(i, "ok")}
            for i, s in enumerate(scores)]


def test_agreement_within_and_beyond_tolerance():
    ref = _rows([1.0, 2.0, 3.0, 4.0])
    rtol = CUDA_VS_CPU["grad_norm"].rtol
    close = _rows([1.0, 2.0 * (1 + rtol / 2), 3.0, 4.0])
    far = _rows([1.0, 2.0 * (1 + 2 * rtol), 3.0, 4.0])
    assert compare_rows(ref, close)["grad_norm"].ok
    bad = compare_rows(ref, far)["grad_norm"]
    assert not bad.ok and not bad.within_tolerance and bad.rank_ok and bad.worst_arch == "a1"
    assert math.isclose(bad.max_rel_diff, 2 * rtol / (1 + 2 * rtol))


def test_agreement_ranks_statuses_and_sample_scale():
    swapped = compare_rows(_rows([1.0, 2.0, 3.0, 4.0]), _rows([2.0, 1.0, 3.0, 4.0]))["grad_norm"]
    assert swapped.spearman == pytest.approx(0.8) and not swapped.rank_ok
    mism = compare_rows(_rows([1.0, 2.0, 3.0]), _rows([1.0, float("nan"), 3.0], statuses={1: "error"}))["grad_norm"]
    assert mism.status_mismatches == ["a1: ok vs error"] and mism.compared == 2 and not mism.ok
    # plain is a signed sum: a near-zero value is judged against (at least) the sample's median |score|
    ref, oth = _rows([1e-6, 10.0, -20.0, 30.0], "plain"), _rows([2e-6, 10.0, -20.0, 30.0], "plain")
    assert compare_rows(ref, oth)["plain"].ok and not compare_rows(ref, oth)["plain"].max_rel_diff > 1e-6
    assert not compare_rows(_rows([1e-6, 1.0, 2.0]), _rows([2e-6, 1.0, 2.0]))["grad_norm"].ok


def test_every_zero_cost_proxy_has_a_justified_tolerance():
    from proxybench.proxies.registry import resolve_proxies

    names = {s.name for s in resolve_proxies("zero-cost")}
    assert names <= set(CUDA_VS_CPU), names - set(CUDA_VS_CPU)
    assert all(t.vetted and t.why for t in CUDA_VS_CPU.values()) and not UNVETTED.vetted
    assert compare_rows(_rows([1.0], "new_proxy"), _rows([1.0], "new_proxy"))["new_proxy"].tolerance is UNVETTED


def test_identical_rows_compares_bits():
    a = _rows([0.1 + 0.2, float("nan"), 1.0], statuses={1: "error"})
    assert identical_rows(a, [dict(r) for r in a]) == []
    b = [dict(r) for r in a]
    b[0]["score"] = 0.3  # 0.30000000000000004 != 0.3
    b[2]["status"] = "nonfinite"
    problems = identical_rows(a, b[:2] + b[2:] + _rows([5.0], "extra"))
    assert len(problems) == 3 and "only in the second run" in problems[0]
