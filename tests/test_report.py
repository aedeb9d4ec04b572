"""``proxybench report``: the HTML page's sections and numbers (equal to correlate/status/combine's), and the
page in headless Chromium (no console error, hover works, a non-blank screenshot)."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from builders import ARCHS, score_rows, truth_rows, write
from click.testing import CliRunner
from proxybench_cli.main import cli

from proxybench.combine.run import summarise
from proxybench.report import build_report, write_report
from proxybench.search.archive import Archive
from proxybench.search.select import non_dominated
from proxybench.stats import correlate
from proxybench.stats.plots import x_scale
from proxybench.store.schema import SCORES_SCHEMA
from proxybench.store.status import results_status
from proxybench.store.views import open_views
from proxybench.truth.schema import TRUTH_SCHEMA

N = 60


class Page(HTMLParser):
    """Every element's tag, attributes and text (enough to find sections, rows and cells)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.elements: list[dict] = []
        self._open: list[dict] = []
        self.scripts: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        element = {"tag": tag, "attrs": dict(attrs), "text": "", "children": []}
        if self._open:
            self._open[-1]["children"].append(element)
        self.elements.append(element)
        if tag not in ("meta", "br", "input", "link", "img"):
            self._open.append(element)

    def handle_startendtag(self, tag, attrs):
        element = {"tag": tag, "attrs": dict(attrs), "text": "", "children": []}
        if self._open:
            self._open[-1]["children"].append(element)
        self.elements.append(element)

    def handle_endtag(self, tag):
        if not any(e["tag"] == tag for e in self._open):
            return  # the end of a void-like element (e.g. <circle>...</circle>) never pushed
        while self._open:
            element = self._open.pop()
            if element["tag"] == tag:
                break

    def handle_data(self, data):
        for element in self._open:
            element["text"] += data
        if self._open and self._open[-1]["tag"] == "script":
            self.scripts.append(data)

    def find(self, tag=None, **attrs):
        return [e for e in self.elements if (tag is None or e["tag"] == tag)
                and all(e["attrs"].get(k.replace("_", "-")) == v for k, v in attrs.items())]

    def data(self) -> dict:
        [block] = [e for e in self.elements if e["attrs"].get("id") == "pb-data"]
        return json.loads(block["text"])


def cells(row: dict) -> list[dict]:
    return [c for c in row["children"] if c["tag"] == "td"]


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    """A results directory: three proxies (one lower-is-better with a failure and a non-finite score, one
    spanning many decades), truth with two metrics, a run record and few-shot predictor metrics."""
    out = tmp_path_factory.mktemp("report") / "results"
    rng = np.random.default_rng(0)
    acc = rng.uniform(60, 94, N)
    synflow = 10 ** (acc / 3 + rng.normal(0, 1, N))  # > 3 decades, positive: a log axis
    jacov = -acc + rng.normal(0, 4, N)
    jacov[3] = math.nan
    jacov_rows = score_rows("jacov", jacov, higher=False, statuses={5: "error", 7: "error"})
    for i in (5, 7):
        jacov_rows[i]["error"] = "RuntimeError: singular matrix"
    rows = score_rows("synflow", synflow) + jacov_rows + score_rows("nwot", acc + rng.normal(0, 6, N))
    write(out / "scores" / "part-run1-00000.parquet", rows, SCORES_SCHEMA)
    truth = truth_rows(acc) + truth_rows(acc - 3 + rng.normal(0, 1, N), metric="valid_acc")
    write(out / "truth" / "nb201.parquet", truth, TRUTH_SCHEMA)
    (out / "runs").mkdir()
    (out / "runs" / "run1.json").write_text(json.dumps({
        "run_id": "run1", "status": "finished", "started_at": "2024-01-01T00:00:00+00:00",
        "updated_at": "2024-01-01T01:30:00+00:00", "archs_requested": N, "proxybench_version": "0",
        "torch_version": "2.0", "settings": {"preset": "proxybench", "seed": 0, "dataset": "cifar10"}}))
    metrics = []
    for split in range(3):
        for model in ("lin", "xgb"):
            for n in (10, 20, 40):
                tau = 0.3 + 0.1 * math.log10(n) + (0.05 if model == "xgb" else 0) + 0.01 * split
                metrics.append({"space": "nb201", "dataset": "cifar10", "metric": "test_acc", "run_id": "c1",
                                "features": "proxies", "model": model, "n": n, "split": split, "split_kind": "class",
                                "kendall": tau, "spearman": tau + 0.15})
    pq.write_table(pa.Table.from_pylist(metrics), _mkdir(out / "predictor_metrics") / "c1.parquet")
    return out


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def search_run(tmp_path_factory) -> Path:
    """A finished params,flops search (no data needed)."""
    from proxybench.search.loop import run_search
    from proxybench.search.measures import CostMeasure
    from proxybench.spaces import get_space

    run = tmp_path_factory.mktemp("search") / "run"
    run_search("nb201", "params,flops", out=run, measures=[CostMeasure(get_space("nb201"))], n_start=12, iterations=2,
               per_iteration=3, seed=0, top_k=2, pop_size=8, generations=2)
    return run


@pytest.fixture(scope="module")
def report(results, search_run, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("html") / "report.html"
    write_report(results, path, archives=[search_run], bootstrap=20, seed=3)
    return path


def test_every_section_is_present_and_the_page_is_self_contained(report):
    text = report.read_text()
    page = Page(text)
    sections = [e["attrs"]["data-section"] for e in page.find("section")]
    assert sections == ["provenance", "correlations", "scatters", "predictors", "tables", "search-0"]
    # offline: no external script, style, image or font; the only URLs are SVG namespaces
    assert not page.find("link") and all("src" not in e["attrs"] for e in page.find("script"))
    assert all(e["attrs"].get("xmlns") == "http://www.w3.org/2000/svg" for e in page.find("svg") if "xmlns" in e["attrs"])
    assert "http" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_correlation_tables_hold_what_correlate_computes(results, report):
    page = Page(report.read_text())
    with open_views(scores=[results], truth=[results]) as con:
        expected = correlate(con, top_k=(1, 5, 10), bootstrap=20, seed=3)
    tables = page.find("table", **{"class": "sortable corr"})
    assert len(tables) == 2  # cifar10 · test_acc and cifar10 · valid_acc
    found = {}
    for table in tables:
        for row in (c for t in table["children"] if t["tag"] == "tbody" for c in t["children"]):
            found.setdefault(row["attrs"]["data-proxy"], []).append(row)
    assert sorted(found) == sorted({r["proxy"] for r in expected.rows})
    head = [h["text"] for t in tables[0]["children"] if t["tag"] == "thead" for h in t["children"][0]["children"]]
    assert head[:10] == ["proxy", "better", "n", "excl.", "ρ", "τ", "r", "top-1%", "top-5%", "top-10%"]
    for row in expected.rows:
        # the block's heading names the metric; rows of one proxy differ by block
        [table] = [t for t in tables if any(r["attrs"]["data-proxy"] == row["proxy"] and
                   _heading_metric(page, t) == row["metric"] for r in _rows(t))]
        [tr] = [r for r in _rows(table) if r["attrs"]["data-proxy"] == row["proxy"]]
        values = [c["attrs"].get("data-v") for c in cells(tr)]
        assert int(values[2]) == row["n"] and int(values[3]) == row["excluded"]
        for value, name in zip(values[4:10], ["spearman", "kendall", "pearson", "top1", "top5", "top10"]):
            assert (math.isnan(row[name]) and value == "NaN") or float(value) == row[name], name
        for name in ("spearman", "kendall"):
            [ci] = [c for c in cells(tr)[4 if name == "spearman" else 5]["children"] if c["tag"] == "span"]
            assert float(ci["attrs"]["data-lo"]) == row[f"{name}_lo"] and float(ci["attrs"]["data-hi"]) == row[f"{name}_hi"]
    jacov = [r for r in expected.rows if r["proxy"] == "jacov"][0]
    assert jacov["excluded"] == 3 and jacov["orientation"] == "lower (negated)"


def _rows(table):
    return [c for t in table["children"] if t["tag"] == "tbody" for c in t["children"]]


def _heading_metric(page, table):
    index = page.elements.index(table)
    heading = [e for e in page.elements[:index] if e["tag"] == "h3"][-1]
    return heading["text"].split("·")[-1].strip()


def test_provenance_holds_what_status_computes(results, report):
    page = Page(report.read_text())
    status = results_status(results)
    [run] = page.find("tr", data_run="run1")
    values = [c["text"] for c in cells(run)]
    assert values[:2] == ["run1", "finished"] and values[4] == "1:30:00" and values[6] == f"{status.runs[0].rows:,}"
    assert "cpu" in values[7] and "preset=proxybench" in values[10]
    for c in status.coverage:
        [tr] = page.find("tr", data_proxy=c.proxy, data_dataset=c.dataset)
        v = [td["attrs"].get("data-v") for td in cells(tr)]
        assert [int(v[k]) for k in (6, 7, 8, 9, 10, 11)] == [c.archs, c.classes, c.computed, c.ok, c.nonfinite, c.error]
        # DuckDB's parallel sum may differ in the last bit between two reads of the same rows
        assert float(v[12]) == pytest.approx(c.compute_seconds / 3600, rel=1e-12)
    [hours] = [e for e in page.elements if e["attrs"].get("id") == "compute-hours"]
    assert float(hours["attrs"]["data-v"]) == pytest.approx(sum(c.compute_seconds for c in status.coverage) / 3600,
                                                            rel=1e-12)
    # every row that is not ok, grouped by status and message, counted as status counts
    groups = {e["attrs"]["data-status"]: int(e["attrs"]["data-v"]) for e in page.find("details") if "data-status" in e["attrs"]}
    assert groups == {"error": sum(c.error for c in status.coverage), "nonfinite": sum(c.nonfinite for c in status.coverage)}
    assert groups == {"error": 2, "nonfinite": 1}
    text = report.read_text()
    assert "RuntimeError: singular matrix" in text
    for i in (3, 5, 7):  # the rows themselves, each named with its proxy
        assert f"jacov  {ARCHS[i]}" in text


def test_scatters_one_per_proxy_with_hover_data_and_the_plot_scale(results, report):
    page = Page(report.read_text())
    data = page.data()
    figures = page.find("figure", **{"class": "panel scatter"})
    assert sorted(f["attrs"]["data-proxy"] for f in figures) == ["jacov", "nwot", "synflow"]
    assert {f["attrs"]["data-metric"] for f in figures} == {"test_acc"}
    scores = pq.read_table(results / "scores").to_pylist()
    truth = {r["arch"]: r["value"] for r in pq.read_table(results / "truth").to_pylist() if r["metric"] == "test_acc"}
    for figure in figures:
        proxy = figure["attrs"]["data-proxy"]
        usable = {r["arch"]: r["score"] for r in scores
                  if r["proxy"] == proxy and r["status"] == "ok" and math.isfinite(r["score"])}
        assert int(figure["attrs"]["data-n"]) == len(usable)
        assert figure["attrs"]["data-scale"] == x_scale(np.array(list(usable.values())))[0]
        hover = data["h"][int(figure["attrs"]["data-h"])]
        t = data["truth"][hover["t"]]
        shown = {data["archs"][a]: (u, w) for a, u, w, x in zip(t["a"], hover["u"], t["w"], hover["x"]) if x is not None}
        assert set(shown) == set(usable)
        for arch, (u, w) in shown.items():
            assert u == pytest.approx(usable[arch], rel=1e-5) and w == pytest.approx(truth[arch], rel=1e-5)
        label = [e for e in _descendants(figure) if e["tag"] == "text" and "better" in e["text"]][0]["text"]
        assert ("lower is better" in label and "reversed" in label) == (proxy == "jacov")
    assert [f["attrs"]["data-scale"] for f in figures if f["attrs"]["data-proxy"] == "synflow"] == ["log"]


def _descendants(element):
    for child in element["children"]:
        yield child
        yield from _descendants(child)


def test_predictor_section_is_combines_summary(results, report):
    page = Page(report.read_text())
    rows = pq.read_table(results / "predictor_metrics").to_pylist()
    summary = summarise(rows, ["kendall", "spearman"])
    for s in summary:
        [tr] = page.find("tr", data_model=s["model"], data_n=str(s["n"]), data_split=s["split_kind"])
        v = [c["attrs"].get("data-v") for c in cells(tr)]
        assert float(v[5]) == s["kendall"] and float(v[6]) == s["spearman"]
    [chart] = [e for e in page.elements if e["attrs"].get("class") == "grid learning-curves"]
    assert sum(1 for e in _descendants(chart) if e["tag"] == "polyline") == 2  # one line per model


def test_archive_front_and_picks(search_run, report):
    page = Page(report.read_text())
    [figure] = page.find("figure", **{"class": "panel archive"})
    rows = [r for r in Archive(search_run, ["params", "flops"]).rows() if r["status"] == "ok"]
    F = np.array([[r["obj_params"], r["obj_flops"]] for r in rows])
    front = {rows[k]["candidate"] for k in non_dominated(F)}
    assert {int(c) for c in figure["attrs"]["data-front"].split(",")} == front
    picks = {r["candidate"] for r in rows if r["selected"]}
    assert picks and {int(c) for c in figure["attrs"]["data-picks"].split(",")} == picks
    [table] = page.find("table", **{"class": "sortable picks"})
    assert len(_rows(table)) == len(picks)


class FlatnasMeasure:
    """Deterministic top1_error, robustness and mce from the genome (no data, no training)."""

    quantities = ("top1_error", "robustness", "mce")

    def __init__(self) -> None:
        from proxybench.spaces import get_space

        self.space = get_space("nb201")

    def measure(self, archs):
        out = {}
        for arch in archs:
            g = self.space.encode(arch)
            out[arch] = {"top1_error": 5.0 + float(np.sum((g - 3) ** 2)), "robustness": 1.0 + 0.5 * float(g[5]),
                         "mce": 20.0 + float(g[1]) + 0.1 * float(g[2])}
        return out

    def describe(self):
        return {"measure": "fake-flatnas"}


@pytest.fixture(scope="module")
def surrogate_run(tmp_path_factory) -> Path:
    """A tiny f_ar,params search: f_ar is expensive, so each iteration chooses a surrogate by CV τ."""
    from proxybench.search.loop import run_search
    from proxybench.search.measures import CostMeasure
    from proxybench.spaces import get_space

    run = tmp_path_factory.mktemp("search") / "surrogate"
    run_search("nb201", "f_ar,params", out=run, measures=[CostMeasure(get_space("nb201")), FlatnasMeasure()],
               n_start=12, iterations=2, per_iteration=3, seed=0, top_k=2, pop_size=8, generations=2, cv_folds=3)
    return run


@pytest.fixture(scope="module")
def surrogate_report(results, surrogate_run) -> str:
    return build_report(results, archives=[surrogate_run])


def _paper_cells(table: dict) -> dict:
    return {(c["attrs"]["data-row-group"], c["attrs"]["data-row"], c["attrs"]["data-col-group"],
             c["attrs"]["data-col"]): c for c in _descendants(table) if c["tag"] == "td" and "data-v" in c["attrs"]}


def test_paper_tables_hold_build_tables_numbers_and_marks(results, surrogate_run, surrogate_report):
    from proxybench.tables import TableBuildError, build_table, get_table, list_tables
    from proxybench.tables.layout import marks

    page = Page(surrogate_report)
    shown = {t["attrs"]["data-table"]: t for t in page.find("table", **{"class": "paper"})}
    given = {"scores": [results], "truth": [results], "archive": [surrogate_run],
             "predictions": [results / "predictor_metrics"]}
    assert {"zero-cost", "few-shot", "flatnas-search"} <= set(shown)
    failed = {cells(r)[0]["text"]: cells(r)[2]["text"] for t in page.find("table", **{"class": "tables-failed"})
              for r in _rows(t)}
    assert set(shown) | set(failed) == {d.name for d in list_tables()}  # every need is met here: none left out
    for name in shown:
        data = build_table(get_table(name), **{v: given[v] for v in get_table(name).needs})
        found = _paper_cells(shown[name])
        expected = {(c.row_group, c.row, c.col_group, c.col): c.value for c in data.cells if c.value is not None}
        assert {k: float(v["attrs"]["data-v"]) for k, v in found.items()} == expected
        for key, mark in marks(data).items():
            assert found[key]["attrs"]["data-mark"] == mark
            assert any(ch["tag"] == {"best": "b", "second": "u"}[mark] for ch in found[key]["children"])
    # the FlatNAS table's mCE column is the archive's mce of the picks
    picks = [r for r in Archive(surrogate_run, ["f_ar", "params"]).rows() if r["selected"]]
    mce = {k[1]: float(v["attrs"]["data-v"]) for k, v in _paper_cells(shown["flatnas-search"]).items()
           if k[3] == "mCE (%)"}
    assert mce == {f"{r['run_id']}: {r['arch_label']}": r["mce"] for r in picks}
    for name, reason in failed.items():  # listed with the reason build_table gives
        with pytest.raises(TableBuildError) as exc:
            build_table(get_table(name), **{v: given[v] for v in get_table(name).needs})
        assert isinstance(exc.value, TableBuildError) and reason == str(exc.value).strip().splitlines()[0]


def test_a_table_with_unmet_needs_is_absent_and_a_failing_one_is_listed(results, tmp_path, monkeypatch):
    """Without --archive the FlatNAS table is absent (and said to need an archive); a table whose query finds
    nothing in these files is listed with build_table's reason."""
    import proxybench.tables as tables

    page = Page(build_report(results))
    names = {t["attrs"]["data-table"] for t in page.find("table", **{"class": "paper"})}
    assert "flatnas-search" not in names and {"zero-cost", "few-shot"} <= names
    [section] = page.find("section", data_section="tables")
    assert "flatnas-search: archive" in section["text"]

    extra = tmp_path / "tables"
    extra.mkdir()
    (extra / "empty-one.sql").write_text("-- title: Nothing\n-- needs: scores\n"
                                         "SELECT 'r' AS row, 'c' AS col, 1.0 AS value FROM scores WHERE false\n")
    builtin = tables.list_tables
    monkeypatch.setattr(tables, "list_tables", lambda: builtin([extra]))
    page = Page(build_report(results))
    [failed] = page.find("table", **{"class": "tables-failed"})
    [row] = [r for r in _rows(failed) if cells(r)[0]["text"] == "empty-one"]
    assert cells(row)[2]["text"].startswith("table empty-one found no rows in the files given")


def test_surrogate_choices_and_cv_tau_per_iteration(surrogate_run, surrogate_report):
    page = Page(surrogate_report)
    [table] = page.find("table", **{"class": "sortable surrogates"})
    stats = [s for s in Archive(surrogate_run, ["f_ar", "params"]).iteration_stats() if s.get("objective")]
    assert len(stats) == 2  # two iterations, one expensive objective
    rows = _rows(table)
    assert [(r["attrs"]["data-iteration"], r["attrs"]["data-objective"]) for r in rows] == [
        (str(s["iteration"]), s["objective"]) for s in stats]
    for row, st in zip(rows, stats):
        cs = cells(row)
        assert cs[2]["text"] == st["surrogate"]
        assert float(cs[3]["attrs"]["data-v"]) == st["cv_tau_mean"]
        assert cs[3]["text"] == f"{st['cv_tau_mean']:.3f} ± {st['cv_tau_std']:.3f}"
    # the picks table carries the picks' corruption error
    [picks] = page.find("table", **{"class": "sortable picks"})
    assert [h["text"] for h in _descendants(picks) if h["tag"] == "th"][-1] == "mCE (%)"
    by_label = {r["arch_label"]: r["mce"] for r in Archive(surrogate_run, ["f_ar", "params"]).rows() if r["selected"]}
    assert {cells(r)[0]["text"]: float(cells(r)[-1]["attrs"]["data-v"]) for r in _rows(picks)} == by_label


def test_a_run_without_expensive_objectives_says_so(report):
    page = Page(report.read_text())
    [section] = page.find("section", data_section="search-0")
    assert not page.find("table", **{"class": "sortable surrogates"})
    assert "every objective of this run is cheap" in section["text"]
    assert "mCE" not in section["text"]  # params,flops: no corruption error measured


def test_without_truth_the_page_says_why(tmp_path):
    out = tmp_path / "results"
    write(out / "scores" / "p.parquet", score_rows("synflow", np.arange(1, 11)), SCORES_SCHEMA)
    page = Page(build_report(out))
    assert [e["attrs"]["data-section"] for e in page.find("section")] == ["provenance", "correlations"]
    assert "no truth" in build_report(out)


def test_cli_writes_the_file_and_errors_are_one_line(results, tmp_path):
    target = tmp_path / "r.html"
    result = CliRunner().invoke(cli, ["report", str(results), "--output", str(target), "--top-k", "5"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert target.read_text().startswith("<!DOCTYPE html>") and "wrote" in result.output
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(cli, ["report", str(empty)], catch_exceptions=False)
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {empty} is not a results directory")


def test_report_help_imports_nothing_slow():
    """As the metadata commands (tests/test_startup.py): the help of report starts without torch, numpy or duckdb."""
    probe = ("import sys\nfrom proxybench_cli.main import cli\n"
             "cli.main(args=['report', '--help'], prog_name='proxybench', standalone_mode=False)\n"
             "sys.stderr.write('HEAVY=' + ','.join(m for m in ('torch', 'numpy', 'duckdb', 'pyarrow', 'scipy') "
             "if m in sys.modules))\n")
    import sys

    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr.rsplit("HEAVY=", 1)[-1].strip() == ""


# ----------------------------------------------------------------------------- in a browser


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if found is None:
        message = "headless Chromium not found (apt-get install chromium); the report's browser test needs it"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def test_a_missing_chromium_fails_under_ci_and_skips_otherwise(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception, match="headless Chromium not found"):
        _chromium()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="headless Chromium not found"):
        _chromium()


def _headless(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([browser, "--headless", "--disable-gpu", "--no-sandbox", "--enable-logging=stderr", "--v=0",
                           "--no-first-run", "--disable-dev-shm-usage", f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120)


def test_the_page_runs_in_headless_chromium_and_looks_like_something(report, tmp_path):
    from PIL import Image

    browser = _chromium()
    url = report.resolve().as_uri()
    dom = _headless(browser, tmp_path / "profile", "--dump-dom", url + "#selftest")
    assert dom.returncode == 0, dom.stderr[-2000:]
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert not console, console
    page = Page(dom.stdout)
    assert page.find("body", data_ready="1"), "the inline script did not run to its end"
    data = Page(report.read_text()).data()
    hovered = [e for e in page.find("figure") if "data-selftest" in e["attrs"]]
    assert len(hovered) == 4  # three scatters and the archive panel
    for figure in hovered:
        arch, _, _ = figure["attrs"]["data-selftest"].split(" | ")
        assert arch in data["archs"]
        # a mousemove event at a point's screen position shows a tooltip with an architecture and the values
        tip = figure["attrs"]["data-selftest-tip"]
        assert tip != "hidden" and any(tip.startswith(a) for a in data["archs"]) and ":" in tip

    tables = [e for e in page.find("table") if "sortable" in e["attrs"].get("class", "")]
    assert tables and {t["attrs"].get("data-selftest") for t in tables} == {"sorted"}

    png = tmp_path / "page.png"
    shot = _headless(browser, tmp_path / "profile", f"--screenshot={png}", "--window-size=1280,2000",
                     "--hide-scrollbars", url)
    assert shot.returncode == 0 and png.is_file(), shot.stderr[-2000:]
    with Image.open(png) as image:
        assert image.size == (1280, 2000)
        colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
        assert colours is None or len(colours) > 50  # not blank: text, tables and figures
    if os.environ.get("PROXYBENCH_REPORT_SCREENSHOT"):  # to look at: the PNG and the page beside it
        target = Path(os.environ["PROXYBENCH_REPORT_SCREENSHOT"])
        shutil.copy(png, target)
        shutil.copy(report, target.with_suffix(".html"))


def test_symlog_axes_every_metric_and_a_proxy_without_usable_pairs(tmp_path):
    """Scores of both signs spanning decades get a symlog axis; --scatter-metric all draws each metric; a proxy
    whose rows all failed still gets its (empty) panel and its table row with the note."""
    out = tmp_path / "results"
    rng = np.random.default_rng(1)
    acc = rng.uniform(50, 90, 30)
    wide = np.sign(rng.normal(size=30)) * 10 ** rng.uniform(-4, 4, 30)
    broken = score_rows("grasp", [math.nan] * 30, statuses={i: "error" for i in range(30)})
    write(out / "scores" / "p.parquet", score_rows("plain", wide) + broken, SCORES_SCHEMA)
    write(out / "truth" / "t.parquet", truth_rows(acc) + truth_rows(acc - 1, metric="valid_acc"), TRUTH_SCHEMA)
    page = Page(build_report(out, scatter_metric="all", top_k=()))
    figures = page.find("figure", **{"class": "panel scatter"})
    assert sorted((f["attrs"]["data-proxy"], f["attrs"]["data-metric"]) for f in figures) == [
        ("grasp", "test_acc"), ("grasp", "valid_acc"), ("plain", "test_acc"), ("plain", "valid_acc")]
    assert {f["attrs"]["data-scale"] for f in figures if f["attrs"]["data-proxy"] == "plain"} == {"symlog"}
    assert x_scale(wide)[0] == "symlog"
    assert {f["attrs"]["data-n"] for f in figures if f["attrs"]["data-proxy"] == "grasp"} == {"0"}
    row = [r for r in page.find("tr", data_proxy="grasp") if "data-settings" in r["attrs"]][0]  # a correlation row
    assert "only 0 usable pair" in cells(row)[-1]["text"]


def test_axis_ticks_and_the_compact_point_path():
    from proxybench.report.svg import Axis, decimate_path

    log = Axis.for_values(np.array([1e15, 1e35]), 300, "log")
    labels = [label for _, label in log.ticks()]
    assert labels[0] == "1e15" and labels[-1] == "1e35" and len(labels) <= 7
    assert [label for _, label in Axis.for_values(np.array([450.0, 1010.0]), 300).ticks()] == ["600", "800", "1000"]
    reverse = Axis.for_values(np.array([1.0, 2.0]), 100, reverse=True)
    assert reverse(np.array([1.0]))[0] > reverse(np.array([2.0]))[0]  # lower-is-better: better to the right
    symlog = Axis.for_values(np.array([-1e4, 1e4]), 300, "symlog", linthresh=1.0)
    positions = symlog(np.array([-1e4, -10, -1, 0, 1, 10, 1e4]))
    assert np.all(np.diff(positions) > 0)
    # each half pixel once: four points, two of which share a half pixel
    assert decimate_path(np.array([1.0, 1.1, 5.0, 7.26]), np.array([2.0, 2.1, 3.0, 4.0])) == "M2 4h0M10 6h0M15 8h0"
