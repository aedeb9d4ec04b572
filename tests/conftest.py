"""Shared fixtures.

Tests that need the public data (CIFAR-10 Parquet, the NB201 ground-truth CSV, the
NAS-Bench-Suite-Zero reference sample) find it through ``PROXYBENCH_SHARED_DIR`` (a folder
with ``data/`` and ``reference/``), falling back to ``../shared`` beside the repository.
Without it those tests are skipped with a reason, unless ``PROXYBENCH_REQUIRE_SHARED=1``
(set by CI), in which case they fail: CI must never pass by skipping them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


# Tiny networks on the CPU are dominated by thread start-up and contention: one thread per
# test process (pytest -n 2 gives one process per core) is several times faster.
torch.set_num_threads(1)


def _shared_dir() -> Path | None:
    env = os.environ.get("PROXYBENCH_SHARED_DIR")
    candidate = Path(env) if env else REPO.parent / "shared"
    return candidate if (candidate / "data").is_dir() else None


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The shared folder (``data/``, ``reference/``); skips or fails when absent (see module doc)."""
    found = _shared_dir()
    if found is None:
        message = "shared data not found: set PROXYBENCH_SHARED_DIR to the folder holding data/ and reference/"
        if os.environ.get("PROXYBENCH_REQUIRE_SHARED") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture(scope="session")
def data_dir(shared_dir: Path) -> Path:
    """What a user passes as ``--data-dir``: holds ``cifar10/train.parquet`` etc."""
    return shared_dir / "data"


@pytest.fixture(scope="session")
def nb201_csv(shared_dir: Path) -> Path:
    return shared_dir / "data" / "nb201" / "nats_bench_tss_200ep.csv"


@pytest.fixture(scope="session")
def reference_json(shared_dir: Path) -> Path:
    return shared_dir / "reference" / "naslib_zc_nasbench201_sample.json"
