"""DuckDB over the Parquet files: one explicit connection with the views ``scores`` and ``truth``.

Every stage writes plain Parquet (DESIGN.md §1); this module is how the analysis side reads
it. ``open_views`` returns a fresh in-memory ``duckdb.connect()`` (never DuckDB's hidden
module-level default connection, so two callers never share state) with the views

* ``scores`` over ``OUT/scores/*.parquet`` (schema :data:`proxybench.store.SCORES_SCHEMA`),
* ``truth`` over ``OUT/truth/*.parquet`` (schema :data:`proxybench.truth.TRUTH_SCHEMA`),
* ``archive`` over search archives ``OUT/archive/*.parquet``, when asked for,

each read with ``union_by_name`` so files written by older versions, with fewer columns,
still read as one table (missing columns are NULL). The file lists are passed to DuckDB as
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

__all__ = ["open_views", "resolve_parquet_files"]

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
    found: list[Path] = []
    for raw in paths:
        text = os.fspath(raw)
        path = Path(text)
        if path.is_dir():
            folder = path / kind if (path / kind).is_dir() else path
            matches = sorted(folder.glob("*.parquet"))
            if not matches:
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
    if not unique:
        raise StoreError(f"no {kind} files given")
    return unique


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
        StoreError: No file found for a view, or a file DuckDB cannot read as Parquet.

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
            files = resolve_parquet_files(given, kind)
            try:
                relation = con.read_parquet([str(p) for p in files], union_by_name=True)
                stored = "pb_stored_scores" if kind == "scores" else kind
                relation.create_view(stored, replace=True)
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


def _scores_with_ensembles(con: duckdb.DuckDBPyConnection, stored: str, ensembles: Iterable[Any] | None) -> None:
    """The ``scores`` view: the stored rows, plus the rows of every ensemble computable from them."""
    from proxybench.ensembles import ENSEMBLES, add_ensembles

    chosen = list(ENSEMBLES.values()) if ensembles is None else list(ensembles)
    if chosen and add_ensembles(con, stored, chosen):
        con.execute(f"CREATE OR REPLACE VIEW scores AS SELECT * FROM {stored} UNION ALL BY NAME "
                    "SELECT * FROM pb_ensembles")
    else:
        con.execute(f"CREATE OR REPLACE VIEW scores AS SELECT * FROM {stored}")
