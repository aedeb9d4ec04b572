"""``proxybench search`` and ``proxybench search report`` (wiring and messages only)."""

from __future__ import annotations

import json

import duckdb
from click.testing import CliRunner
from proxybench_cli.search_commands import search

ARGS = ["--space", "nb201", "--objectives", "params,flops", "--n-start", "6", "--iterations", "1",
        "--per-iteration", "2", "--seed", "0", "--pop-size", "8", "--generations", "2", "--top-k", "2"]


def test_search_smoke_then_report_and_resume(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(search, ARGS + ["--out", str(out), "-q"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "8 architectures archived (0 failed)" in result.output
    con = duckdb.connect()
    n, selected = con.execute("SELECT count(*), count(*) FILTER (WHERE selected) FROM read_parquet(?)",
                              [str(out / "archive" / "*.parquet")]).fetchone()
    assert n == 8 and selected >= 1
    settings = json.loads((out / "run.json").read_text())
    assert settings["n_start"] == 6 and settings["seed"] == 0 and settings["pop_size"] == 8
    assert (out / "iterations.parquet").is_file() and (out / "picks" / "1.json").is_file()

    report = CliRunner().invoke(search, ["report", str(out), "--format", "csv"], catch_exceptions=False)
    assert report.exit_code == 0, report.output
    header, first = report.output.splitlines()[:2]
    assert header.startswith("label,arch,candidate,iteration,obj_params,obj_flops") and first.startswith("pick-1,")

    again = CliRunner().invoke(search, ARGS + ["--out", str(out)])
    assert again.exit_code == 1
    assert again.output.splitlines()[-1].startswith(f"Error: {out} already holds a search")
    resumed = CliRunner().invoke(search, ARGS + ["--out", str(out), "--resume", "--iterations", "2"],
                                 catch_exceptions=False)
    assert resumed.exit_code == 0, resumed.output
    assert "resuming" in resumed.output and "10 architectures archived" in resumed.output


def test_search_usage_errors(tmp_path):
    result = CliRunner().invoke(search, ["--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "Error: give --objectives" in result.output
    result = CliRunner().invoke(search, ["--objectives", "synflw,flops", "--out", str(tmp_path / "x")])
    assert result.exit_code == 1
    assert result.output.startswith("Error: unknown proxy 'synflw'; did you mean 'synflow'")
    result = CliRunner().invoke(search, ["report", str(tmp_path)])
    assert result.exit_code == 1 and "holds no search" in result.output
    assert CliRunner().invoke(search, ["-h"]).exit_code == 0
    assert "Example" in CliRunner().invoke(search, ["report", "-h"]).output


def test_ofa_search_without_the_ofa_package_is_one_line_before_any_candidate(tmp_path, monkeypatch):
    import sys

    for name in [n for n in sys.modules if n == "ofa" or n.startswith("ofa.")] + ["ofa"]:
        monkeypatch.setitem(sys.modules, name, None)
    args = ["--space", "ofa", "--random-init", "--resolution", "32,48", *ARGS[2:], "--out", str(tmp_path / "run"), "-q"]
    result = CliRunner().invoke(search, args, catch_exceptions=False)
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: the OFA search space needs the 'ofa' package (a dependency of proxybench): "
                                    "pip install ofa==0.1.0.post202307202001")
    assert result.output.count("\n") == 1 and not (tmp_path / "run" / "archive").exists()
