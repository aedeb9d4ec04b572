"""Data integrity of a results directory: journals with garbage, foreign Parquet files,
rows that are still in journals, duplicates from concurrent runs and their repair."""

from __future__ import annotations

import json
import warnings

import pytest
from test_store import make_row

from proxybench.errors import StoreError
from proxybench.store import ScoreWriter, read_scores, stored_keys
from proxybench.store.scores import StoreWarning
from proxybench.store.status import results_status


def _killed_writer(out, run_id, rows):
    """A writer that journaled ``rows`` and then died (its locks are gone, its files stay)."""
    writer = ScoreWriter(out, run_id, {})
    writer.add(rows)
    writer._journal.close()
    writer._run_lock.close()
    return writer._journal_path()


# -- journals with lines that are not rows ----------------------------------------------------
def test_a_corrupt_journal_line_is_skipped_with_a_warning_naming_file_and_line(tmp_path):
    journal = _killed_writer(tmp_path, "dead", [make_row("a"), make_row("b")])
    lines = journal.read_text().splitlines(keepends=True)
    journal.write_text(lines[0] + "garbage\x00{not json\n" + lines[1] + '{"space": "nb201"}\n')
    with pytest.warns(StoreWarning) as caught:
        status = results_status(tmp_path)
    assert sorted({str(w.message) for w in caught}) == [
        f"{journal} line {n} is not a score row (corrupt); skipped, resuming the run scores its architecture again"
        for n in (2, 4)]  # once per line, although status reads the journal twice
    assert status.journal_rows == 2 and {c.archs for c in status.coverage} == {2}
    assert {k[1] for k in stored_keys(tmp_path)} == {"a", "b"}
    # Opening the directory for writing recovers the journal into a part without the garbage.
    ScoreWriter(tmp_path, "next", {}).close()
    assert sorted(read_scores(tmp_path).column("arch").to_pylist()) == ["a", "b"]
    assert not list((tmp_path / "scores").glob("journal-*"))


def test_a_torn_last_line_is_dropped_at_recovery_with_a_warning(tmp_path):
    journal = _killed_writer(tmp_path, "dead", [make_row("a")])
    with open(journal, "a", encoding="utf-8") as fh:
        fh.write('{"space": "nb201", "arch": "b", "tru')
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a reader of a (possibly live) journal does not warn about its tail
        assert len(stored_keys(tmp_path)) == 1
    with pytest.warns(StoreWarning, match=rf"{journal.name} line 2 is truncated"):
        ScoreWriter(tmp_path, "next", {}).close()
    assert read_scores(tmp_path).column("arch").to_pylist() == ["a"]


def test_status_cli_reads_past_a_corrupt_journal_line(tmp_path):
    from click.testing import CliRunner
    from proxybench_cli.main import cli

    journal = _killed_writer(tmp_path, "dead", [make_row("a")])
    with open(journal, "a", encoding="utf-8") as fh:
        fh.write("}}}\n")
    result = CliRunner().invoke(cli, ["status", str(tmp_path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "rows still in journals: 1" in result.output


# -- schema validation in every reader ----------------------------------------------------------
def _store_with_truth(tmp_path, n=60):
    import numpy as np
    from builders import score_rows, truth_rows, write

    from proxybench.store import SCORES_SCHEMA
    from proxybench.truth import TRUTH_SCHEMA

    rng = np.random.default_rng(0)
    acc = rng.uniform(10, 95, n).round(2)
    rows = score_rows("good", acc + rng.normal(scale=10, size=n))
    write(tmp_path / "truth" / "t.parquet", truth_rows(acc), TRUTH_SCHEMA)
    return rows, SCORES_SCHEMA


def _correlate_cli(out, *extra):
    from click.testing import CliRunner
    from proxybench_cli.main import cli

    return CliRunner().invoke(cli, ["correlate", "--scores", str(out), "--truth", str(out), "--top-k", "none",
                                    "--format", "json", *extra], catch_exceptions=False)


def test_a_part_without_the_space_column_is_an_error_not_a_silent_drop(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    from builders import write

    from proxybench.store import open_views

    rows, schema = _store_with_truth(tmp_path)
    write(tmp_path / "scores" / "part-a.parquet", rows[:30], schema)
    old = pa.Table.from_pylist(rows[30:], schema=schema).drop_columns(["space"])
    pq.write_table(old, tmp_path / "scores" / "part-b.parquet")
    message = r"part-b.parquet is not a proxybench scores file \(missing column space\); "
    with pytest.raises(StoreError, match=message + "move it out of the scores folder"):
        open_views(out=tmp_path).close()
    for reader in (results_status, stored_keys, read_scores):
        with pytest.raises(StoreError, match=message):
            reader(tmp_path)
    result = _correlate_cli(tmp_path)
    assert result.exit_code == 1 and result.output.startswith("Error: ") and result.output.count("\n") == 1
    assert "part-b.parquet is not a proxybench scores file (missing column space)" in result.output


def test_a_foreign_parquet_in_scores_is_a_one_line_error_in_status_and_correlate(tmp_path):
    from builders import truth_rows, write
    from click.testing import CliRunner
    from proxybench_cli.main import cli

    from proxybench.truth import TRUTH_SCHEMA

    rows, schema = _store_with_truth(tmp_path)
    write(tmp_path / "scores" / "part-a.parquet", rows, schema)
    write(tmp_path / "scores" / "foreign.parquet", truth_rows([1.0, 2.0]), TRUTH_SCHEMA)
    (tmp_path / "runs").mkdir()
    for args in (["status", str(tmp_path)],
                 ["correlate", "--scores", str(tmp_path), "--truth", str(tmp_path), "--top-k", "none"]):
        result = CliRunner().invoke(cli, args, catch_exceptions=False)
        assert result.exit_code == 1, result.output
        assert result.output.startswith("Error: ") and result.output.count("\n") == 1, result.output
        assert "foreign.parquet is not a proxybench scores file (missing columns proxy, score" in result.output
    # A wrongly typed column is named too, and truth files are checked the same way.
    write(tmp_path / "scores" / "foreign.parquet", [{**r, "score": str(r["score"])} for r in rows[:2]],
          schema.set(schema.get_field_index("score"), pa_field("score", "string")))
    with pytest.raises(StoreError, match="foreign.parquet is not a proxybench scores file .*score is string, not double"):
        stored_keys(tmp_path)
    (tmp_path / "scores" / "foreign.parquet").unlink()
    write(tmp_path / "truth" / "scores-by-mistake.parquet", rows, schema)
    result = _correlate_cli(tmp_path)
    assert result.exit_code == 1 and "scores-by-mistake.parquet is not a proxybench truth file (missing columns " \
        "metric, value; seed is int64, not string); move it out of the truth folder" in result.output, result.output


def test_the_search_truth_reader_checks_the_schema_too(tmp_path):
    from builders import write

    from proxybench.search.measures import read_truth_accuracy

    rows, schema = _store_with_truth(tmp_path)
    write(tmp_path / "truth" / "scores-by-mistake.parquet", rows, schema)
    with pytest.raises(StoreError, match=r"scores-by-mistake.parquet is not a proxybench truth file \(missing "):
        read_truth_accuracy(tmp_path)


def pa_field(name, type_name):
    import pyarrow as pa

    return pa.field(name, getattr(pa, type_name)())


# -- journal rows are visible to correlate and tables -------------------------------------------
def test_correlate_and_tables_read_the_rows_still_in_journals(tmp_path):
    from click.testing import CliRunner
    from proxybench_cli.main import cli

    rows, _ = _store_with_truth(tmp_path)
    live = ScoreWriter(tmp_path, "live", {})  # a run still going: nothing rolled into a part yet
    live.add(rows[:40])
    _killed_writer(tmp_path, "killed", rows[40:])  # a run killed before its journal became a part
    result = _correlate_cli(tmp_path)
    assert result.exit_code == 0, result.output
    assert [r["n"] for r in json.loads(result.output)] == [60]
    # A journal still on disk next to the part it was rolled into counts once.
    content = live._journal_path().read_text()
    journal = live._journal_path()
    live.close()
    journal.write_text(content)
    result = _correlate_cli(tmp_path)
    assert result.exit_code == 0 and [r["n"] for r in json.loads(result.output)] == [60], result.output
    # tables read the same view.
    shown = CliRunner().invoke(cli, ["tables", "render", "zero-cost", "--scores", str(tmp_path), "--truth",
                                     str(tmp_path), "--format", "csv"], catch_exceptions=False)
    assert shown.exit_code == 0, shown.output


# -- concurrent runs into one OUT claim classes --------------------------------------------------
PROXIES = "params,flops,synflow"


def _score(archs, out, data_dir, **kwargs):
    from proxybench.scoring import score_architectures

    kwargs.setdefault("progress", False)
    return score_architectures(archs, proxies=PROXIES, data_dir=data_dir, batch_size=8, out=out, **kwargs)


def _counts(out):
    from collections import Counter

    from proxybench.store.scores import journal_rows

    rows = read_scores(out).to_pylist() + journal_rows(out)  # no journal is left next to its part here
    return Counter((r["arch"], r["proxy"]) for r in rows), rows


def test_a_second_identical_run_during_the_first_computes_nothing_twice(tmp_path, data_dir):
    from builders import ISO, OTHERS

    archs = ISO + OTHERS[:3]
    second = []

    def start_the_second_run_now(iterable, total):
        for i, arch in enumerate(iterable):
            if i == 0:  # the first run has taken its snapshot of the store (empty) and not started
                second.append(_score(archs, tmp_path, data_dir))
            yield arch

    first = _score(archs, tmp_path, data_dir, progress=start_the_second_run_now)
    counts, _ = _counts(tmp_path)
    assert len(counts) == len(archs) * 3 and set(counts.values()) == {1}, counts
    assert second[0].rows_written == len(archs) * 3
    assert first.rows_written == 0 and first.archs_skipped == len(archs)
    assert results_status(tmp_path).duplicates == {}


def test_a_class_claimed_by_a_live_run_is_skipped_then_scored_when_that_run_dies(tmp_path, data_dir, capfd):
    import threading

    from builders import ISO, OTHERS

    from proxybench.spaces.nb201 import arch_uid
    from proxybench.store.claims import ClassClaims

    archs = ISO + OTHERS[:3]
    other = ClassClaims(tmp_path, "other-run").acquire("nb201", arch_uid(ISO[0]), {"h"}, wait=False)
    assert other is not None
    assert ClassClaims(tmp_path, "probe").acquire("nb201", arch_uid(ISO[0]), {"h"}, wait=False) is None
    dies = threading.Timer(2.0, other.release)  # the other run dies without writing the class
    dies.start()
    try:
        summary = _score(archs, tmp_path, data_dir, progress=lambda it, n: it)
    finally:
        dies.cancel()
        other.release()
    assert "waiting for 1 classes claimed by another live run" in capfd.readouterr().err
    counts, rows = _counts(tmp_path)
    assert len(counts) == len(archs) * 3 and set(counts.values()) == {1}
    assert summary.rows_written == len(archs) * 3
    # The claimed class was scored last, after the run had done everything else.
    last_other = max(r["created_at"] for r in rows if r["arch"] not in ISO)
    assert min(r["created_at"] for r in rows if r["arch"] in ISO) > last_other


def test_a_claim_left_by_a_dead_run_is_taken_over(tmp_path, data_dir):
    from builders import ISO

    from proxybench.spaces.nb201 import arch_uid
    from proxybench.store.claims import ClassClaims

    _score(ISO[:1], tmp_path / "probe", data_dir)
    hashes = set(read_scores(tmp_path / "probe").column("settings_hash").to_pylist())
    out = tmp_path / "out"
    claims = ClassClaims(out, "dead-run")
    claim = claims.acquire("nb201", arch_uid(ISO[0]), hashes, wait=False)
    claim.release()  # the run died (the kernel drops its flock) before writing any row
    assert ClassClaims(out, "next").acquire("nb201", arch_uid(ISO[0]), hashes, wait=False).stale
    # Its claim names our settings: the class is re-read, found empty, and computed here.
    summary = _score(ISO, out, data_dir)
    assert summary.archs_computed == 1 and summary.archs_copied == 2
    counts, _ = _counts(out)
    assert set(counts.values()) == {1} and len(counts) == 9


@pytest.mark.slow
def test_two_identical_score_commands_at_once_store_every_row_once(tmp_path, data_dir):
    import os
    import subprocess
    import sys

    from proxybench.spaces import get_space

    out = tmp_path / "out"
    archs = get_space("nb201").sample(30, seed=5)
    (tmp_path / "archs.txt").write_text("\n".join(archs) + "\n")
    cmd = [sys.executable, "-c", "from proxybench_cli.main import cli; cli()", "score",
           "--archs", str(tmp_path / "archs.txt"), "--proxies", PROXIES, "--batch-size", "8",
           "--data-dir", str(data_dir), "--out", str(out), "--threads", "1", "-q"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    runs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for _ in range(2)]
    outputs = [r.communicate(timeout=300)[0] for r in runs]
    assert [r.returncode for r in runs] == [0, 0], outputs
    counts, _ = _counts(out)
    assert len(counts) == len(archs) * 3 and set(counts.values()) == {1}
    assert results_status(out).duplicates == {}


# -- duplicates: status reports them, repair removes them ---------------------------------------
def test_status_reports_duplicates_and_repair_keeps_the_earliest_row(tmp_path):
    from datetime import timedelta

    from builders import score_rows
    from click.testing import CliRunner
    from proxybench_cli.main import cli

    rows, _ = _store_with_truth(tmp_path)
    rows += score_rows("other", range(60))
    later = [{**r, "run_id": "second", "created_at": r["created_at"] + timedelta(minutes=5), "score": -1.0}
             for r in rows]
    with ScoreWriter(tmp_path, "first", {}, rows_per_part=50) as writer:  # parts of 50 rows
        for start in range(0, len(rows), 10):
            writer.add(rows[start:start + 10])
    with ScoreWriter(tmp_path, "second", {}) as writer:
        writer.add(later[:90])
    _killed_writer(tmp_path, "third", later[90:100])  # a dead run's journal holds duplicates too
    status = results_status(tmp_path)
    assert status.duplicates == {"good": 60, "other": 40}
    assert {c.proxy: c.archs for c in status.coverage} == {"good": 60, "other": 60}
    assert ("duplicates: 100 extra rows stored twice or more under one (arch, proxy, settings) key, proxies good, "
            f"other; correlate and tables refuse them until you run: proxybench repair {tmp_path}") in str(status)
    refused = _correlate_cli(tmp_path)
    assert refused.exit_code == 1 and "appears 2 times" in refused.output and "proxybench repair OUT" in refused.output

    dry = CliRunner().invoke(cli, ["repair", str(tmp_path), "--dry-run"], catch_exceptions=False)
    assert dry.exit_code == 0, dry.output
    assert dry.output.startswith("would remove 100 duplicate rows (good 60, other 40)") and "dry run" in dry.output
    assert results_status(tmp_path).duplicates == {"good": 60, "other": 40}

    done = CliRunner().invoke(cli, ["repair", str(tmp_path)], catch_exceptions=False)
    assert done.exit_code == 0, done.output
    assert done.output.startswith(f"removed 100 duplicate rows (good 60, other 40) from {tmp_path}, keeping the "
                                  "earliest row per (arch, proxy, settings)")
    kept = read_scores(tmp_path).to_pylist()
    assert len(kept) == 120 and {r["run_id"] for r in kept} == {"run1"} and -1.0 not in {r["score"] for r in kept}
    assert results_status(tmp_path).duplicates == {}
    assert not list((tmp_path / "scores").glob("journal-*"))
    result = _correlate_cli(tmp_path, "--proxies", "good")
    assert result.exit_code == 0 and [r["n"] for r in json.loads(result.output)] == [60], result.output
    again = CliRunner().invoke(cli, ["repair", str(tmp_path)], catch_exceptions=False)
    assert again.output == f"no duplicate rows in {tmp_path}\n"


def test_repair_refuses_while_a_run_writes(tmp_path):
    from proxybench.store.repair import repair_results

    live = ScoreWriter(tmp_path, "live", {})
    live.add([make_row("a")])
    with pytest.raises(StoreError, match=r"^live is still writing into .*; repair once every run has finished"):
        repair_results(tmp_path)
    live.close()
    assert str(repair_results(tmp_path)) == f"no duplicate rows in {tmp_path}"
