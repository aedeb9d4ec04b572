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
    assert result.output == "Error: unknown search space 'nb2011'; did you mean 'nb201'? See: proxybench space\n"


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


def test_score_sample_too_large_names_the_space_size(tmp_path):
    result = invoke("score", "--sample", "100000", "--proxies", "params", "--out", str(tmp_path))
    assert result.exit_code == 1
    assert result.output == ("Error: cannot sample 100000 distinct NB201 architectures: the space has 15625; ask for "
                             "at most 15625, or take all of them (proxybench score --all; in Python, iterate the space)\n")


def test_score_sample_seed_draws_the_sample_and_is_recorded_apart_from_the_seed(tmp_path):
    from proxybench.spaces import get_space

    def run(out, *extra):
        result = invoke("score", "--sample", "3", "--proxies", "params", "--seed", "1", *extra, "--out", str(out),
                        "-q", "--no-download", "--data-dir", str(tmp_path / "no-data"))
        assert result.exit_code == 0, result.output
        rows = duckdb.connect().execute("select distinct arch, seed, settings_hash from read_parquet(?)",
                                        [str(out / "scores" / "*.parquet")]).fetchall()
        (record,) = [json.loads(p.read_text()) for p in (out / "runs").glob("*.json")]
        return rows, record

    space = get_space("nb201")
    rows, record = run(tmp_path / "a", "--sample-seed", "5")
    assert sorted(a for a, _, _ in rows) == sorted(space.sample(3, seed=5))
    assert {s for _, s, _ in rows} == {1} and record["sample"] == {"n": 3, "seed": 5}
    default_rows, default_record = run(tmp_path / "b")  # as before --sample-seed: the sample follows --seed
    assert sorted(a for a, _, _ in default_rows) == sorted(space.sample(3, seed=1))
    assert default_record["sample"] == {"n": 3, "seed": 1}
    # the sample's seed is not a setting of the scores: one architecture, one resume key however it was drawn
    hashes = {a: h for a, _, h in rows}
    assert {h for a, _, h in default_rows if a in hashes} <= set(hashes.values())
    assert len({h for _, _, h in rows + default_rows}) == 1
    refused = invoke("score", "--all", "--sample-seed", "5", "--out", str(tmp_path / "c"))
    assert refused.exit_code == 2 and "--sample-seed draws the --sample" in refused.output


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
