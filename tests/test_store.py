"""The scores store: incremental journal, atomic parts, crash recovery, no duplicates."""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone

import duckdb
import pyarrow.parquet as pq
import pytest

from proxybench.errors import StoreError
from proxybench.store import SCORES_SCHEMA, ScoreWriter, read_scores, stored_keys
from proxybench.store.scores import _recover_journals


def make_row(arch: str, proxy: str = "snip", score: float = 1.0, status: str = "ok", run_id: str = "r") -> dict:
    return {
        "space": "nb201", "arch": arch, "arch_uid": "u-" + arch, "dataset": "cifar10", "proxy": proxy,
        "score": score, "status": status, "error": None, "higher_is_better": True, "seed": 0,
        "batch_size": 64, "batch_id": "fixed-s0", "preset": "proxybench", "weights": "init", "settings": "{}",
        "settings_hash": "h", "device": "cpu", "dtype": "float32", "seconds": 0.1,
        "proxybench_version": "0", "torch_version": "0", "run_id": run_id, "created_at": datetime.now(timezone.utc),
    }


def test_rows_roll_into_parts_and_read_back(tmp_path):
    with ScoreWriter(tmp_path, "run1", {"x": 1}, rows_per_part=3) as writer:
        for i in range(7):
            writer.add([make_row(f"a{i}")])
    parts = sorted((tmp_path / "scores").glob("*.parquet"))
    assert [p.name for p in parts] == [f"part-run1-0000{i}.parquet" for i in range(3)]
    assert not list((tmp_path / "scores").glob("journal-*"))
    table = read_scores(tmp_path)
    assert table.num_rows == 7 and table.schema.equals(SCORES_SCHEMA)
    meta = pq.read_schema(parts[0]).metadata
    assert json.loads(meta[b"proxybench.run"]) == {"x": 1}
    run = json.loads((tmp_path / "runs" / "run1.json").read_text())
    assert run["status"] == "finished"


def test_nonfinite_scores_survive_the_journal(tmp_path):
    writer = ScoreWriter(tmp_path, "r", {})
    writer.add([make_row("a", score=float("nan"), status="nonfinite"),
                make_row("b", score=float("inf"), status="nonfinite"),
                make_row("c", score=float("-inf"), status="nonfinite")])
    writer.close()
    scores = read_scores(tmp_path).column("score").to_pylist()
    assert math.isnan(scores[0]) and scores[1] == math.inf and scores[2] == -math.inf


def test_crash_leaves_journal_that_is_recovered_without_the_torn_line(tmp_path):
    writer = ScoreWriter(tmp_path, "crashed", {})
    writer.add([make_row("a"), make_row("a", proxy="grasp")])
    writer.add([make_row("b")])
    # Simulate a kill in the middle of writing the next architecture's line.
    writer._journal.write('{"space": "nb201", "arch": "c", "trunc')
    writer._journal.flush()
    # A live writer's journal is never recovered by someone else, but its rows count as stored.
    ScoreWriter(tmp_path, "other", {}).close()
    assert len(list((tmp_path / "scores").glob("journal-*"))) == 1
    assert len(stored_keys(tmp_path)) == 3
    writer._journal.close()  # the process died: its lock is gone, the journal stays
    ScoreWriter(tmp_path, "next", {}).close()  # opening the directory recovers
    keys = stored_keys(tmp_path)
    assert sorted((k[1], k[3]) for k in keys) == [("a", "grasp"), ("a", "snip"), ("b", "snip")]
    assert read_scores(tmp_path).num_rows == 3
    assert not list((tmp_path / "scores").glob("journal-*"))


def test_recovery_does_not_duplicate_when_part_already_written(tmp_path):
    writer = ScoreWriter(tmp_path, "r", {})
    writer.add([make_row("a")])
    journal = writer._journal_path()
    content = journal.read_text()
    writer._roll()
    # Crash between writing the part and deleting the journal.
    journal.write_text(content)
    _recover_journals(tmp_path / "scores")
    assert read_scores(tmp_path).num_rows == 1


def test_corrupt_part_is_a_clear_error(tmp_path):
    (tmp_path / "scores").mkdir()
    (tmp_path / "scores" / "part-x-00000.parquet").write_bytes(b"not parquet")
    with pytest.raises(StoreError, match="corrupt Parquet part .*move it away"):
        stored_keys(tmp_path)


def test_parts_read_as_one_table_in_duckdb(tmp_path):
    for run in ("r1", "r2"):
        with ScoreWriter(tmp_path, run, {}) as writer:
            writer.add([make_row(f"{run}-a"), make_row(f"{run}-b")])
    con = duckdb.connect()
    n = con.execute("select count(*) from read_parquet(?)", [str(tmp_path / "scores" / "*.parquet")]).fetchone()[0]
    assert n == 4


def test_status_tells_finished_running_and_killed_runs_apart(tmp_path):
    from proxybench.store.status import results_status

    finished = ScoreWriter(tmp_path, "done", {"archs_requested": 2})
    finished.add([make_row("a", run_id="done"),
                  make_row("a", proxy="grasp", score=float("nan"), status="nonfinite", run_id="done")])
    finished.close()
    live = ScoreWriter(tmp_path, "live", {})
    live.add([make_row("b", run_id="live")])
    killed = ScoreWriter(tmp_path, "killed", {})
    killed.add([make_row("c", status="error", score=float("nan"), run_id="killed")])
    killed._journal.close()  # the process died: its locks are gone, its journal and lock file stay
    killed._run_lock.close()
    states = {r.run_id: (r.state, r.rows) for r in results_status(tmp_path).runs}
    assert states == {"done": ("finished", 2), "live": ("running", 1), "killed": ("killed", 1)}
    live.close()
    assert not (tmp_path / "runs" / "live.lock").exists()
    # A record left by a version without run locks is reported as such, never as finished.
    record = json.loads((tmp_path / "runs" / "done.json").read_text())
    (tmp_path / "runs" / "old.json").write_text(json.dumps({**record, "run_id": "old", "status": "running"}))
    assert {r.run_id: r.state for r in results_status(tmp_path).runs}["old"] == "unclosed (no run lock)"


def test_status_counts_each_row_once_by_proxy_and_status(tmp_path):
    from proxybench.store.status import results_status

    writer = ScoreWriter(tmp_path, "r", {})
    writer.add([make_row("a"), make_row("b"), make_row("c", score=float("inf"), status="nonfinite")])
    writer.add([make_row("a", proxy="grasp", status="error", score=float("nan"))])
    journal = writer._journal_path()
    content = journal.read_text()
    writer._roll()
    journal.write_text(content)  # a journal still on disk next to the part it was rolled into
    status = results_status(tmp_path)
    assert status.journal_rows == 4
    coverage = {c.proxy: (c.archs, c.classes, c.ok, c.nonfinite, c.error, c.space_size) for c in status.coverage}
    assert coverage == {"snip": (3, 3, 2, 1, 0, 15625), "grasp": (1, 1, 0, 0, 1, 15625)}
    assert "snip" in str(status) and "3/15625" in str(status)


def test_status_of_a_directory_without_results_is_a_clear_error(tmp_path):
    from proxybench.store.status import results_status

    with pytest.raises(StoreError, match="not a results directory.*proxybench score --out"):
        results_status(tmp_path)


def test_status_of_a_corrupt_part_is_a_clear_error(tmp_path):
    from proxybench.store.status import results_status

    ScoreWriter(tmp_path, "r", {}).close()
    (tmp_path / "scores" / "part-x-00000.parquet").write_bytes(b"not parquet")
    with pytest.raises(StoreError, match="cannot read the scores files"):
        results_status(tmp_path)
