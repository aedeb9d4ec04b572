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
    with pytest.warns(StoreWarning, match=rf"{journal.name} line 2 is not a score row.*scores its architecture again"):
        status = results_status(tmp_path)
    assert status.journal_rows == 2 and {c.archs for c in status.coverage} == {2}
    with pytest.warns(StoreWarning, match="line 4 is not a score row"):
        assert {k[1] for k in stored_keys(tmp_path)} == {"a", "b"}
    # Opening the directory for writing recovers the journal into a part without the garbage.
    with pytest.warns(StoreWarning):
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


def test_score_cli_resumes_past_a_corrupt_journal_line(tmp_path):
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
