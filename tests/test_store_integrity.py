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
