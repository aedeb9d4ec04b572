"""Small scores/truth Parquet files for tests: rows in the real schemas, written where asked."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.parquet as pq

from proxybench.spaces import get_space
from proxybench.spaces.nb201 import all_archs, arch_uid

ARCHS = list(all_archs())

#: One NB201 isomorphism class of three strings (test_scale checks it), for dedup and scale-out tests.
ISO = [
    "|skip_connect~0|+|none~0|none~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_1x1~2|",
    "|skip_connect~0|+|none~0|none~1|+|nor_conv_1x1~0|skip_connect~1|nor_conv_1x1~2|",
    "|nor_conv_1x1~0|+|none~0|none~1|+|skip_connect~0|skip_connect~1|nor_conv_1x1~2|",
]
#: Seven architectures of other classes.
OTHERS = [a for a in get_space("nb201").sample(12, seed=1) if arch_uid(a) != arch_uid(ISO[0])][:7]

NOW = datetime(2024, 1, 1, tzinfo=timezone.utc)


def score_rows(proxy, values, *, dataset="cifar10", higher=True, settings_hash=None, run_id="run1", seed=0,
               statuses=None, archs=ARCHS):
    rows = []
    for i, value in enumerate(values):
        rows.append({
            "space": "nb201", "arch": archs[i], "arch_uid": arch_uid(archs[i]), "dataset": dataset, "proxy": proxy,
            "score": float(value), "status": (statuses or {}).get(i, "ok" if math.isfinite(value) else "nonfinite"),
            "error": None, "higher_is_better": higher, "seed": seed, "batch_size": 64, "batch_id": "b",
            "preset": "proxybench", "weights": "init", "settings": "{}",
            "settings_hash": settings_hash or f"hash-{proxy}-{seed}", "device": "cpu", "dtype": "float32",
            "seconds": 0.1, "proxybench_version": "0", "torch_version": "0", "run_id": run_id, "created_at": NOW,
        })
    return rows


def truth_rows(values, *, dataset="cifar10", metric="test_acc", source="csv:t.csv", archs=ARCHS):
    return [{"space": "nb201", "arch": archs[i], "arch_uid": arch_uid(archs[i]), "arch_id": i, "dataset": dataset,
             "metric": metric, "value": float(v), "epochs": 200, "seed": "mean", "source": source}
            for i, v in enumerate(values)]


def write(path, rows, schema):
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return path


def journal_lines(out) -> int:
    """Rows a running scorer has journaled under ``out/scores`` (a journal may vanish as it rolls)."""
    from pathlib import Path

    lines = 0
    for journal in (Path(out) / "scores").glob("journal-*.jsonl"):
        try:
            lines += journal.read_text().count("\n")
        except FileNotFoundError:
            pass
    return lines


def isolate_data_env(monkeypatch, tmp_path) -> None:
    """No test may read the user's data/cache folders or reach the network."""
    from proxybench.data import sources

    monkeypatch.delenv("PROXYBENCH_DATA_DIR", raising=False)
    monkeypatch.setenv("PROXYBENCH_CACHE_DIR", str(tmp_path / "cache"))

    def no_network(dataset, target) -> None:
        raise AssertionError("a test tried to download")

    monkeypatch.setattr(sources, "_download_torchvision", no_network)
