"""``--scores`` and ``--truth`` swapped, or pointing at each other's folder, in ``correlate`` and
``tables render``: one line that names the swap (issue 13), not a per-file schema complaint."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from proxybench_cli.main import cli


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _store(tmp_path: Path) -> Path:
    from builders import score_rows, truth_rows, write

    from proxybench.store import SCORES_SCHEMA
    from proxybench.truth import TRUTH_SCHEMA

    values = [float(v) for v in range(10)]
    write(tmp_path / "scores" / "part-a.parquet", score_rows("synflow", values), SCORES_SCHEMA)
    write(tmp_path / "truth" / "t.parquet", truth_rows(values), TRUTH_SCHEMA)
    return tmp_path


@pytest.mark.parametrize("command", [["correlate"], ["tables", "render", "modern-proxies"]])
def test_swapped_scores_and_truth_is_one_line_naming_the_swap(tmp_path, command):
    out = _store(tmp_path)
    result = invoke(*command, "--scores", str(out / "truth"), "--truth", str(out / "scores"))
    assert result.exit_code == 1
    assert result.output == (
        f"Error: the files given as --scores ({out / 'truth' / 't.parquet'}) look like truth files (written by "
        "proxybench truth import), not scores files; did you swap --scores and --truth? Pass the scores to "
        "--scores and the truth to --truth\n")


def test_truth_pointing_at_the_scores_folder_names_the_swap(tmp_path):
    out = _store(tmp_path)
    result = invoke("correlate", "--scores", str(out), "--truth", str(out / "scores"))
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: the files given as --truth ({out / 'scores' / 'part-a.parquet'}) "
                                    "look like scores files (written by proxybench score), not truth files; "
                                    "did you swap --scores and --truth?"), result.output
