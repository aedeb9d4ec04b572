"""``proxybench report``: one self-contained HTML page of what a results directory holds.

The page is assembled from the library functions the other commands use, so its numbers
are theirs, never a second computation:

* **Provenance**: :func:`proxybench.store.status.results_status` (runs, their state and wall
  time, coverage per proxy, worker hours), the run records ``OUT/runs/*.json`` (command
  settings, versions, threads), the distinct scoring settings of the stored rows (preset,
  weights, seed, batch, device, dtype, versions), and every row whose status is not ``ok``,
  grouped by status and message, counted over the rows ``status`` counts (one per resume key).
* **Correlations**: :func:`proxybench.stats.correlate` on the views of
  :func:`proxybench.store.views.open_views` (built-in ensembles included, as ``proxybench
  correlate`` does); one table per dataset and metric, sortable, every statistic's full
  value in the cell's ``data-v``.
* **Scatters**: one per correlation row of the scatter metric (default ``test_acc`` where
  present): the pairs of :func:`proxybench.stats.correlation.create_joined_pairs` that the
  statistics used, raw score on x (axis reversed for lower-is-better proxies), log/symlog by
  :func:`proxybench.stats.plots.x_scale`; hover shows architecture, score and truth.
* **Few-shot predictors** (``OUT/predictor_metrics``): :func:`proxybench.combine.run.summarise`
  per (space, dataset, metric): a table and τ against n per model, one chart per feature set.
* **Paper tables**: every built-in table of ``proxybench tables`` whose needs the report's
  inputs meet (scores and truth; ``predictions`` from ``OUT/predictor_metrics``; ``archive``
  from ``--archive``), built by :func:`proxybench.tables.build_table` with the best/second
  marks of :func:`proxybench.tables.layout.marks`; a table that cannot be built from these
  files is listed with build_table's one-line reason.
* **Searches** (``--archive RUN``): the archive's objective space in the user's orientation
  (as :func:`proxybench.search.report.pareto_figure`), the non-dominated front of
  :func:`proxybench.search.select.non_dominated` as a step line, the picks as stars, a
  picks table (with the picks' mCE when measured), and the surrogate each iteration chose
  per expensive objective with its cross-validated τ (the run's stored iteration statistics,
  :meth:`proxybench.search.archive.Archive.iteration_stats`).

Figures are inline SVG (why: :mod:`proxybench.report.svg`), the script and style inline
(:mod:`proxybench.report._assets`); nothing is fetched when the page is opened.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from html import escape
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from proxybench.errors import StoreError
from proxybench.report._assets import CSS, SCRIPT
from proxybench.report.svg import HEIGHT, WIDTH, Axis, Frame, fmt_number, line_chart, points_group

__all__ = ["ReportSummary", "build_report", "write_report"]

#: Settings columns shown in a correlation table when they vary within its block.
_SETTING_COLUMNS = ("space", "preset", "weights", "seed", "batch_size", "settings_hash", "truth_epochs", "truth_seed",
                    "truth_source")
_PAIRS = "pb_report_pairs"


@dataclass
class ReportSummary:
    """What :func:`write_report` wrote; ``str()`` is the line the command prints."""

    path: Path
    bytes: int
    seconds: float
    sections: list[str] = field(default_factory=list)
    scatters: int = 0
    points: int = 0

    def __str__(self) -> str:
        return (f"wrote {self.path} ({self.bytes / 1e6:.2f} MB, {self.scatters} scatters, {self.points:,} points, "
                f"sections: {', '.join(self.sections)}) in {self.seconds:.1f} s")


class _Page:
    """Collects the sections, the hover data and the architecture strings (stored once)."""

    def __init__(self) -> None:
        self.sections: list[tuple[str, str, str]] = []  # (id, title, html)
        self.archs: dict[str, int] = {}
        self.truth: dict[str, dict[str, Any]] = {}
        self.hover: list[dict[str, Any]] = []
        self.scatters = 0
        self.points = 0

    def arch_index(self, arch: str) -> int:
        return self.archs.setdefault(arch, len(self.archs))

    def add(self, ident: str, title: str, body: str) -> None:
        self.sections.append((ident, title, body))


def write_report(out: str | os.PathLike[str], output: str | os.PathLike[str] | None = None,
                 **options: Any) -> ReportSummary:
    """Write the report of results directory ``out`` to ``output`` (default ``out/report.html``).

    Args:
        out: The results directory.
        output: The HTML file to write (written through a temporary name and a rename).
        **options: As :func:`build_report`.

    Returns:
        A :class:`ReportSummary` (path, size, time, sections).

    Raises:
        StoreError: As :func:`build_report`, or the file cannot be written.
    """
    started = time.perf_counter()
    target = Path(output) if output is not None else Path(out) / "report.html"
    page = _collect(Path(out), **options)
    text = _html(page, Path(out), options.get("title"))
    tmp = target.with_name(target.name + ".tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StoreError(f"cannot write {target}: {exc.strerror or exc}; choose another --output") from None
    return ReportSummary(target, target.stat().st_size, time.perf_counter() - started,
                         [ident for ident, _, _ in page.sections], page.scatters, page.points)


def build_report(out: str | os.PathLike[str], **options: Any) -> str:
    """The report's HTML text (see the module docstring).

    Args:
        out: The results directory (``scores/``, ``runs/``, optionally ``truth/`` and
            ``predictor_metrics/``).
        truth: Truth paths (default: ``out`` when it has ``truth/``; else no correlations).
        archives: Search run directories whose archives to draw.
        top_k: Top-k percentages of the correlation tables (default 1, 5, 10).
        bootstrap: Resamples for the 95 % intervals (default 0: none).
        seed: Bootstrap seed.
        scatter_metric: Truth metric of the scatters (default ``test_acc`` where a dataset has
            it, else its first metric); ``"all"`` draws every metric.
        title: The page title.

    Raises:
        StoreError: ``out`` is not a results directory, or a file in it is unreadable.
        CorrelationError: The scores and the truth have nothing in common.
    """
    page = _collect(Path(out), **options)
    return _html(page, Path(out), options.get("title"))


def _collect(out: Path, *, truth: Sequence[str | os.PathLike[str]] | None = None,
             archives: Iterable[str | os.PathLike[str]] = (), top_k: Iterable[float] = (1, 5, 10),
             bootstrap: int = 0, seed: int = 0, scatter_metric: str | None = None,
             title: str | None = None) -> _Page:
    from proxybench.store.status import results_status

    status = results_status(out)  # also the check that ``out`` is a results directory
    page = _Page()
    page.add("provenance", "Runs and provenance", _provenance(out, status))
    truth_paths = list(truth) if truth else ([out] if (out / "truth").is_dir() else [])
    has_scores = bool(status.coverage)
    if truth_paths and has_scores:
        _correlations(page, out, truth_paths, tuple(top_k), bootstrap, seed, scatter_metric)
    else:
        why = "no scores yet" if not has_scores else (
            f"no truth: {out}/truth does not exist; import it (proxybench truth import ... --out {out}) or pass --truth")
        page.add("correlations", "Correlations",
                 f'<p class="warn">Correlations and scatters are left out: {escape(why)}.</p>')
    if (out / "predictor_metrics").is_dir():
        page.add("predictors", "Few-shot predictors", _predictors(out / "predictor_metrics"))
    archives = list(archives)
    given = {"scores": [out] if has_scores else None, "truth": truth_paths or None, "archive": archives or None,
             "predictions": [out / "predictor_metrics"] if (out / "predictor_metrics").is_dir() else None}
    tables = _paper_tables(given)
    if tables:
        page.add("tables", "Paper tables", tables)
    for run in archives:
        _archive(page, Path(run))
    return page


# ----------------------------------------------------------------------------- provenance


def _table(head: Sequence[str], rows: Iterable[Sequence[Any]], numeric: Iterable[int] = (), cls: str = "sortable",
           attrs: Iterable[str] | None = None) -> str:
    """A table; cells may be plain values or ``(text, data-v)`` pairs (sortable by value)."""
    numeric = set(numeric)
    num = ' class="num"'
    head_html = "".join(f'<th{num if k in numeric else ""}>{escape(h)}</th>' for k, h in enumerate(head))
    body = []
    row_attrs = list(attrs) if attrs is not None else None
    for r, row in enumerate(rows):
        cells = []
        for k, cell in enumerate(row):
            align = num if k in numeric else ""
            if isinstance(cell, tuple):
                text, value = cell
                cells.append(f'<td{align} data-v="{escape(_repr(value))}">{text}</td>')
            elif isinstance(cell, _Html):
                cells.append(f"<td{align}>{cell}</td>")
            else:
                cells.append(f"<td{align}>{escape(str(cell))}</td>")
        extra = f" {row_attrs[r]}" if row_attrs else ""
        body.append(f"<tr{extra}>{''.join(cells)}</tr>")
    return f'<table class="{cls}"><thead><tr>{head_html}</tr></thead><tbody>{"".join(body)}</tbody></table>'


class _Html(str):
    """A table cell that is HTML already (not escaped, sorted by its text)."""


def _repr(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "NaN"
    return repr(float(value)) if isinstance(value, (float, np.floating)) else str(value)


def _num(value: Any, digits: int = 3) -> tuple[str, Any]:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—", value
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}", value
    return f"{value:.{digits}f}", value


def _wall_seconds(started: str, updated: str) -> float | None:
    try:
        return (datetime.fromisoformat(updated) - datetime.fromisoformat(started)).total_seconds()
    except (TypeError, ValueError):
        return None


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    hours, rest = divmod(int(round(seconds)), 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


def _provenance(out: Path, status: Any) -> str:
    parts = [f'<p class="meta">Results directory <code>{escape(str(out))}</code>; the numbers below are those of '
             f"<code>proxybench status {escape(str(out))}</code>.</p>"]
    if status.duplicates:
        extra = sum(status.duplicates.values())
        parts.append(f'<p class="warn">duplicates: {extra} extra rows stored under one resume key (proxies '
                     f"{escape(', '.join(sorted(status.duplicates)))}); run <code>proxybench repair {escape(str(out))}"
                     "</code>. Coverage counts each key once.</p>")
    if status.journal_rows:
        parts.append(f'<p class="warn">{status.journal_rows} rows are still in journals (a live or killed run).</p>')
    records = _run_records(out)
    stored = _stored(out) if status.coverage else None
    devices = _run_devices(stored) if stored is not None else {}
    run_rows, attrs = [], []
    for run in status.runs:
        info = records.get(run.run_id, {})
        wall = _wall_seconds(run.started_at, run.updated_at)
        run_rows.append([run.run_id, run.state, run.started_at, run.updated_at, (_duration(wall), wall),
                         _num(run.archs_requested)[0] if run.archs_requested is not None else "—",
                         (f"{run.rows:,}", run.rows),
                         ", ".join(devices.get(run.run_id, [])) or "—", info.get("proxybench_version", "—"),
                         info.get("torch_version", "—"), _settings_text(info)])
        attrs.append(f'data-run="{escape(run.run_id)}"')
    parts.append(f"<h3>Runs ({len(status.runs)})</h3>")
    if run_rows:
        parts.append(_table(["run", "state", "started", "updated", "wall time", "archs requested", "rows", "device",
                             "proxybench", "torch", "command settings"], run_rows, numeric=(4, 5, 6), attrs=attrs))
        total_wall = sum(w for w in (_wall_seconds(r.started_at, r.updated_at) for r in status.runs) if w)
        parts.append(f'<p class="meta">Wall time: started → last update of each run record; '
                     f"{_duration(total_wall)} over all runs (runs may overlap).</p>")
    else:
        parts.append('<p class="meta">No run records in runs/.</p>')

    parts.append("<h3>Coverage per proxy</h3>")
    if status.coverage:
        rows, attrs = [], []
        for c in status.coverage:
            archs = f"{c.archs:,}/{c.space_size:,}" if c.space_size else f"{c.archs:,}"
            rows.append([c.space, c.dataset, c.preset, c.weights, c.seed, c.proxy, (archs, c.archs),
                         (f"{c.classes:,}", c.classes), (f"{c.computed:,}", c.computed), (f"{c.ok:,}", c.ok),
                         (f"{c.nonfinite:,}", c.nonfinite), (f"{c.error:,}", c.error),
                         (f"{c.compute_seconds / 3600:.2f}", c.compute_seconds / 3600)])
            attrs.append(f'data-proxy="{escape(c.proxy)}" data-dataset="{escape(c.dataset)}"')
        parts.append(_table(["space", "dataset", "preset", "weights", "seed", "proxy", "archs", "classes", "computed",
                             "ok", "nonfinite", "error", "hours"], rows, numeric=range(6, 13), attrs=attrs))
        hours = sum(c.compute_seconds for c in status.coverage) / 3600
        parts.append(f'<p class="meta" id="compute-hours" data-v="{hours!r}">Compute: {hours:.2f} worker hours over the '
                     "computed rows (a pass shared by several proxies counts for the first proxy that ran it).</p>")
        parts.append("<h3>Scoring settings</h3>" + _settings_table(stored))
        parts.append("<h3>Rows that are not ok</h3>" + _failures(stored))
    else:
        parts.append('<p class="meta">No scores yet.</p>')
    return "".join(parts)


def _run_records(out: Path) -> dict[str, dict[str, Any]]:
    found = {}
    for record in sorted((out / "runs").glob("*.json")) if (out / "runs").is_dir() else []:
        try:
            info = json.loads(record.read_text())
        except (OSError, json.JSONDecodeError):
            continue  # results_status has already reported an unreadable record
        found[info.get("run_id", record.stem)] = info
    return found


def _settings_text(info: dict[str, Any]) -> str:
    settings = info.get("settings")
    if not isinstance(settings, dict):
        return "—"
    return ", ".join(f"{k}={v}" for k, v in sorted(settings.items()) if not isinstance(v, (dict, list)))


def _stored(out: Path) -> Any:
    """The rows ``proxybench status`` counts (one per resume key; its own relation, not a copy of its SQL),
    the columns the provenance tables need, read once into memory for the three queries below."""
    import duckdb

    from proxybench.store.status import _all_rows, _stored_rows

    table = _all_rows(_stored_rows(out)).select(
        "run_id, device, preset, weights, seed, batch_size, dtype, proxybench_version, torch_version, proxy, "
        "settings_hash, status, error, arch").arrow()
    table = table.read_all() if hasattr(table, "read_all") else table  # a RecordBatchReader in newer DuckDB
    con = duckdb.connect()
    con.register("pb_report_stored", table)
    return con.table("pb_report_stored")


def _run_devices(stored: Any) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for run_id, device in stored.query("r", "SELECT DISTINCT run_id, device FROM r ORDER BY ALL").fetchall():
        found.setdefault(run_id, []).append(device)
    return found


def _settings_table(stored: Any) -> str:
    rows = stored.query("r", """
        SELECT preset, weights, seed, batch_size, device, dtype, proxybench_version, torch_version,
               string_agg(DISTINCT proxy, ', ' ORDER BY proxy), count(*), min(settings_hash)
        FROM r GROUP BY preset, weights, seed, batch_size, device, dtype, proxybench_version, torch_version
        ORDER BY ALL""").fetchall()
    body = [[*map(str, r[:8]), r[8], (f"{r[9]:,}", r[9])] for r in rows]
    return _table(["preset", "weights", "seed", "batch", "device", "dtype", "proxybench", "torch", "proxies", "rows"],
                  body, numeric=(9,))


def _failures(stored: Any) -> str:
    rows = stored.query("r", """
        SELECT status, coalesce(error, '') AS message, count(*) AS n,
               string_agg(DISTINCT proxy, ', ' ORDER BY proxy), min(arch),
               list(proxy || '  ' || arch ORDER BY proxy, arch)[1:50]
        FROM r WHERE status <> 'ok' GROUP BY status, message ORDER BY status, n DESC, message""").fetchall()
    if not rows:
        return '<p class="meta">Every stored row has status ok.</p>'
    groups: dict[str, list[Any]] = {}
    for row in rows:
        groups.setdefault(row[0], []).append(row)
    parts = []
    for state, members in groups.items():
        total = sum(m[2] for m in members)
        body = [[_Html(f"<code>{escape(m[1]) or '(no message)'}</code>"), (f"{m[2]:,}", m[2]), m[3],
                 _Html(_rows_list(m[4], m[5], m[2]))] for m in members]
        parts.append(f'<details open data-status="{escape(state)}" data-v="{total}">'
                     f"<summary>{escape(state)}: {total:,} rows, "
                     f"{len(members)} distinct message(s)</summary>"
                     + _table(["message", "rows", "proxies", "architectures"], body, numeric=(1,))
                     + "</details>")
    return "".join(parts)


def _rows_list(example: str, rows: list[str], total: int) -> str:
    """An example architecture, and (folded) the proxy and architecture of up to 50 of the rows."""
    more = f"<br>… and {total - len(rows):,} more" if total > len(rows) else ""
    listed = "<br>".join(escape(r) for r in rows)
    return (f'<span class="arch">{escape(example)}</span><details><summary>{"all" if not more else "first"} '
            f'{len(rows)} rows (proxy, architecture)</summary><span class="arch">{listed}{more}</span></details>')


# ----------------------------------------------------------------------------- correlations and scatters


def _correlations(page: _Page, out: Path, truth_paths: list[Any], top_k: tuple[float, ...], bootstrap: int, seed: int,
                  scatter_metric: str | None) -> None:
    import glob

    from proxybench.stats import correlate
    from proxybench.stats.correlation import create_joined_pairs
    from proxybench.store.views import open_views

    with open_views(scores=[out], truth=truth_paths) as con:
        result = correlate(con, top_k=top_k, bootstrap=bootstrap, seed=seed)
        blocks: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for row in result.rows:
            blocks.setdefault((row["dataset"], row["metric"]), []).append(row)
        body = [f'<p class="meta">{len(result.rows)} rows of <code>proxybench correlate --scores {escape(str(out))} '
                f"--truth {escape(' '.join(map(str, truth_paths)))} --top-k {','.join(f'{k:g}' for k in top_k) or 'none'}"
                f"{f' --bootstrap {bootstrap} --seed {seed}' if bootstrap else ''}</code>. Positive means the proxy "
                "ranks better architectures higher (scores of lower-is-better proxies are negated first). Click a "
                "header to sort.</p>"]
        for (dataset, metric), rows in blocks.items():
            body.append(f'<h3 id="corr-{escape(dataset)}-{escape(metric)}">{escape(dataset)} · {escape(metric)}</h3>')
            body.append(_correlation_table(rows, result))
        page.add("correlations", "Correlations", "".join(body))

        chosen = _scatter_metrics(blocks, scatter_metric)
        if not chosen:
            return
        create_joined_pairs(con, _PAIRS, dataset=sorted({d for d, _ in chosen}), metric=sorted({m for _, m in chosen}),
                            proxies=[glob.escape(p) for p in dict.fromkeys(r["proxy"] for r in result.rows)],
                            by=result.by)
        try:
            figures = []
            for dataset, metric in chosen:
                figures.append(f"<h3>{escape(dataset)} · {escape(metric)}</h3>")
                figures.append(_scatter_block(page, con, blocks[(dataset, metric)], result))
        finally:
            con.execute(f"DROP TABLE IF EXISTS {_PAIRS}")
        page.add("scatters", "Scores against the truth",
                 '<p class="meta">One panel per proxy: its raw score on x against the truth on y, only the pairs the '
                 "statistics used. Better-ranked architectures lie to the right in every panel (the x axis of a "
                 "lower-is-better proxy is reversed). Log or symlog x where the scores span more than 3 decades. "
                 "Hover a point for its architecture.</p>" + "".join(figures))


def _scatter_metrics(blocks: dict[tuple[str, str], list[Any]], wanted: str | None) -> list[tuple[str, str]]:
    datasets = list(dict.fromkeys(d for d, _ in blocks))
    if wanted == "all":
        return list(blocks)
    chosen = []
    for dataset in datasets:
        metrics = [m for d, m in blocks if d == dataset]
        if wanted is not None:
            chosen += [(dataset, wanted)] if wanted in metrics else []
        else:
            chosen.append((dataset, "test_acc" if "test_acc" in metrics else metrics[0]))
    return chosen


def _stat_columns(result: Any) -> list[tuple[str, str]]:
    from proxybench.stats.correlation import topk_column

    columns = [("spearman", "ρ"), ("kendall", "τ"), ("pearson", "r")]
    columns += [(topk_column(k), f"top-{k:g}%") for k in result.top_k]
    return columns


def _correlation_table(rows: list[dict[str, Any]], result: Any) -> str:
    # settings_hash differs between proxies by construction; it is shown only where one proxy has several rows
    repeated = len({r["proxy"] for r in rows}) < len(rows)
    varying = [c for c in _SETTING_COLUMNS + tuple(result.by) if len({str(r.get(c)) for r in rows}) > 1
               and (c != "settings_hash" or repeated)]
    constant = [c for c in _SETTING_COLUMNS if c not in varying and c in rows[0] and c != "settings_hash"]
    stats = _stat_columns(result)
    head = ["proxy", "better", "n", "excl.", *(label for _, label in stats), *varying, "note"]
    ordered = sorted(rows, key=lambda r: (-r["spearman"] if math.isfinite(r["spearman"]) else math.inf, r["proxy"]))
    body, attrs = [], []
    for row in ordered:
        cells: list[Any] = [row["proxy"], "higher" if row["higher_is_better"] else "lower",
                            _num(row["n"]), _num(row["excluded"])]
        for name, _ in stats:
            text, value = _num(row[name])
            if result.bootstrap and name in ("spearman", "kendall"):
                lo, hi = row.get(name + "_lo"), row.get(name + "_hi")
                if lo is not None and math.isfinite(lo):
                    text += (f' <span class="ci" data-lo="{lo!r}" data-hi="{hi!r}">[{lo:.3f}, {hi:.3f}]</span>')
            cells.append((text, value))
        cells += [str(row[c])[:12] if c == "settings_hash" else str(row[c]) for c in varying]
        cells.append(row["note"])
        body.append(cells)
        attrs.append(f'data-proxy="{escape(str(row["proxy"]))}" data-settings="{escape(str(row["settings_hash"]))}"')
    caption = "; ".join(f"{c}={rows[0][c]}" for c in constant)
    numeric = range(2, 4 + len(stats))
    intervals = f"; CIs: 95 % bootstrap, {result.bootstrap} resamples" if result.bootstrap else ""
    return (f'<p class="meta">{escape(caption)}{intervals}</p>'
            + _table(head, body, numeric=numeric, cls="sortable corr", attrs=attrs))


def _scatter_block(page: _Page, con: Any, rows: list[dict[str, Any]], result: Any) -> str:
    from proxybench.stats.correlation import GROUP_COLUMNS
    from proxybench.stats.plots import x_scale

    key_names = [name for name, _ in GROUP_COLUMNS] + list(result.by)
    where = " AND ".join(f"{name} IS NOT DISTINCT FROM ?" for name in key_names)  # names from GROUP_COLUMNS/BY_COLUMNS
    several = {p for p in (r["proxy"] for r in rows) if sum(r["proxy"] == p for r in rows) > 1}
    fetched = []
    for row in sorted(rows, key=lambda r: (r["proxy"], str(r["settings_hash"]))):
        found = con.execute(f"SELECT arch, x, y FROM {_PAIRS} WHERE usable AND {where} ORDER BY arch",
                            [row[name] for name in key_names]).fetchnumpy()
        archs = [str(a) for a in found["arch"]]
        x = np.asarray(found["x"], dtype=np.float64)
        y = np.asarray(found["y"], dtype=np.float64)
        raw = x if row["higher_is_better"] else -x  # the stored score (correlate negated lower-is-better ones)
        truth_key = json.dumps([row["dataset"], row["metric"], str(row["truth_epochs"]), str(row["truth_seed"]),
                                str(row["truth_source"])])
        _add_truth(page, truth_key, row["metric"], archs, y)
        fetched.append((row, archs, raw, y, truth_key))
    figures = []
    for row, archs, raw, y, truth_key in fetched:
        name = row["proxy"] + (f" [{str(row['settings_hash'])[:8]}]" if row["proxy"] in several else "")
        figures.append(_scatter(page, row, name, archs, raw, y, truth_key, x_scale(raw) if raw.size else ("linear", {})))
    return f'<div class="grid">{"".join(figures)}</div>'


def _add_truth(page: _Page, key: str, metric: str, archs: list[str], values: np.ndarray) -> None:
    """Register the truth of ``archs`` under ``key``: stored once for hover, shared by every panel of the key."""
    truth = page.truth.get(key)
    if truth is None:
        truth = page.truth[key] = {"a": [], "w": [], "wn": metric, "_pos": {}, "_values": []}
    for arch, value in zip(archs, values.tolist()):
        if arch not in truth["_pos"]:
            truth["_pos"][arch] = len(truth["a"])
            truth["a"].append(page.arch_index(arch))
            truth["w"].append(float(f"{value:.6g}"))
            truth["_values"].append(value)
    truth.pop("_axis", None)


def _scatter(page: _Page, row: dict[str, Any], name: str, archs: list[str], raw: np.ndarray, y: np.ndarray,
             truth_key: str, scale: tuple[str, dict[str, float]]) -> str:
    kind, kwargs = scale
    lower = not row["higher_is_better"]
    x_axis = Axis.for_values(raw, WIDTH, kind, kwargs.get("linthresh"), reverse=lower)
    truth = page.truth[truth_key]
    y_axis = truth.get("_axis")
    if y_axis is None:
        y_axis = truth["_axis"] = Axis.for_values(np.array(truth["_values"]), HEIGHT)
    scale_text = {"log": "log scale", "symlog": "symlog scale"}.get(kind, "")
    xlabel = (f"score, lower is better → (axis reversed{', ' + scale_text if scale_text else ''})" if lower
              else f"score, higher is better →{' (' + scale_text + ')' if scale_text else ''}")
    frame = Frame(x_axis, y_axis, xlabel, row["metric"], title=f"{name} against {row['metric']}")
    px, py = frame.px(raw), frame.py(y)
    slots = len(truth["a"])
    hx: list[float | None] = [None] * slots
    hu: list[float | None] = [None] * slots
    positions = truth["_pos"]
    for arch, a, score in zip(archs, px.tolist(), raw.tolist()):
        position = positions[arch]
        hx[position] = round(a, 1)
        hu[position] = float(f"{score:.6g}")
    index = len(page.hover)
    page.hover.append({"t": truth_key, "x": hx, "u": hu, "un": f"{row['proxy']} score"})
    page.scatters += 1
    page.points += len(archs)
    stats = (f"ρ = {_num(row['spearman'])[0]} · τ = {_num(row['kendall'])[0]} · n = {row['n']:,}"
             + (f" · {row['excluded']:,} excluded" if row["excluded"] else ""))
    svg = frame.open() + points_group(px, py) + '<circle class="hl" r="4" visibility="hidden"/>' + frame.close()
    return (f'<figure class="panel scatter" data-h="{index}" data-proxy="{escape(row["proxy"])}" '
            f'data-dataset="{escape(row["dataset"])}" data-metric="{escape(row["metric"])}" '
            f'data-settings="{escape(str(row["settings_hash"]))}" data-scale="{kind}" data-n="{len(archs)}">'
            f"{svg}<figcaption><b>{escape(name)}</b> ({'lower' if lower else 'higher'} is better) · {stats}"
            f"</figcaption></figure>")


# ----------------------------------------------------------------------------- few-shot predictors


def _predictors(folder: Path) -> str:
    from proxybench.combine.run import summarise
    from proxybench.store.views import open_views

    with open_views(predictor_metrics=[folder]) as con:
        cursor = con.execute("SELECT * FROM predictor_metrics")
        names = [d[0] for d in cursor.description]
        metrics = [dict(zip(names, r)) for r in cursor.fetchall()]
    columns = [c for c in ("kendall", "spearman") if c in names]
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in metrics:
        groups.setdefault(tuple(str(row.get(k)) for k in ("space", "dataset", "metric")), []).append(row)
    parts = [f'<p class="meta">{len(metrics)} experiments from <code>{escape(str(folder))}</code>: mean over splits '
             "with its 95 % interval (proxybench combine's summary); split by isomorphism class (class) unless "
             "marked arch.</p>"]
    for (space, dataset, metric), rows in groups.items():
        summary = summarise(rows, columns)
        parts.append(f"<h3>{escape(space)} · {escape(dataset)} · {escape(metric)}</h3>")
        body, attrs = [], []
        for s in summary:
            cells: list[Any] = [s["split_kind"], s["features"], s["model"], (f"{s['n']:,}", s["n"]),
                                (str(s["splits"]), s["splits"])]
            for c in columns:
                text, value = _num(s[c])
                lo, hi = s.get(c + "_lo"), s.get(c + "_hi")
                if lo is not None and math.isfinite(lo):
                    text += f' <span class="ci">[{lo:.3f}, {hi:.3f}]</span>'
                cells.append((text, value))
            body.append(cells)
            attrs.append(f'data-model="{escape(str(s["model"]))}" data-features="{escape(str(s["features"]))}" '
                         f'data-n="{s["n"]}" data-split="{escape(str(s["split_kind"]))}"')
        parts.append(_table(["split", "features", "model", "n", "splits",
                             *({"kendall": "τ", "spearman": "ρ"}[c] for c in columns)], body,
                            numeric=range(3, 5 + len(columns)), cls="sortable predictors", attrs=attrs))
        if "kendall" in columns:
            charts = []
            models = list(dict.fromkeys(s["model"] for s in summary))
            for features in dict.fromkeys(s["features"] for s in summary):
                series = []
                for m, model in enumerate(models):
                    for kind in ("class", "arch"):
                        points = sorted((s["n"], s["kendall"], s.get("kendall_lo"), s.get("kendall_hi")) for s in summary
                                        if s["features"] == features and s["model"] == model and s["split_kind"] == kind)
                        if points:
                            series.append({"label": model + (" (split by string)" if kind == "arch" else ""),
                                           "x": [p[0] for p in points], "y": [p[1] for p in points],
                                           "lo": [p[2] for p in points] if kind == "class" else None,
                                           "hi": [p[3] for p in points] if kind == "class" else None,
                                           "dashed": kind == "arch", "colour": m})
                charts.append(line_chart(series, "training architectures n", "Kendall τ", f"features: {features}"))
            parts.append(f'<div class="grid learning-curves">{"".join(charts)}</div>')
    return "".join(parts)


# ----------------------------------------------------------------------------- paper tables


def _paper_tables(given: dict[str, list[Any] | None]) -> str:
    """Every built-in table of ``proxybench tables`` whose needs ``given`` meets, built by
    :func:`proxybench.tables.build_table` and laid out as its renderers do (groups, best/second
    marks); a table that cannot be built for these files is listed with its one-line reason.
    Empty when no table's needs are met."""
    from proxybench.errors import ProxybenchError
    from proxybench.tables import build_table, list_tables

    built, failed, skipped = [], [], []
    for definition in list_tables():
        if not all(given.get(view) for view in definition.needs):
            skipped.append(definition)
            continue
        try:
            data = build_table(definition, **{view: given[view] for view in definition.needs})
        except ProxybenchError as exc:
            failed.append((definition, str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__))
            continue
        built.append(_paper_table(data))
    if not built and not failed:
        return ""  # no table's needs are met: no section
    unmet = (f"; left out, as they need inputs this report was not given: "
             f"{escape('; '.join(f'{d.name}: ' + ', '.join(d.needs) for d in skipped))}" if skipped else "")
    parts = [f'<p class="meta">The tables of <code>proxybench tables</code> (the same numbers) whose inputs this '
             f"report has: {len(built)} built, {len(failed)} could not be built from these files (listed at the end)"
             f"{unmet}. Best in bold, second underlined; —: no value.</p>"]
    parts.extend(built)
    if failed:
        parts.append("<h3>Not built</h3>" + _table(
            ["table", "title", "reason"], [[d.name, d.title, why] for d, why in failed],
            cls="tables-failed"))
    return "".join(parts)


def _paper_table(data: Any) -> str:
    from proxybench.tables.layout import marks

    definition = data.definition
    digits = definition.decimals
    found = marks(data)
    index = {((c.row_group, c.row), (c.col_group, c.col)): c for c in data.cells}
    grouped_cols = any(g for g, _ in data.columns)
    head = ""
    if grouped_cols:
        spans: list[list[Any]] = []
        for group, _ in data.columns:
            if spans and spans[-1][0] == group:
                spans[-1][1] += 1
            else:
                spans.append([group, 1])
        head += ('<tr><th></th>' + "".join(f'<th class="cg" colspan="{n}">{escape(g)}</th>' for g, n in spans)
                 + "</tr>")
    head += "<tr><th></th>" + "".join(f'<th class="num">{escape(c)}</th>' for _, c in data.columns) + "</tr>"
    body, current = [], None
    for row in data.rows:
        if row[0] and row[0] != current:
            current = row[0]
            body.append(f'<tr class="rg"><th colspan="{len(data.columns) + 1}">{escape(current)}</th></tr>')
        cells = []
        for column in data.columns:
            cell = index.get((row, column))
            if cell is None or cell.value is None:
                cells.append('<td class="num">—</td>')
                continue
            mark = found.get((*row, *column))
            text = f"{cell.value:.{digits}f}"
            text = f"<b>{text}</b>" if mark == "best" else f"<u>{text}</u>" if mark == "second" else text
            where = (f'data-row-group="{escape(row[0])}" data-row="{escape(row[1])}" '
                     f'data-col-group="{escape(column[0])}" data-col="{escape(column[1])}"')
            marked = f' data-mark="{mark}"' if mark else ""
            cells.append(f'<td class="num" data-v="{cell.value!r}"{marked} {where}>{text}</td>')
        body.append(f"<tr><th>{escape(row[1])}</th>{''.join(cells)}</tr>")
    caption = f'<p class="meta">{escape(definition.caption)}</p>' if definition.caption else ""
    provenance = (f'<p class="meta">{"<br>".join(escape(line) for line in data.provenance)}</p>'
                  if data.provenance else "")
    return (f'<h3 id="table-{escape(definition.name)}">{escape(definition.title)}</h3>{caption}'
            f'<div class="scroll"><table class="paper" data-table="{escape(definition.name)}"><thead>{head}</thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>{provenance}")


# ----------------------------------------------------------------------------- search archives


def _archive(page: _Page, run: Path) -> None:
    # The run's objectives and values exactly as proxybench search report reads them (f_ar with the
    # archive's γ); these helpers are private there, and reused here rather than copied.
    from proxybench.search.archive import Archive
    from proxybench.search.loop import _gamma, _objective_matrix
    from proxybench.search.report import _load_run, _objectives, axis_label
    from proxybench.search.select import log_columns, non_dominated

    settings = _load_run(run)
    objs = _objectives(settings)
    names = [o.name for o in objs]
    rows = Archive(run, names).rows()
    ok = [r for r in rows if r["status"] == "ok"]
    gamma = _gamma(rows, objs)
    F = _objective_matrix(ok, objs, gamma if gamma is not None else 1.0) if ok else np.zeros((0, len(objs)))
    sign = np.array([-1.0 if o.higher_is_better else 1.0 for o in objs])
    raw = F * sign
    run_id = str(settings.get("run_id", run.name))
    figures = []
    pairs = list(combinations(range(len(objs)), 2))[:6]
    for i, j in pairs:
        xs, ys = raw[:, i], raw[:, j]
        logs = log_columns(raw[:, [i, j]]) if len(raw) else np.zeros(2, dtype=bool)
        x_axis = Axis.for_values(xs, WIDTH, *_log_kind(xs, logs[0]), reverse=objs[i].higher_is_better)
        y_axis = Axis.for_values(ys, HEIGHT, *_log_kind(ys, logs[1]), reverse=objs[j].higher_is_better)
        frame = Frame(x_axis, y_axis, axis_label(objs[i]), axis_label(objs[j]), title=f"{run_id}: {names[i]} and {names[j]}")
        px, py = frame.px(xs), frame.py(ys)
        front = non_dominated(F[:, [i, j]]) if len(F) else np.zeros(0, dtype=int)
        front = front[np.lexsort((F[front, j], F[front, i]))] if front.size else front
        step = "".join((f"M{px[k]:.1f} {py[k]:.1f}" if n == 0 else f"H{px[k]:.1f}V{py[k]:.1f}")
                       for n, k in enumerate(front))
        picks = [k for k, r in enumerate(ok) if r["selected"]]
        stars = "".join(f'<path class="pick" d="{_star(px[k], py[k])}"/><text class="picklabel" x="{px[k] + 7:.1f}" '
                        f'y="{py[k] - 5:.1f}">{escape(str(ok[k]["arch_label"]))}</text>' for k in picks)
        index = len(page.hover)
        page.hover.append({"x": [round(float(v), 1) for v in px], "y": [round(float(v), 1) for v in py],
                           "a": [page.arch_index(r["arch"]) for r in ok],
                           "u": [float(f"{v:.6g}") for v in xs], "w": [float(f"{v:.6g}") for v in ys],
                           "un": names[i], "wn": names[j],
                           "l": [f"candidate {r['candidate']} · iteration {r['iteration']}"
                                 + (f" · {r['arch_label']}" if r["selected"] else "") for r in ok]})
        svg = (frame.open() + points_group(px, py, ' style="stroke:#00798c;stroke-width:8;stroke-opacity:.7"') +
               f'<path class="front" d="{step}"/>{stars}<circle class="hl" r="5" visibility="hidden"/>' + frame.close())
        figures.append(f'<figure class="panel archive" data-h="{index}" data-run="{escape(run_id)}" '
                       f'data-front="{",".join(str(int(ok[k]["candidate"])) for k in front)}" '
                       f'data-picks="{",".join(str(int(ok[k]["candidate"])) for k in picks)}">{svg}'
                       f"<figcaption>{len(ok):,} candidates measured, {len(rows) - len(ok)} failed (not drawn); "
                       f"line: non-dominated front of these two objectives ({front.size} points); stars: picks"
                       "</figcaption></figure>")
    picked = [(k, r) for k, r in enumerate(ok) if r["selected"]]
    with_mce = "mce" not in names and any(r.get("mce") is not None for _, r in picked)
    head = ["pick", "candidate", "iteration", "architecture", *names, *(["mCE (%)"] if with_mce else [])]
    body = [[str(r["arch_label"]), (str(r["candidate"]), r["candidate"]), (str(r["iteration"]), r["iteration"]),
             f"{r['arch']}", *((fmt_number(float(v)), float(v)) for v in raw[k]),
             *([_num(r.get("mce"), 2)] if with_mce else [])]
            for k, r in picked]
    text = (f'<p class="meta">Search run <code>{escape(str(run))}</code>: space {escape(str(settings.get("space")))}, '
            f"objectives {escape(', '.join(names))} (values in the user's orientation; the axis of a higher-is-better "
            "objective is reversed, so better lies towards the lower left).</p>"
            f'<div class="grid">{"".join(figures)}</div><h3>Picks</h3>'
            + (_table(head, body, numeric=(1, 2, *range(4, len(head))), cls="sortable picks") if body
               else '<p class="meta">No picks yet.</p>')
            + "<h3>Surrogates per iteration</h3>" + _surrogate_table(Archive(run, names).iteration_stats()))
    page.add(f"search-{len([s for s in page.sections if s[0].startswith('search-')])}", f"Search {run_id}", text)


def _surrogate_table(stats: list[dict[str, Any]]) -> str:
    """The surrogate each iteration chose per expensive objective and its K-fold CV Kendall τ, as the
    search stored them (``RUN/iterations.parquet``, rebuilt from the archive parts' metadata)."""
    chosen = [st for st in stats if st.get("objective")]
    if not chosen:
        return ('<p class="meta">No surrogates: every objective of this run is cheap (measured on every candidate), '
                "so no iteration chose one.</p>")
    body, attrs = [], []
    for st in chosen:
        mean, sd = st.get("cv_tau_mean"), st.get("cv_tau_std")
        tau = "—" if mean is None else f"{mean:.3f} ± {sd:.3f}" if sd is not None else f"{mean:.3f}"
        body.append([(str(st["iteration"]), st["iteration"]), st["objective"], st.get("surrogate") or "—",
                     (tau, mean), (str(st.get("cv_folds") or "—"), st.get("cv_folds")),
                     _num(st.get("new_kendall")), (str(st.get("n_new") or 0), st.get("n_new"))])
        attrs.append(f'data-iteration="{st["iteration"]}" data-objective="{escape(str(st["objective"]))}"')
    return ('<p class="meta">Per iteration and expensive objective: the surrogate chosen by K-fold cross-validated '
            "Kendall τ over the archive so far (mean ± sd over the folds), and the τ of its predictions on the "
            "candidates it picked, once measured.</p>"
            + _table(["iteration", "objective", "surrogate", "CV τ mean ± sd", "folds", "τ on new picks", "new"],
                     body, numeric=(0, 3, 4, 5, 6), cls="sortable surrogates", attrs=attrs))


def _log_kind(values: np.ndarray, is_log: bool) -> tuple[str, float | None]:
    finite = values[np.isfinite(values)]
    if not is_log or finite.size == 0:
        return "linear", None
    if np.all(finite > 0):
        return "log", None
    return "symlog", float(np.abs(finite[finite != 0]).min())


def _star(x: float, y: float, r: float = 7.0) -> str:
    points = []
    for k in range(10):
        radius = r if k % 2 == 0 else r * 0.45
        angle = math.pi / 2 + k * math.pi / 5
        points.append(f"{x + radius * math.cos(angle):.1f} {y - radius * math.sin(angle):.1f}")
    return "M" + "L".join(points) + "Z"


# ----------------------------------------------------------------------------- the page


def _html(page: _Page, out: Path, title: str | None) -> str:
    import proxybench

    title = title or f"proxybench report: {out.name or out}"
    data = {"archs": list(page.archs), "h": page.hover,
            "truth": {k: {"a": v["a"], "w": v["w"], "wn": v["wn"], "y": _truth_pixels(v)} for k, v in page.truth.items()}}
    payload = json.dumps(data, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    nav = "".join(f'<a href="#{ident}">{escape(text)}</a>' for ident, text, _ in page.sections)
    sections = "".join(f'<section id="{ident}" data-section="{ident}"><h2>{escape(text)}</h2>{body}</section>'
                       for ident, text, body in page.sections)
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{escape(title)}</title>"
            f"<style>{CSS}</style></head><body>"
            f"<h1>{escape(title)}</h1>"
            f"<p class=\"meta\">Generated {generated} by proxybench {escape(proxybench.__version__)} "
            f"from <code>{escape(str(out))}</code>. One self-contained file: no network access is needed to view it.</p>"
            f"<nav>{nav}</nav>{sections}<div id=\"pb-tip\"></div>"
            f"<script type=\"application/json\" id=\"pb-data\">{payload}</script>"
            f"<script>{SCRIPT}</script></body></html>\n")


def _truth_pixels(truth: dict[str, Any]) -> list[float]:
    axis = truth["_axis"]
    return [round(float(HEIGHT - v), 1) for v in axis(np.array(truth["_values"]))]
