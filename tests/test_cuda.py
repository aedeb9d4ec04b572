"""The CUDA path on a real GPU: every zero-cost proxy runs, agrees with the CPU, and is reproducible.

Marked ``cuda`` and skipped where ``torch.cuda.is_available()`` is False (the development
machines and CI have no GPU), failed there instead with ``PROXYBENCH_REQUIRE_CUDA=1``, which
``benchmarks/device_check.sh`` sets when it runs them on the GPU machine
(``pytest -m cuda tests/test_cuda.py``) with the bundled data (``PROXYBENCH_SHARED_DIR=.device``).
The real engine scores a few NB201 architectures of distinct isomorphism classes:

* on CUDA no row is an ``error`` and every row records the determinism settings;
* CUDA scores agree with CPU scores within each proxy's tolerance
  (:data:`proxybench.agreement.CUDA_VS_CPU`, justified there) and rank the architectures
  alike (Spearman >= 0.99);
* two CUDA runs with the same seed are identical bit for bit, and in ``strict`` mode (an op
  without a deterministic CUDA kernel raises) the suite still runs without an error row;
* two worker processes sharing the GPU give the rows of one process.
"""

from __future__ import annotations

import json
import os

import pytest
import torch

from proxybench.agreement import compare_rows, identical_rows
from proxybench.device import DETERMINISM_ENV, TorchDeterminismState, determinism_settings, nondeterministic_alerts
from proxybench.proxies.registry import resolve_proxies
from proxybench.scoring import score_architectures
from proxybench.store import read_scores

pytestmark = pytest.mark.cuda


@pytest.fixture(autouse=True, scope="module")
def _needs_cuda():
    """Skip without a GPU, unless ``PROXYBENCH_REQUIRE_CUDA=1`` (the GPU check sets it): then fail."""
    if not torch.cuda.is_available():
        message = "needs a CUDA GPU (torch.cuda.is_available() is False)"
        if os.environ.get("PROXYBENCH_REQUIRE_CUDA") == "1":
            pytest.fail(f"PROXYBENCH_REQUIRE_CUDA=1 but this test {message}")
        pytest.skip(message)

#: Five architectures of five isomorphism classes whose output depends on the input (no proxy errors by
#: design), and whose zen scores lie far apart (CPU, batch 32, seeds 1-4: about 31, 57, 84, 142, 180, each
#: within 3% across seeds): zen draws differently on CUDA, so only a clear order can be asked to hold.
ARCHS = [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
    "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|avg_pool_3x3~1|nor_conv_1x1~2|",
    "|nor_conv_1x1~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|nor_conv_3x3~1|none~2|",
    "|skip_connect~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|none~0|nor_conv_1x1~1|nor_conv_3x3~2|",
]
BATCH = 32
SEED = 1


@pytest.fixture(scope="module")
def restore_torch_state():
    state = TorchDeterminismState.capture()
    yield
    state.restore()


def _score(out, data_dir, device, archs=ARCHS, **kwargs):
    summary = score_architectures(archs, proxies="zero-cost", data_dir=data_dir, batch_size=BATCH, seed=SEED,
                                  device=device, out=out, progress=False, dedup=False, **kwargs)
    return summary, read_scores(out).to_pylist()


@pytest.fixture(scope="module")
def runs(tmp_path_factory, data_dir, restore_torch_state):
    """CPU rows, then two CUDA runs with the same seed (the ops that warned are kept too)."""
    root = tmp_path_factory.mktemp("cuda")
    _, cpu = _score(root / "cpu", data_dir, "cpu")
    with nondeterministic_alerts() as alerts:
        first_summary, first = _score(root / "cuda1", data_dir, "cuda")
        _, second = _score(root / "cuda2", data_dir, "cuda")
    return {"cpu": cpu, "first": first, "second": second, "summary": first_summary, "alerts": alerts}


def test_every_zero_cost_proxy_runs_on_cuda(runs):
    names = {s.name for s in resolve_proxies("zero-cost")}
    rows = runs["first"]
    assert {r["proxy"] for r in rows} == names and len(rows) == len(ARCHS) * len(names)
    errors = [(r["arch"], r["proxy"], r["error"]) for r in rows if r["status"] == "error"]
    assert errors == []
    assert all(r["device"].startswith("cuda") for r in rows)


def test_cuda_rows_record_the_determinism_settings(runs):
    expected = determinism_settings("warn")  # reads CUBLAS_WORKSPACE_CONFIG as the run left it
    for row in runs["first"]:
        assert json.loads(row["settings"])["determinism"] == expected
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] in (":4096:8", ":16:8")
    assert torch.are_deterministic_algorithms_enabled() and torch.backends.cudnn.deterministic
    assert not torch.backends.cudnn.benchmark and not torch.backends.cudnn.allow_tf32


def test_no_op_of_the_suite_lacks_a_deterministic_cuda_kernel(runs):
    assert runs["alerts"] == []


def test_cuda_agrees_with_cpu(runs):
    report = compare_rows(runs["cpu"], runs["first"])
    bad = {k: v.to_dict() for k, v in report.items() if not v.ok}
    assert bad == {}
    assert all(v.compared == len(ARCHS) for v in report.values())


def test_same_seed_gives_bit_identical_cuda_scores(runs):
    assert identical_rows(runs["first"], runs["second"]) == []


def test_strict_mode_runs_the_suite_without_errors(tmp_path, data_dir, monkeypatch, restore_torch_state, runs):
    monkeypatch.setenv(DETERMINISM_ENV, "strict")
    summary, rows = _score(tmp_path, data_dir, "cuda", archs=ARCHS[:2])
    assert summary.errors == 0, [(r["proxy"], r["error"]) for r in rows if r["status"] == "error"]
    assert not torch.is_deterministic_algorithms_warn_only_enabled()
    # other settings hash, same numbers: strict only changes what happens on a missing kernel
    first = {(r["arch"], r["proxy"]): r["score"] for r in runs["first"] if r["arch"] in ARCHS[:2]}
    assert {(r["arch"], r["proxy"]): r["score"] for r in rows} == first
    torch.use_deterministic_algorithms(True, warn_only=True)


def test_two_workers_sharing_the_gpu_give_the_same_rows(tmp_path, data_dir, runs):
    _, rows = _score(tmp_path, data_dir, "cuda", archs=ARCHS[:4], workers=2)
    first = [r for r in runs["first"] if r["arch"] in ARCHS[:4]]
    assert identical_rows(first, rows) == []
