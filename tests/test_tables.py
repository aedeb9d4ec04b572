"""Benchmark tables: definition parsing, numbers equal to the correlation engine, layouts, errors, CLI."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from builders import ARCHS, score_rows, truth_rows, write
from click.testing import CliRunner
from scipy.stats import spearmanr

from proxybench.store import SCORES_SCHEMA
from proxybench.store.views import open_views
from proxybench.stats import correlate
from proxybench.tables import (
    TableBuildError,
    TableDefinitionError,
    UnknownTableError,
    build_table,
    get_table,
    list_tables,
    render_table,
)
from proxybench.tables.build import Cell, TableData
from proxybench.tables.definition import parse_definition
from proxybench.tables.layout import marks
from proxybench.truth import TRUTH_SCHEMA
from proxybench_cli.main import cli

CORRUPTIONS = ["snow", "frost", "fog", "brightness", "gaussian_noise", "shot_noise", "impulse_noise",
               "defocus_blur", "glass_blur", "motion_blur", "zoom_blur", "contrast", "elastic_transform",
               "pixelate", "jpeg_compression"]


def definition(text, name="t"):
    return parse_definition(text, name, Path(f"{name}.sql"))


# ----------------------------------------------------------------------------- definitions


def test_definition_header_sections_and_defaults():
    d = definition(
        "-- title: My table\n-- caption: first line\n-- caption: second line\n-- metrics: test_acc, fgsm@*\n"
        "-- decimals: 2\n\n-- a free comment\n-- @derived-truth\nSELECT * FROM truth\n-- @table\n"
        "SELECT 'a' AS row, 'b' AS col, 1.0 AS value\n")
    assert d.title == "My table" and d.caption == "first line second line" and d.decimals == 2
    assert d.needs == ("scores", "truth") and d.metrics == ("test_acc", "fgsm@*")
    assert d.derived_truth == "SELECT * FROM truth" and d.query.startswith("SELECT 'a'")
    assert d.wants_metric("fgsm@8") and d.wants_metric("test_acc") and not d.wants_metric("pgd@8")
    plain = definition("-- title: T\n-- needs: archive\nSELECT 1 AS row, 2 AS col, 3 AS value")
    assert plain.derived_truth is None and plain.needs == ("archive",) and plain.metrics == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("SELECT 1", r"^t.sql: no '-- title:' line; every table needs a title$"),
        ("-- title: T\n", r"^t.sql: no query; write the SQL after the header \(or after '-- @table'\)$"),
        ("-- title: T\n-- colour: red\nSELECT 1", r"^t.sql line 2: unknown field 'colour'; fields: title, "),
        ("-- title: T\n-- @before\nSELECT 1", r"^t.sql line 2: unknown section @before; sections: "),
        ("-- title: T\n-- needs: scores, nope\nSELECT 1", r"^t.sql: unknown view\(s\) in needs: nope; views: "),
        ("-- title: T\n-- decimals: x\nSELECT 1", r"^t.sql: decimals must be a whole number 0..12, got 'x'$"),
        ("-- title: T\n-- title: U\nSELECT 1", r"^t.sql: field 'title' given 2 times; give it once$"),
        ("-- title: T\n-- needs: archive\n-- metrics: a\nSELECT 1", r"^t.sql: 'metrics' computes correlations"),
    ],
)
def test_malformed_definitions_are_one_line_errors(text, message):
    with pytest.raises(TableDefinitionError, match=message):
        definition(text)


def test_builtin_tables_all_parse():
    names = {d.name: d for d in list_tables()}
    assert {"zero-cost", "croze-robustness", "genas-ablation", "flatnas-search"} <= set(names)
    assert names["croze-robustness"].derived_truth is not None
    assert names["flatnas-search"].needs == ("archive",)
    with pytest.raises(UnknownTableError, match=r"^unknown table 'zero-cst'; did you mean 'zero-cost'"):
        get_table("zero-cst")


def test_a_tables_dir_adds_and_replaces_definitions(tmp_path):
    (tmp_path / "zero-cost.sql").write_text("-- title: Mine\nSELECT 1 AS row, 2 AS col, 3 AS value")
    (tmp_path / "extra.sql").write_text("-- title: Extra\nSELECT 1 AS row, 2 AS col, 3 AS value")
    assert get_table("zero-cost", [tmp_path]).title == "Mine"
    assert get_table("extra", [tmp_path]).title == "Extra"
    with pytest.raises(TableDefinitionError, match="does not exist"):
        list_tables([tmp_path / "missing"])


# ----------------------------------------------------------------------------- building


@pytest.fixture()
def results(tmp_path):
    """Scores of 3 proxies (one lower-is-better, one with a failure) + published scores, and truth."""
    rng = np.random.default_rng(1)
    n = 80
    acc = rng.uniform(10, 95, n).round(2)
    good = acc + rng.normal(scale=8, size=n)
    noisy = acc + rng.normal(scale=40, size=n)
    rows = score_rows("good", good) + score_rows("noisy", noisy) + score_rows("lower", -noisy, higher=False)
    rows[5]["score"], rows[5]["status"] = math.nan, "nonfinite"
    published = score_rows("good", acc + rng.normal(scale=20, size=n), settings_hash="pub")
    for row in published:
        row.update(preset="suite-zero-published", weights="published:nas-bench-suite-zero", seed=9000, batch_size=32)
    write(tmp_path / "scores" / "part-1.parquet", rows + published, SCORES_SCHEMA)
    write(tmp_path / "truth" / "t.parquet", truth_rows(acc), TRUTH_SCHEMA)
    return tmp_path, acc, good


def test_zero_cost_table_equals_the_correlation_engine(results):
    out, acc, good = results
    data = build_table(get_table("zero-cost"), scores=[out], truth=[out])
    with open_views(out=out) as con:
        engine = correlate(con, metric="test_acc", top_k=())
    ours = [r for r in engine.rows if r["preset"] == "proxybench"]
    group = "cifar10 test · proxybench, seed 0, batch 64 · n=80"
    for r in ours:
        assert data.value(("", r["proxy"]), (group, "ρ")).value == pytest.approx(r["spearman"], abs=1e-12)
        assert data.value(("", r["proxy"]), (group, "τ")).value == pytest.approx(r["kendall"], abs=1e-12)
    # the good proxy, with a non-finite score left out: ρ over the 79 finite pairs
    mask = np.arange(80) != 5
    assert data.value(("", "good"), (group, "ρ")).value == pytest.approx(spearmanr(good[mask], acc[mask])[0], abs=1e-9)
    published = "cifar10 test · suite-zero (published) · n=80"
    assert data.columns == [(group, "ρ"), (group, "τ"), (published, "ρ"), (published, "τ")]
    assert data.rows == [("", "good"), ("", "lower"), ("", "noisy")]
    assert data.value(("", "noisy"), (published, "ρ")) is None  # no published score for it: rendered "—"
    assert data.provenance[0] == "Scores: proxybench, init weights, seed 0, batch 64."
    text = render_table(data, "md")
    assert "| good | **" in text and "| noisy |" in text and "—" in text


def robustness_truth(acc, rng, *, complete=True):
    rows = truth_rows(acc, metric="clean_acc", source="robustness:rob")
    rows += truth_rows(acc * 0.3 + rng.normal(scale=3, size=len(acc)), metric="fgsm@1", source="robustness:rob")
    rows += truth_rows(acc * 0.1 + rng.normal(scale=3, size=len(acc)), metric="fgsm@8", source="robustness:rob")
    for corruption in CORRUPTIONS if complete else CORRUPTIONS[1:]:
        for severity in (1, 5):
            values = acc - severity * rng.uniform(0, 5, len(acc))
            rows += truth_rows(values, metric=f"cc:{corruption}@{severity}", source="robustness:rob")
    return rows


def test_croze_table_groups_corruptions_and_shows_dashes(tmp_path):
    rng = np.random.default_rng(2)
    n = 50
    acc = rng.uniform(10, 95, n)
    truth = robustness_truth(acc, rng)
    write(tmp_path / "scores" / "p.parquet", score_rows("good", acc + rng.normal(scale=5, size=n))
          + score_rows("bad", rng.normal(size=n)), SCORES_SCHEMA)
    write(tmp_path / "truth" / "r.parquet", truth, TRUTH_SCHEMA)
    data = build_table(get_table("croze-robustness"), scores=[tmp_path], truth=[tmp_path])
    group = "cifar10 · proxybench, seed 0, batch 64"
    assert [col for _, col in data.columns] == ["Clean", "FGSM 1/255", "FGSM 8/255", "PGD 1/255", "PGD 8/255",
                                                "Weather", "Noise", "Blur", "Digital", "CC avg."]
    assert data.value(("", "good"), (group, "PGD 8/255")).value is None  # no PGD truth: "—", not a number
    # the weather column is ρ against the per-architecture mean over snow, frost, fog, brightness, severities 1 and 5
    by_metric = {}
    for row in truth:
        by_metric.setdefault(row["metric"], {})[row["arch"]] = row["value"]
    weather = [np.mean([by_metric[f"cc:{c}@{s}"][a] for c in CORRUPTIONS[:4] for s in (1, 5)]) for a in ARCHS[:n]]
    with open_views(out=tmp_path) as con:
        x = [s for (s,) in con.execute("SELECT score FROM scores WHERE proxy = 'good' ORDER BY arch_uid").fetchall()]
        archs = [a for (a,) in con.execute("SELECT arch FROM scores WHERE proxy = 'good' ORDER BY arch_uid").fetchall()]
    y = [weather[ARCHS.index(a)] for a in archs]
    assert data.value(("", "good"), (group, "Weather")).value == pytest.approx(spearmanr(x, y)[0], abs=1e-9)
    assert data.value(("", "good"), (group, "Clean")).value > 0.9

    # without one weather corruption the weather and average columns have no truth: "—"
    write(tmp_path / "truth" / "r.parquet", robustness_truth(acc, rng, complete=False), TRUTH_SCHEMA)
    partial = build_table(get_table("croze-robustness"), scores=[tmp_path], truth=[tmp_path])
    assert partial.value(("", "good"), (group, "Weather")).value is None
    assert partial.value(("", "good"), (group, "CC avg.")).value is None
    assert partial.value(("", "good"), (group, "Noise")).value is not None
    assert "| good |" in render_table(partial, "md") and "—" in render_table(partial, "md")


def test_genas_ablation_reads_sigma_and_alpha_from_settings(tmp_path):
    rng = np.random.default_rng(3)
    n = 40
    acc = rng.uniform(10, 95, n)
    rows = []
    for i, (sigmas, alpha) in enumerate([([0.002, 0.01, 0.02], 1.0), ([0.002, 0.01, 0.02], 0.5),
                                          ([0.01, 0.05], 1.0)]):
        part = score_rows("genas", acc + rng.normal(scale=5 * (i + 1), size=n), settings_hash=f"h{i}")
        for row in part:
            row["settings"] = json.dumps({"proxy_settings": {"sigmas": sigmas, "alpha": alpha}})
        rows += part
    write(tmp_path / "scores" / "p.parquet", rows, SCORES_SCHEMA)
    write(tmp_path / "truth" / "t.parquet", truth_rows(acc), TRUTH_SCHEMA)
    data = build_table(get_table("genas-ablation"), scores=[tmp_path], truth=[tmp_path])
    assert data.rows == [("", "σ = [0.002,0.01,0.02]"), ("", "σ = [0.01,0.05]")]
    assert data.columns == [("cifar10", "α = 0.5"), ("cifar10", "α = 1.0")]
    assert data.value(("", "σ = [0.01,0.05]"), ("cifar10", "α = 0.5")) is None


def test_flatnas_search_table_over_an_archive(tmp_path):
    archive = pa.table({
        "run_id": ["r1", "r1", "r2"], "arch_label": ["a", "b", "c"], "selected": [True, False, True],
        "top1_error": [5.1, 4.0, 4.9], "robustness": [0.8, 0.1, 1.2], "mce": [20.0, 30.0, 19.5],
        "params_m": [4.9, 6.0, 4.7], "macs_m": [300.0, 100.0, 250.0],
    })
    write(tmp_path / "archive" / "a.parquet", archive.to_pylist(), archive.schema)
    data = build_table(get_table("flatnas-search"), archive=[tmp_path])
    assert data.rows == [("", "r1: a"), ("", "r2: c")]
    found = marks(data)
    assert found[("", "r2: c", "", "1 − F_A (%)")] == "best" and found[("", "r1: a", "", "R")] == "best"
    latex = render_table(data, "latex")
    assert r"\textbf{4.90}" in latex and "\\toprule" in latex and "r1: a & 5.10" in latex


def test_build_errors_name_the_problem(results, tmp_path):
    out, _, _ = results
    with pytest.raises(TableBuildError, match=r"^table zero-cost needs --truth \(the truth Parquet files\)$"):
        build_table(get_table("zero-cost"), scores=[out])
    bad = tmp_path / "defs"
    bad.mkdir()
    (bad / "broken.sql").write_text("-- title: Broken\nSELECT nope FROM scores")
    with pytest.raises(TableBuildError, match=r"^the query of table broken \(.*broken.sql\) failed: "):
        build_table(get_table("broken", [bad]), scores=[out], truth=[out])
    (bad / "stray.sql").write_text("-- title: S\nSELECT 'a' AS row, 'b' AS col, 1 AS value, 2 AS extra")
    with pytest.raises(TableBuildError, match=r"returns extra, which the layout does not use"):
        build_table(get_table("stray", [bad]), scores=[out], truth=[out])
    (bad / "twice.sql").write_text("-- title: T\nSELECT 'a' AS row, 'b' AS col, 1 AS value FROM range(2)")
    with pytest.raises(TableBuildError, match=r"gives two values for row 'a', column 'b'"):
        build_table(get_table("twice", [bad]), scores=[out], truth=[out])
    (bad / "empty.sql").write_text("-- title: E\n-- caption: needs genas scores\n"
                                   "SELECT 'a' AS row, 'b' AS col, 1 AS value WHERE false")
    with pytest.raises(TableBuildError, match=r"^table empty found no rows in the files given; needs genas scores$"):
        build_table(get_table("empty", [bad]), scores=[out], truth=[out])


# ----------------------------------------------------------------------------- layouts


def small_table():
    d = definition("-- title: T_1 & co\n-- caption: Cap.\n-- decimals: 2\nSELECT 1 AS row, 1 AS col, 1 AS value")
    cells = [Cell("", "p1", "c10", "ρ", 0.5, "max"), Cell("", "p1", "c10", "τ", None, "max"),
             Cell("", "p2", "c10", "ρ", 0.7, "max"), Cell("", "p2", "c10", "τ", 0.3, "max"),
             Cell("", "p3", "c10", "ρ", 0.704, "max"), Cell("", "p3", "c10", "τ", 0.1, "max")]
    return TableData(d, cells, [("", "p1"), ("", "p2"), ("", "p3")], [("c10", "ρ"), ("c10", "τ")], ["Scores: x."])


def test_marks_compare_at_displayed_precision_and_need_enough_numbers():
    found = marks(small_table())
    # 0.7 and 0.704 both show as 0.70: both best; 0.5 is second. τ has two numbers: best only.
    assert found == {("", "p2", "c10", "ρ"): "best", ("", "p3", "c10", "ρ"): "best",
                     ("", "p1", "c10", "ρ"): "second", ("", "p2", "c10", "τ"): "best"}


def test_layouts_render_exactly():
    data = small_table()
    assert render_table(data, "md") == (
        "**T_1 & co**\n\n| | c10 |  |\n".replace("| | ", "|  | ")
        + "| --- | ---: | ---: |\n|  | *ρ* | *τ* |\n| p1 | <u>0.50</u> | — |\n| p2 | **0.70** | **0.30** |\n"
        "| p3 | **0.70** | 0.10 |\n\nCap. Scores: x. Best in bold, second underlined.\n")
    latex = render_table(data, "latex")
    assert r"\caption{T\_1 \& co. Cap. Scores: x. Best in bold, second underlined.}" in latex
    assert r" & \multicolumn{2}{c}{c10} \\" in latex and r"\cmidrule(lr){2-3}" in latex
    assert r"p1 & \underline{0.50} & -- \\" in latex and r"p2 & \textbf{0.70} & \textbf{0.30} \\" in latex
    assert render_table(data, "csv").splitlines()[:3] == [
        "row_group,row,col_group,col,value,mark", ",p1,c10,ρ,0.5,second", ",p1,c10,τ,,"]
    text = render_table(data, "table")
    assert "p2  0.70*  0.30*" in text and "p1  0.50+     —" in text and text.endswith("* best, + second.\n")


# ----------------------------------------------------------------------------- CLI


def test_tables_cli_list_and_render(results, tmp_path):
    out, _, _ = results
    runner = CliRunner()
    listed = runner.invoke(cli, ["tables", "list"])
    assert listed.exit_code == 0 and "zero-cost  " in listed.output and "needs --archive" in listed.output
    shown = runner.invoke(cli, ["tables", "render", "zero-cost", "--scores", str(out), "--truth", str(out),
                                "--format", "latex"])
    assert shown.exit_code == 0 and shown.output.startswith("\\begin{table}")
    target = tmp_path / "zc.csv"
    written = runner.invoke(cli, ["tables", "render", "zero-cost", "--scores", str(out), "--truth", str(out),
                                  "--format", "csv", "--output", str(target)])
    assert written.exit_code == 0 and target.read_text().startswith("row_group,row,col_group,col,value,mark\n")
    missing = runner.invoke(cli, ["tables", "render", "zero-cost", "--scores", str(out)])
    assert missing.exit_code == 1 and missing.output == (
        "Error: table zero-cost needs --truth (the truth Parquet files)\n")
    only = runner.invoke(cli, ["tables", "render", "zero-cost", "--scores", str(out), "--truth", str(out),
                               "--dataset", "cifar10", "--metric", "test_acc", "--format", "csv"])
    assert only.exit_code == 0 and {row["col_group"] for row in csv.DictReader(io.StringIO(only.output))} == {
        "cifar10 test · proxybench, seed 0, batch 64 · n=80", "cifar10 test · suite-zero (published) · n=80"}
    wrong = runner.invoke(cli, ["tables", "render", "zero-cost", "--scores", str(out), "--truth", str(out),
                                "--metric", "fgsm@8"])
    assert wrong.exit_code == 1 and wrong.output == (
        "Error: table zero-cost does not show metric fgsm@8; it shows test_acc, valid_acc\n")
    unknown = runner.invoke(cli, ["tables", "render", "nope"])
    assert unknown.exit_code == 1 and unknown.output.startswith("Error: unknown table 'nope'")


def test_modern_proxies_table_shows_measured_ensembles_beside_published_values(tmp_path):
    from scipy.stats import kendalltau, rankdata

    rng = np.random.default_rng(11)
    n = 60
    acc = rng.uniform(60, 95, n)
    components = {name: acc + rng.normal(scale=8, size=n)
                  for name in ("az_expressivity", "az_progressivity", "az_trainability", "az_complexity")}
    rows = [r for name, v in components.items() for r in score_rows(name, v)]
    rows += score_rows("zico", acc + rng.normal(scale=4, size=n)) + score_rows("unrelated", rng.normal(size=n))
    write(tmp_path / "scores" / "p.parquet", rows, SCORES_SCHEMA)
    write(tmp_path / "truth" / "t.parquet", truth_rows(acc, archs=ARCHS[:n]), TRUTH_SCHEMA)
    data = build_table(get_table("modern-proxies"), scores=[tmp_path], truth=[tmp_path])
    az = sum(np.log(rankdata(v) / n) for v in components.values())
    row = ("", f"az_nas · proxybench · n={n}")
    assert data.value(row, ("cifar10", "τ")).value == pytest.approx(kendalltau(az, acc).statistic, abs=1e-9)
    assert data.value(row, ("CIFAR-10, published", "τ")).value == pytest.approx(0.741)
    assert data.value(("", f"zico · proxybench · n={n}"), ("CIFAR-10, published", "ρ")).value == pytest.approx(0.784)
    assert data.value(("", f"zico · proxybench · n={n}"), ("CIFAR-10, published", "τ")) is None
    assert not any("unrelated" in r for _, r in data.rows)  # only the modern roster and the baseline
