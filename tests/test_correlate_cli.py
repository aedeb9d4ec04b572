"""``proxybench truth import`` and ``proxybench correlate``: wiring, outputs, exact error lines."""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import datetime, timezone

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from click.testing import CliRunner
from proxybench_cli.main import cli

from proxybench.spaces.nb201 import all_archs, arch_uid
from proxybench.store import SCORES_SCHEMA

ARCHS = list(all_archs())[:40]


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def write_truth_csv(path, accuracies):
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["CIFAR10TestAccuracy200Epochs", "CIFAR100TestAccuracy200Epochs", "ArchitectureString"])
        for arch, acc in zip(ARCHS, accuracies):
            writer.writerow([acc, acc / 2, arch])
    return path


def write_scores(out, proxy, scores, higher=True):
    rows = [{
        "space": "nb201", "arch": arch, "arch_uid": arch_uid(arch), "dataset": "cifar10", "proxy": proxy,
        "score": float(s), "status": "ok" if math.isfinite(s) else "nonfinite", "error": None,
        "higher_is_better": higher, "seed": 0, "batch_size": 64, "batch_id": "b", "preset": "proxybench",
        "weights": "init", "settings": "{}", "settings_hash": f"h-{proxy}", "device": "cpu", "dtype": "float32",
        "seconds": 0.1, "proxybench_version": "0", "torch_version": "0", "run_id": "r",
        "created_at": datetime(2024, 1, 1, tzinfo=timezone.utc)} for arch, s in zip(ARCHS, scores)]
    (out / "scores").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=SCORES_SCHEMA), out / "scores" / f"part-{proxy}.parquet")


def results(tmp_path):
    """A results directory with two proxies' scores and the truth imported through the CLI."""
    rng = np.random.default_rng(0)
    acc = rng.uniform(10, 95, len(ARCHS)).round(2)
    out = tmp_path / "results"
    write_scores(out, "alpha", acc + rng.normal(scale=5, size=len(ARCHS)))
    noisy = -(acc + rng.normal(scale=30, size=len(ARCHS)))
    noisy[0] = math.nan
    write_scores(out, "beta", noisy, higher=False)
    result = invoke("truth", "import", str(write_truth_csv(tmp_path / "tss.csv", acc)), "--out", str(out))
    assert result.exit_code == 0, result.output
    return out


def test_truth_import_reports_and_writes(tmp_path):
    out = tmp_path / "results"
    result = invoke("truth", "import", str(write_truth_csv(tmp_path / "tss.csv", np.linspace(10, 90, 40))),
                    "--out", str(out))
    assert result.exit_code == 0, result.output
    assert result.output == (f"80 truth rows (cifar10/test_acc: 40, cifar100/test_acc: 40) -> "
                             f"{out / 'truth' / 'tss.parquet'}\n")
    with duckdb.connect() as con:
        rows = con.execute("SELECT dataset, count(*), min(arch_id), max(arch_id) FROM read_parquet(?) "
                           "GROUP BY 1 ORDER BY 1", [str(out / "truth" / "tss.parquet")]).fetchall()
    assert rows == [("cifar10", 40, 0, 39), ("cifar100", 40, 0, 39)]


def test_truth_import_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("CIFAR10TestAccuracy200Epochs,ArchitectureString\n90.0,|nor_conv_3x3~0|+|none~0|\n")
    result = invoke("truth", "import", str(bad), "--out", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert result.output == ("Error: bad.csv line 2 (row 0), column ArchitectureString: NB201 architecture "
                             "'|nor_conv_3x3~0|+|none~0|' has 2 '+'-separated node(s), needs 3; expected "
                             "'|op~0|+|op~0|op~1|+|op~0|op~1|op~2|' with op in none, skip_connect, nor_conv_1x1, "
                             "nor_conv_3x3, avg_pool_3x3\n")
    junk = tmp_path / "scores.bin"
    junk.write_bytes(b"\x89PNG....")
    result = invoke("truth", "import", str(junk), "--out", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert result.output.startswith("Error: cannot tell the format of the file scores.bin from its name or content; "
                                    "pass --format (suite-zero-csv, table, csv, suite-zero")
    assert result.output.count("\n") == 1
    corrupt = tmp_path / "zc.json"
    corrupt.write_text("{")
    result = invoke("truth", "import", str(corrupt), "--out", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert result.output == ("Error: zc.json is not valid JSON: Expecting property name enclosed in double quotes "
                             "at line 1 column 2\n")
    result = invoke("truth", "import", str(tmp_path / "missing.csv"))
    assert result.exit_code == 2 and "does not exist" in result.output
    result = invoke("truth", "import", str(bad), "--format", "bogus")
    assert result.exit_code == 2 and "'bogus' is not one of 'auto', 'suite-zero-csv', 'table', 'csv', 'suite-zero'" in result.output


def test_correlate_table_md_and_files(tmp_path):
    out = results(tmp_path)
    result = invoke("correlate", "--scores", str(out), "--truth", str(out), "--dataset", "cifar10")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:6] == ["Proxy", "Dataset", "Metric", "Better", "n", "Excl."]
    assert lines[1].split()[:6] == ["alpha", "cifar10", "test_acc", "higher", "40", "0"]
    assert lines[2].split()[:6] == ["beta", "cifar10", "test_acc", "lower", "39", "1"]
    assert any(line.startswith("Orientation: positive means") for line in lines)

    target = tmp_path / "table.md"
    result = invoke("correlate", "--scores", str(out / "scores" / "part-alpha.parquet"), "--truth", str(out),
                    "--format", "md", "--top-k", "5,50", "--output", str(target))
    assert result.exit_code == 0, result.output
    assert result.output == f"1 rows written to {target}\n"
    assert target.read_text().startswith(
        "| Proxy | Dataset | Metric | Better | n | Excl. | ρ | τ | r | Top-5% | Top-50% |")


def test_correlate_csv_and_json_carry_every_column(tmp_path):
    out = results(tmp_path)
    glob = str(out / "scores" / "*.parquet")
    parsed = list(csv.DictReader(io.StringIO(invoke(
        "correlate", "--scores", glob, "--truth", str(out), "--metric", "test_acc", "--format", "csv",
        "--proxies", "beta", "--top-k", "none").output)))
    assert len(parsed) == 1 and parsed[0]["orientation"] == "lower (negated)" and parsed[0]["excluded"] == "1"
    assert not any(column.startswith("top") for column in parsed[0])
    records = json.loads(invoke("correlate", "--scores", str(out), "--truth", str(out), "--format", "json",
                                "--bootstrap", "20", "--by", "run_id").output)
    assert {r["proxy"] for r in records} == {"alpha", "beta"}
    assert {"spearman_lo", "kendall_hi", "run_id", "settings_hash", "truth_source"} <= set(records[0])


def test_correlate_errors(tmp_path):
    out = results(tmp_path)
    cases = [
        (["--proxies", "gamma"], 1, "Error: no proxy in the scores matches 'gamma'; present: alpha, beta\n"),
        (["--dataset", "cifar100"], 1, "Error: no scores rows with dataset 'cifar100'; present: cifar10\n"),
    ]
    for extra, code, message in cases:
        result = invoke("correlate", "--scores", str(out), "--truth", str(out), *extra)
        assert result.exit_code == code and result.output == message, result.output
    result = invoke("correlate", "--scores", str(tmp_path / "nowhere"), "--truth", str(out))
    assert result.exit_code == 1 and result.output == f"Error: scores path {tmp_path / 'nowhere'} does not exist\n"
    result = invoke("correlate", "--scores", str(out), "--truth", str(out), "--by", "colour")
    assert result.exit_code == 2 and "colour is not a grouping column; choose from run_id" in result.output
    result = invoke("correlate", "--scores", str(out), "--truth", str(out), "--top-k", "0")
    assert result.exit_code == 2 and "top-k 0 is not a percentage in (0, 100]" in result.output
    result = invoke("correlate", "--truth", str(out))
    assert result.exit_code == 2 and "Missing option '--scores'" in result.output


def test_new_commands_have_help():
    for args in (["truth", "-h"], ["truth", "import", "-h"], ["correlate", "-h"]):
        result = invoke(*args)
        assert result.exit_code == 0 and "Example:" in result.output, result.output


def test_correlate_a_user_ensemble_and_reject_a_malformed_one(tmp_path):
    out = results(tmp_path)
    result = invoke("correlate", "--scores", str(out), "--truth", str(out), "--ensemble", "ab=alpha+beta:meanrank",
                    "--format", "json", "--top-k", "none")
    assert result.exit_code == 0, result.output
    rows = {r["proxy"]: r for r in json.loads(result.output)}
    assert set(rows) == {"alpha", "beta", "ab"}
    assert rows["ab"]["n"] == len(ARCHS) - 1  # beta's NaN architecture has no complete set of components
    bad = CliRunner().invoke(cli, ["correlate", "--scores", str(out), "--truth", str(out), "--ensemble", "ab=alpha"])
    assert bad.exit_code != 0
    assert "needs at least two distinct components" in bad.output and "Traceback" not in bad.output
