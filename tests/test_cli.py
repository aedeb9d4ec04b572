"""The command line: wiring, messages and exit codes (the library is tested elsewhere)."""

from __future__ import annotations

import csv
import io
import json

import duckdb
from click.testing import CliRunner

from proxybench_cli.main import cli

ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_every_command_has_help():
    for name, command in cli.commands.items():
        result = invoke(name, "-h")
        assert result.exit_code == 0, result.output
        assert command.help and "Example" in command.help, name


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0 and "proxybench, version" in result.output


def test_proxies_lists_the_suite():
    result = invoke("proxies", "--format", "csv")
    assert result.exit_code == 0, result.output
    names = {row["name"] for row in csv.DictReader(io.StringIO(result.output))}
    assert {"params", "flops", "snip", "grasp", "fisher", "grad_norm", "jacov", "synflow", "nwot", "epe_nas",
            "l2_norm", "plain", "zen"} <= names


def test_space_prints_csv_sample():
    result = invoke("space", "nb201", "--sample", "5", "--seed", "3")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert len(rows) == 5 and set(rows[0]) == {"arch", "uid"}
    assert invoke("space", "nb201", "--sample", "5", "--seed", "3").output == result.output


def test_space_all_has_15625_rows():
    result = invoke("space", "nb201")
    assert result.output.count("\n") == 15626


def test_unknown_space_is_one_line_error():
    result = invoke("space", "nb2011")
    assert result.exit_code == 1
    assert result.output == "Error: unknown search space 'nb2011'; did you mean 'nb201'? See: proxybench spaces\n"


def test_score_unknown_proxy(tmp_path):
    result = invoke("score", "--proxies", "synflw", "--sample", "1", "--out", str(tmp_path))
    assert result.exit_code == 1
    assert result.output == "Error: unknown proxy 'synflw'; did you mean 'synflow' or 'synflow_bn'? See: proxybench proxies\n"


def test_score_conflicting_selection(tmp_path):
    result = invoke("score", "--sample", "3", "--all", "--out", str(tmp_path))
    assert result.exit_code == 2 and "choose one of --sample, --all, --archs" in result.output


def test_score_malformed_arch_file(tmp_path):
    archs = tmp_path / "archs.txt"
    archs.write_text("|nor_conv_3x3~0|+|bogus~0|none~1|+|none~0|none~1|none~2|\n")
    result = invoke("score", "--archs", str(archs), "--out", str(tmp_path / "out"))
    assert result.exit_code == 1 and result.output.startswith("Error: ") and "bogus" in result.output
    assert result.output.count("\n") == 1


def test_score_arch_file_with_bom_header_and_naslib_tuples(tmp_path):
    from proxybench.spaces.nb201 import from_naslib_tuple

    archs = tmp_path / "archs.csv"
    archs.write_text(f"arch,val_accuracy\n(0, 1, 2, 3, 4, 1),93.1\n{ARCH},91.0\n", encoding="utf-8-sig")
    out = tmp_path / "out"
    result = invoke("score", "--archs", str(archs), "--proxies", "params", "--out", str(out), "-q", "--no-download",
                    "--data-dir", str(tmp_path / "no-data"))
    assert result.exit_code == 0, result.output
    stored = duckdb.connect().execute("select distinct arch from read_parquet(?)",
                                      [str(out / "scores" / "*.parquet")]).fetchall()
    assert {a for (a,) in stored} == {from_naslib_tuple("(0, 1, 2, 3, 4, 1)"), ARCH}


def test_score_arch_file_error_names_the_line(tmp_path):
    archs = tmp_path / "archs.txt"
    archs.write_text(f"arch\n{ARCH}\n|nor_conv_3x3~0|+|bogus~0|none~1|+|none~0|none~1|none~2|\n")
    result = invoke("score", "--archs", str(archs), "--out", str(tmp_path / "out"))
    assert result.exit_code == 1 and result.output.startswith(f"Error: {archs}:3: ") and "bogus" in result.output
    assert result.output.count("\n") == 1


def test_score_writes_parquet_and_resumes(tmp_path, data_dir):
    archs = tmp_path / "archs.csv"
    archs.write_text(f"arch,uid\n{ARCH},x\n|none~0|+|none~0|none~1|+|none~0|none~1|none~2|,y\n")
    out = tmp_path / "out"
    args = ("score", "--archs", str(archs), "--proxies", "params,snip,synflow", "--data-dir", str(data_dir),
            "--out", str(out), "--batch-size", "8", "-q")
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert "scored 2 architectures x 3 proxies = 6 rows" in result.output
    con = duckdb.connect()
    rows = con.execute(
        "select arch, proxy, status, score, batch_size, preset from read_parquet(?) order by arch, proxy",
        [str(out / "scores" / "*.parquet")],
    ).fetchall()
    assert len(rows) == 6
    assert {r[4] for r in rows} == {8} and {r[5] for r in rows} == {"proxybench"}
    assert all(r[2] in ("ok", "nonfinite", "error") for r in rows)
    again = invoke(*args)
    assert again.exit_code == 0 and "scored 0 architectures (2 already done)" in again.output
    total = con.execute("select count(*) from read_parquet(?)", [str(out / "scores" / "*.parquet")]).fetchone()[0]
    assert total == 6
    refused = invoke(*args, "--no-resume")
    assert refused.exit_code == 1 and "already holds scores" in refused.output
    status = invoke("status", str(out))
    assert status.exit_code == 0 and "runs: 2 (2 finished)" in status.output, status.output
    assert sum(" 2/15625 " in line for line in status.output.splitlines()) == 3
    report = json.loads(invoke("status", str(out), "--format", "json").output)
    assert {c["proxy"]: c["archs"] for c in report["coverage"]} == {"params": 2, "snip": 2, "synflow": 2}


def test_status_of_a_folder_without_results_is_one_line_error(tmp_path):
    result = invoke("status", str(tmp_path))
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert result.output.startswith("Error: ") and "not a results directory" in result.output


def test_score_missing_data_is_one_line_error(tmp_path, monkeypatch):
    monkeypatch.delenv("PROXYBENCH_DATA_DIR", raising=False)
    result = invoke("score", "--sample", "1", "--data-dir", str(tmp_path / "nothing"), "--no-download",
                    "--out", str(tmp_path / "out"))
    assert result.exit_code == 1 and result.output.startswith("Error: ")
    assert result.output.count("\n") == 1 and "--data-dir" in result.output


def test_score_batch_larger_than_data_is_one_line_error(tmp_path, data_dir):
    result = invoke("score", "--sample", "1", "--batch-size", "60000", "--data-dir", str(data_dir),
                    "--out", str(tmp_path))
    assert result.exit_code == 1
    assert result.output.startswith("Error: cannot draw 60000 distinct images") and result.output.count("\n") == 1


def test_score_negative_seed_is_usage_error(tmp_path):
    result = invoke("score", "--sample", "1", "--seed", "-1", "--out", str(tmp_path))
    assert result.exit_code == 2 and "--seed" in result.output
