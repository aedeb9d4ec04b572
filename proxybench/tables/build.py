"""Compute a benchmark table: views over the Parquet files, correlations, then the definition's query.

Order of work for one table (:func:`build_table`):

1. :func:`proxybench.store.views.open_views` opens the views the definition ``needs``
   (``scores``, ``truth``, ``archive``) over the files given.
2. The ``@derived-truth`` query, if any, adds its rows to ``truth`` (e.g. the mean accuracy
   over the weather corruptions as metric ``cc:weather``).
3. For the truth metrics the definition names (``metrics``), :func:`proxybench.stats.correlate`
   computes every proxy × dataset × metric × setting group into the table ``correlations``
   (the columns of :data:`CORRELATION_SCHEMA`): the same numbers ``proxybench correlate``
   prints, so a table never disagrees with it.
4. The definition's query runs over all of that and returns long ``(row, col, value, ...)``
   rows, which :class:`TableData` holds in display order for :mod:`proxybench.tables.layout`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa

from proxybench.errors import ProxybenchError
from proxybench.stats.correlation import correlate
from proxybench.store.views import open_views
from proxybench.tables.definition import TableDefinition
from proxybench.truth.schema import TRUTH_COLUMNS

__all__ = ["TableBuildError", "TableData", "Cell", "CORRELATION_SCHEMA", "TOP_K", "build_table"]

PathLike = str | os.PathLike[str]

#: Top-k overlaps (percent) the ``correlations`` table carries (columns ``top1``, ``top5``, ``top10``).
TOP_K = (1.0, 5.0, 10.0)

#: Columns of the ``correlations`` table a definition's query can read.
CORRELATION_SCHEMA = pa.schema(
    [
        ("proxy", pa.string()), ("dataset", pa.string()), ("metric", pa.string()), ("space", pa.string()),
        ("higher_is_better", pa.bool_()), ("orientation", pa.string()),
        ("truth_orientation", pa.string()),
        ("preset", pa.string()), ("weights", pa.string()), ("seed", pa.int64()), ("batch_size", pa.int64()),
        ("settings_hash", pa.string()), ("truth_epochs", pa.int64()), ("truth_seed", pa.string()),
        ("truth_source", pa.string()), ("n", pa.int64()), ("excluded", pa.int64()),
        ("spearman", pa.float64()), ("kendall", pa.float64()), ("pearson", pa.float64()),
        ("top1", pa.float64()), ("top5", pa.float64()), ("top10", pa.float64()),
        ("spearman_lo", pa.float64()), ("spearman_hi", pa.float64()),
        ("kendall_lo", pa.float64()), ("kendall_hi", pa.float64()),
        ("note", pa.string()),
        # readable labels, so queries need not rebuild them
        ("scores_label", pa.string()), ("truth_label", pa.string()),
    ]
)

_REQUIRED = ("row", "col", "value")
_OPTIONAL = ("row_group", "col_group", "better")


class TableBuildError(ProxybenchError):
    """A table cannot be built from the files given (the message says what is missing)."""


@dataclass(frozen=True)
class Cell:
    """One number of a table and where it goes."""

    row_group: str
    row: str
    col_group: str
    col: str
    value: float | None
    better: str | None


@dataclass
class TableData:
    """A computed table, ready to render.

    Attributes:
        definition: What was computed.
        cells: One per (row_group, row, col_group, col), in query order.
        rows: ``(row_group, row)`` in display order.
        columns: ``(col_group, col)`` in display order.
        provenance: Lines naming the scores and truth the numbers come from.
    """

    definition: TableDefinition
    cells: list[Cell]
    rows: list[tuple[str, str]]
    columns: list[tuple[str, str]]
    provenance: list[str] = field(default_factory=list)

    def value(self, row: tuple[str, str], column: tuple[str, str]) -> Cell | None:
        """The cell at ``row`` × ``column``, or None when the query gave none."""
        return self._index().get((row, column))

    def _index(self) -> dict[tuple[tuple[str, str], tuple[str, str]], Cell]:
        return {((c.row_group, c.row), (c.col_group, c.col)): c for c in self.cells}


def build_table(
    definition: TableDefinition,
    scores: Sequence[PathLike] | None = None,
    truth: Sequence[PathLike] | None = None,
    archive: Sequence[PathLike] | None = None,
    bootstrap: int = 0,
    seed: int = 0,
    datasets: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    predictions: Sequence[PathLike] | None = None,
) -> TableData:
    """Compute ``definition`` over the given Parquet files (see the module docstring).

    Args:
        definition: From :func:`proxybench.tables.get_table`.
        scores, truth, archive: Files, globs or results directories for each view; every
            view the definition needs must be given.
        predictions: Where ``proxybench combine`` wrote ``predictor_metrics`` (the
            ``predictions`` need; the view is called ``predictor_metrics``).
        bootstrap: Resamples for the 95 % intervals in ``correlations`` (0: none; the
            ``*_lo``/``*_hi`` columns are then NULL).
        seed: Bootstrap seed.
        datasets: Only these datasets in ``correlations`` (default: all).
        metrics: Only these of the definition's truth metrics in ``correlations`` (default: all).

    Raises:
        TableBuildError: A needed view was not given, the query fails or returns the wrong
            columns or two values for one cell.
        StoreError, CorrelationError: Unreadable files; scores and truth without a common
            architecture.
    """
    given = {"scores": scores, "truth": truth, "archive": archive, "predictions": predictions}
    missing = [view for view in definition.needs if not given[view]]
    if missing:
        flags = " and ".join(f"--{view}" for view in missing)
        raise TableBuildError(f"table {definition.name} needs {flags} (the {', '.join(missing)} Parquet files)")
    wanted = {view: given[view] if view in definition.needs else None for view in given}
    wanted["predictor_metrics"] = wanted.pop("predictions")
    with open_views(**wanted) as con:
        if definition.derived_truth is not None:
            _add_derived_truth(con, definition)
        provenance = (_add_correlations(con, definition, bootstrap, seed, datasets, metrics)
                      if definition.metrics else [])
        try:
            cursor = con.execute(definition.query)
        except duckdb.Error as exc:
            first = str(exc).strip().splitlines()[0]
            raise TableBuildError(f"the query of table {definition.name} ({definition.path}) failed: {first}") from None
        names = [d[0] for d in cursor.description]
        records = cursor.fetchall()
    return _collect(definition, names, records, provenance)


def _add_derived_truth(con: duckdb.DuckDBPyConnection, definition: TableDefinition) -> None:
    """Materialise ``truth`` plus the derived rows and point the ``truth`` view at the union."""
    try:
        con.execute(f"CREATE TEMP TABLE pb_derived AS {definition.derived_truth}")
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0]
        raise TableBuildError(f"the @derived-truth query of table {definition.name} failed: {first}") from None
    columns = [row[0] for row in con.execute("DESCRIBE pb_derived").fetchall()]
    stray = [c for c in columns if c not in TRUTH_COLUMNS]
    if stray:
        raise TableBuildError(
            f"the @derived-truth query of table {definition.name} returns {', '.join(stray)}, which are not truth "
            f"columns ({', '.join(TRUTH_COLUMNS)})")
    con.execute("CREATE TEMP TABLE pb_truth_all AS SELECT * FROM truth UNION ALL BY NAME SELECT * FROM pb_derived")
    con.execute("CREATE OR REPLACE TEMP VIEW truth AS SELECT * FROM pb_truth_all")


def _add_correlations(
    con: duckdb.DuckDBPyConnection, definition: TableDefinition, bootstrap: int, seed: int,
    datasets: Sequence[str] | None, only_metrics: Sequence[str] | None,
) -> list[str]:
    """Create the ``correlations`` table for the definition's metrics; return provenance lines."""
    present = [row[0] for row in con.execute("SELECT DISTINCT metric FROM truth ORDER BY metric").fetchall()]
    metrics = [m for m in present if definition.wants_metric(m)]
    if only_metrics:
        unknown = [m for m in only_metrics if not definition.wants_metric(m)]
        if unknown:
            raise TableBuildError(
                f"table {definition.name} does not show metric {', '.join(unknown)}; it shows "
                f"{', '.join(definition.metrics)}")
        metrics = [m for m in metrics if m in only_metrics]
    rows: list[dict[str, Any]] = []
    if metrics:
        result = correlate(con, metric=metrics, dataset=list(datasets) if datasets else None, top_k=TOP_K,
                           bootstrap=bootstrap, seed=seed)
        for row in result.rows:
            row = dict(row)
            row["scores_label"] = scores_label(row)
            row["truth_label"] = truth_label(row)
            rows.append(row)
    table = pa.Table.from_pylist([{name: _finite_or_none(row.get(name)) for name in CORRELATION_SCHEMA.names}
                                  for row in rows], schema=CORRELATION_SCHEMA)
    con.register("pb_correlations_arrow", table)
    con.execute("CREATE TEMP TABLE correlations AS SELECT * FROM pb_correlations_arrow")
    con.unregister("pb_correlations_arrow")
    lines = []
    for label in sorted({r["scores_label"] for r in rows}):
        lines.append(f"Scores: {label}.")
    for label in sorted({r["truth_label"] for r in rows}):
        lines.append(f"Truth: {label}.")
    if bootstrap:
        lines.append(f"Intervals: 95% bootstrap, {bootstrap} resamples (seed {seed}).")
    return lines


def scores_label(row: dict[str, Any]) -> str:
    """A readable name of the scoring setting of a correlation row (preset, weights, seed, batch)."""
    if str(row.get("preset", "")).endswith("-published"):
        return f"{row['preset']} (published scores)"
    return f"{row['preset']}, {row['weights']} weights, seed {row['seed']}, batch {row['batch_size']}"


def truth_label(row: dict[str, Any]) -> str:
    """A readable name of the truth source of a correlation row."""
    epochs = "" if row.get("truth_epochs") is None else f", {row['truth_epochs']} epochs"
    return f"{row['truth_source']}{epochs}, seed {row['truth_seed']}"


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _collect(
    definition: TableDefinition, names: list[str], records: list[tuple[Any, ...]], provenance: list[str]
) -> TableData:
    where = f"the query of table {definition.name} ({definition.path})"
    absent = [c for c in _REQUIRED if c not in names]
    if absent:
        raise TableBuildError(f"{where} returns no {', '.join(absent)} column; it must return row, col, value")
    stray = [c for c in names if c not in _REQUIRED + _OPTIONAL]
    if stray:
        raise TableBuildError(
            f"{where} returns {', '.join(stray)}, which the layout does not use; columns: "
            f"{', '.join(_REQUIRED + _OPTIONAL)}")
    position = {name: names.index(name) for name in names}

    def text(record: tuple[Any, ...], name: str) -> str:
        if name not in position or record[position[name]] is None:
            return ""
        return str(record[position[name]])

    cells: list[Cell] = []
    seen: set[tuple[str, str, str, str]] = set()
    rows: dict[tuple[str, str], None] = {}
    columns: dict[tuple[str, str], None] = {}
    for record in records:
        better = text(record, "better") or None
        if better not in (None, "max", "min"):
            raise TableBuildError(f"{where}: better must be 'max', 'min' or NULL, got {better!r}")
        raw = record[position["value"]]
        try:
            value = None if raw is None else float(raw)
        except (TypeError, ValueError):
            raise TableBuildError(f"{where}: value {raw!r} is not a number") from None
        if value is not None and not math.isfinite(value):
            value = None
        cell = Cell(text(record, "row_group"), text(record, "row"), text(record, "col_group"), text(record, "col"),
                    value, better)
        key = (cell.row_group, cell.row, cell.col_group, cell.col)
        if key in seen:
            raise TableBuildError(
                f"{where} gives two values for row {cell.row!r}, column {cell.col_group + ' ' if cell.col_group else ''}"
                f"{cell.col!r}: the inputs hold two settings or truth sources for one cell; pass fewer files")
        seen.add(key)
        cells.append(cell)
        rows.setdefault((cell.row_group, cell.row), None)
        columns.setdefault((cell.col_group, cell.col), None)
    if not cells:
        raise TableBuildError(
            f"table {definition.name} found no rows in the files given; {definition.caption or definition.title}")
    return TableData(definition=definition, cells=cells, rows=list(rows), columns=list(columns),
                     provenance=provenance)
