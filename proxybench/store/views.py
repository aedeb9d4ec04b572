"""DuckDB over the Parquet files: one explicit connection with the views ``scores`` and ``truth``.

Every stage writes plain Parquet (DESIGN.md §1); this module is how the analysis side reads
it. ``open_views`` returns a fresh in-memory ``duckdb.connect()`` (never DuckDB's hidden
module-level default connection, so two callers never share state) with the views

* ``scores`` over ``OUT/scores/*.parquet`` (schema :data:`proxybench.store.SCORES_SCHEMA`)
  plus the rows still in that folder's journals (a live run's, or a killed one's not yet
  rolled into a part), each row once,
* ``truth`` over ``OUT/truth/*.parquet`` (schema :data:`proxybench.truth.TRUTH_SCHEMA`),
* ``archive`` over search archives ``OUT/archive/*.parquet``, when asked for,

each read with ``union_by_name`` so files written by older versions, with fewer *optional*
columns, still read as one table (those columns are NULL). Every file's schema is checked
first (its footer only): a file that lacks a required column, or has one of another type,
is a one-line :class:`~proxybench.errors.StoreError` naming the file and the fix, never a
silent drop of its rows (a part without ``space`` would not join) or a traceback. The file lists are passed to DuckDB as
values (the Python relation API), never formatted into SQL text.

Paths may be Parquet files, glob patterns, results directories (their ``scores/`` or
``truth/`` subfolder is used) or the ``scores``/``truth`` folders themselves.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Sequence
from typing import Any
from pathlib import Path

import duckdb

from proxybench.errors import StoreError

__all__ = ["check_view_files", "open_views", "resolve_parquet_files", "resolve_score_sources"]

PathLike = str | os.PathLike[str]


def resolve_parquet_files(paths: Iterable[PathLike], kind: str) -> list[Path]:
    """The Parquet files that ``paths`` name, deduplicated, in a stable order.

    Args:
        paths: Files, glob patterns, results directories (``<dir>/<kind>/*.parquet``) or
            folders of Parquet files (``<dir>/*.parquet``).
        kind: ``scores`` or ``truth``: the subfolder looked for in a results directory and
            the word used in messages.

    Raises:
        StoreError: A path matches nothing, or nothing at all was given.
    """
    return _resolve(paths, kind, journals=False)[0]


def resolve_score_sources(paths: Iterable[PathLike]) -> tuple[list[Path], list[dict[str, Any]]]:
    """The scores Parquet files ``paths`` name and the rows of the journals in the folders among them.

    A folder (a results directory or its ``scores/``) contributes its parts *and* the rows
    its writers have journaled but not yet rolled into a part (a live run, or one killed
    before its journal became a part), each row once (:func:`~proxybench.store.scores.read_directory`),
    so ``correlate`` and ``tables`` see what ``proxybench status`` counts.

    Raises:
        StoreError: A path matches nothing, or nothing at all was given.
    """
    return _resolve(paths, "scores", journals=True)


def _resolve(paths: Iterable[PathLike], kind: str, journals: bool) -> tuple[list[Path], list[dict[str, Any]]]:
    from proxybench.store.scores import read_directory

    found: list[Path] = []
    rows: list[dict[str, Any]] = []
    folders: set[Path] = set()
    for raw in paths:
        text = os.fspath(raw)
        path = Path(text)
        if path.is_dir():
            folder = path / kind if (path / kind).is_dir() else path
            if journals:
                if folder.resolve() in folders:  # the same folder twice: its journals once
                    continue
                folders.add(folder.resolve())
                matches, journaled = read_directory(folder)
                rows.extend(journaled)
            else:
                matches, journaled = sorted(folder.glob("*.parquet")), []
            if not matches and not journaled:
                hint = {"scores": "proxybench score --out", "truth": "proxybench truth import --out",
                        "predictor_metrics": "proxybench combine --out"}.get(kind, "proxybench search --out")
                raise StoreError(f"no {kind} Parquet files in {folder}; create them with {hint} {path}")
        elif path.is_file():
            matches = [path]
        elif glob.has_magic(text):
            matches = sorted(Path(p) for p in glob.glob(text) if p.endswith(".parquet"))
            if not matches:
                raise StoreError(f"{text!r} matches no Parquet file")
        else:
            raise StoreError(f"{kind} path {text} does not exist")
        found.extend(matches)
    unique = list(dict.fromkeys(p.resolve() for p in found))
    if not unique and not rows:
        raise StoreError(f"no {kind} files given")
    return unique, rows


def check_view_files(files: Sequence[Path], kind: str) -> None:
    """Every file has the columns of its view (:func:`~proxybench.store.schema.check_parquet_schema`)."""
    from proxybench.store.schema import REQUIRED_SCORE_COLUMNS, SCORES_SCHEMA, check_parquet_schema
    from proxybench.truth.schema import TRUTH_SCHEMA

    schema, required, fix = {
        "scores": (SCORES_SCHEMA, REQUIRED_SCORE_COLUMNS,
                   "move it out of the scores folder or leave it out of --scores (proxybench score writes "
                   "scores files)"),
        "truth": (TRUTH_SCHEMA, _REQUIRED_TRUTH_COLUMNS,
                  "move it out of the truth folder or leave it out of --truth (proxybench truth import writes "
                  "truth files from benchmark sources)"),
    }.get(kind, (None, (), ""))
    if schema is None:  # archives: their columns depend on the run's objectives
        return
    _check_not_swapped(files, kind)
    for path in files:
        check_parquet_schema(path, schema, kind, fix, required=required,
                             corrupt=f"cannot read the {kind} files ({len(files)} given): corrupt Parquet file")


_REQUIRED_TRUTH_COLUMNS = ("space", "arch", "dataset", "metric", "value")


def _has_columns(path: Path, kind: str) -> bool:
    """True when the footer of ``path`` has the required columns of a ``kind`` file (False when unreadable)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from proxybench.store.schema import REQUIRED_SCORE_COLUMNS

    required = REQUIRED_SCORE_COLUMNS if kind == "scores" else _REQUIRED_TRUTH_COLUMNS
    try:
        names = set(pq.read_schema(path).names)
    except (pa.ArrowInvalid, OSError):
        return False
    return all(name in names for name in required)


def _check_not_swapped(files: Sequence[Path], kind: str) -> None:
    """Raise when every file given as ``kind`` is a file of the other kind: --scores and --truth swapped.

    One stray file of the other kind among good ones is not a swap; the per-file check names it.
    """
    if kind not in ("scores", "truth") or not files:
        return
    other = "truth" if kind == "scores" else "scores"
    if any(_has_columns(p, kind) for p in files) or not all(_has_columns(p, other) for p in files):
        return
    writer = "proxybench truth import" if other == "truth" else "proxybench score"
    where = files[0].parent if len(files) > 1 else files[0]
    raise StoreError(f"the files given as --{kind} ({where}) look like {other} files (written by {writer}), not "
                     f"{kind} files; did you swap --scores and --truth? Pass the scores to --scores and the truth "
                     "to --truth")


def open_views(
    scores: Sequence[PathLike] | None = None,
    truth: Sequence[PathLike] | None = None,
    out: PathLike | None = None,
    archive: Sequence[PathLike] | None = None,
    ensembles: Iterable[Any] | None = None,
    predictor_metrics: Sequence[PathLike] | None = None,
) -> duckdb.DuckDBPyConnection:
    """A new DuckDB connection with the views ``scores`` and ``truth``.

    Args:
        scores: Where the score files are (see :func:`resolve_parquet_files`).
        truth: Where the truth files are.
        out: A results directory, used for whichever of ``scores``/``truth`` is not given.
        archive: Where search archives are (``archive`` view; only opened when given).
        predictor_metrics: Where ``proxybench combine`` wrote its per-experiment metrics
            (``predictor_metrics`` view; only opened when given).
        ensembles: Rank ensembles (:class:`proxybench.ensembles.Ensemble`) to add to the
            ``scores`` view, recomputed from the stored components over the architectures read
            (:mod:`proxybench.ensembles`); default: every built-in ensemble whose components are
            stored. ``()`` gives the stored rows only (``proxybench status`` does).

    Returns:
        The connection; the caller closes it (``with open_views(...) as con:``).

    Raises:
        StoreError: No file found for a view, a file that is not Parquet, or one without the
            columns of its view (one line naming the file and the fix).

    Example:
        >>> with open_views(out="results") as con:  # doctest: +SKIP
        ...     con.execute("SELECT proxy, count(*) FROM scores WHERE dataset = ? GROUP BY 1", ["cifar10"]).fetchall()
    """
    wanted = {"scores": scores, "truth": truth}
    if out is not None:
        wanted = {kind: (given if given is not None else [out]) for kind, given in wanted.items()}
    if archive is not None:
        wanted["archive"] = archive
    if predictor_metrics is not None:
        wanted["predictor_metrics"] = predictor_metrics
    con = duckdb.connect()
    try:
        for kind, given in wanted.items():
            if given is None:
                continue
            files, journaled = _resolve(given, kind, journals=kind == "scores")
            check_view_files(files, kind)
            stored = "pb_stored_scores" if kind == "scores" else kind
            try:
                if files:
                    relation = con.read_parquet([str(p) for p in files], union_by_name=True)
                    relation.create_view("pb_parts" if journaled else stored, replace=True)
                if journaled:
                    _register_journal_rows(con, journaled, stored, with_parts=bool(files))
                con.execute(f"SELECT * FROM {stored} LIMIT 0")  # one of four literals above
                if kind == "scores":
                    _scores_with_ensembles(con, stored, ensembles)
            except duckdb.Error as exc:
                first = str(exc).strip().splitlines()[0]
                raise StoreError(f"cannot read the {kind} files ({len(files)} given): {first}") from None
    except BaseException:
        con.close()
        raise
    return con


def _register_journal_rows(con: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]], stored: str,
                           with_parts: bool) -> None:
    """View ``stored`` = the parts (view ``pb_parts``) and the journaled rows, as one table."""
    from proxybench.store.scores import _rows_to_table

    con.register("pb_journal_rows", _rows_to_table(rows, None))
    source = "SELECT * FROM pb_parts UNION ALL BY NAME SELECT * FROM pb_journal_rows" if with_parts \
        else "SELECT * FROM pb_journal_rows"
    con.execute(f"CREATE OR REPLACE VIEW {stored} AS {source}")  # literals only


def _scores_with_ensembles(con: duckdb.DuckDBPyConnection, stored: str, ensembles: Iterable[Any] | None) -> None:
    """The ``scores`` view: the stored rows, plus the rows of every ensemble computable from them."""
    from proxybench.ensembles import ENSEMBLES, add_ensembles

    chosen = list(ENSEMBLES.values()) if ensembles is None else list(ensembles)
    if chosen and add_ensembles(con, stored, chosen):
        con.execute(f"CREATE OR REPLACE VIEW scores AS SELECT * FROM {stored} UNION ALL BY NAME "
                    "SELECT * FROM pb_ensembles")
    else:
        con.execute(f"CREATE OR REPLACE VIEW scores AS SELECT * FROM {stored}")
