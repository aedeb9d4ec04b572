"""How well each proxy predicts the truth: ρ, τ-b, r, top-k overlap and bootstrap CIs, per group.

``correlate`` joins the ``scores`` and ``truth`` views (:mod:`proxybench.store.views`) on
``(space, arch, dataset)`` — a score computed on ``cifar10`` meets every ``cifar10`` truth
metric (``test_acc``, ``valid_acc``, ...; see :mod:`proxybench.truth.schema` for how NB201's
``cifar10-valid`` maps) — and computes every statistic in DuckDB SQL
(:mod:`proxybench.stats._sql`), for all groups at once. Only the optional bootstrap
intervals are computed in numpy (:mod:`proxybench.stats.bootstrap`).

**Groups.** One result row per :data:`GROUP_COLUMNS`: proxy, dataset, metric, the
orientation, the scoring settings (preset, weights, seed, batch size and ``settings_hash``,
which covers every other setting) and the truth's epochs, seed and source. Results under
different settings are therefore never pooled silently; ``by`` adds columns (e.g.
``run_id``) to keep apart runs with identical settings. An architecture that appears twice
in one group (the same file given twice, two runs with the same settings, two truth files
from one source) is an error, not a double-counted pair.

**Orientation.** Each score row carries ``higher_is_better`` (from the proxy registry).
Scores of lower-is-better proxies are negated before ranking, so every statistic reads
"positive = the proxy ranks better architectures higher"; the ``orientation`` column says
which proxies were negated. The truth is oriented the same way, by
:func:`proxybench.truth.schema.metric_higher_is_better`: accuracies (and robustness
accuracies) are used as they are; costs — ``latency:<device>``, ``energy:<device>`` — are
negated before ranking, so for them too "positive = the proxy ranks better (faster, cheaper)
architectures higher", and top-k is the share of the *fastest* k % that the proxy places in
its best k %. ``truth_orientation`` says which (``higher``, ``lower (negated)``, or
``none`` for a metric with no better direction, e.g. ``arithmetic_intensity:<device>``:
correlated as measured, top-k undefined — NaN, with a note). A proxy that favours big
networks (``params``, ``flops``) therefore shows a *negative* ρ against latency: it ranks
slow architectures higher. Negation is exact, so |ρ|, |τ| and |r| equal those of the raw
values; only the sign and the top-k change.

**Exclusions.** A pair is used only when the score row's status is ``ok`` and both numbers
are finite; the others are counted in ``excluded`` (never turned into numbers). Statistics
need n ≥ 3 and non-constant vectors; otherwise they are NaN and ``note`` says why.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np

from proxybench.errors import CorrelationError
from proxybench.stats._sql import KENDALL_SQL, RANKS_SQL, TOPK_SQL
from proxybench.stats.bootstrap import bootstrap_ci, group_rng
from proxybench.truth.schema import metric_higher_is_better

__all__ = [
    "CorrelationError",
    "CorrelationResult",
    "GROUP_COLUMNS",
    "BY_COLUMNS",
    "correlate",
    "correlate_vectors",
    "create_joined_pairs",
    "parse_top_k",
    "truth_orientation",
]

#: Columns that always define a group: (output name, SQL expression over ``s``cores/``t``ruth).
GROUP_COLUMNS: tuple[tuple[str, str], ...] = (
    ("proxy", "s.proxy"),
    ("dataset", "s.dataset"),
    ("metric", "t.metric"),
    ("space", "s.space"),
    ("higher_is_better", "s.higher_is_better"),
    ("preset", "s.preset"),
    ("weights", "s.weights"),
    ("seed", "s.seed"),
    ("batch_size", "s.batch_size"),
    ("settings_hash", "s.settings_hash"),
    ("truth_epochs", "t.epochs"),
    ("truth_seed", "t.seed"),
    ("truth_source", "t.source"),
)

#: Extra grouping columns ``by`` may name (whitelisted: they become SQL identifiers).
BY_COLUMNS: dict[str, str] = {
    "run_id": "s.run_id",
    "device": "s.device",
    "dtype": "s.dtype",
    "batch_id": "s.batch_id",
    "proxybench_version": "s.proxybench_version",
    "torch_version": "s.torch_version",
    "truth_arch_id_known": "(t.arch_id IS NOT NULL)",
}

_MIN_PAIRS = 3



@dataclass
class CorrelationResult:
    """The rows ``correlate`` computed, with what is needed to render them.

    Attributes:
        rows: One dict per group: the group columns, ``orientation``, ``n``, ``excluded``,
            ``spearman``, ``kendall``, ``pearson``, ``top<k>`` per k, ``spearman_lo/hi`` and
            ``kendall_lo/hi`` when bootstrapped, and ``note``.
        top_k: The k percentages, in the order asked.
        bootstrap: Resamples per group (0: no intervals).
        seed: Seed of the bootstrap.
        by: Extra grouping columns.
    """

    rows: list[dict[str, Any]]
    top_k: tuple[float, ...]
    bootstrap: int
    seed: int
    by: tuple[str, ...] = ()
    columns: list[str] = field(default_factory=list)


def parse_top_k(text: str | Iterable[float] | None) -> tuple[float, ...]:
    """``"1,5,10"`` → ``(1.0, 5.0, 10.0)``; every k must be a percentage in (0, 100].

    Raises:
        CorrelationError: Not numbers, or out of range.
    """
    if text is None:
        return ()
    parts = [p.strip() for p in text.split(",") if p.strip()] if isinstance(text, str) else list(text)
    values = []
    for part in parts:
        try:
            value = float(part)
        except (TypeError, ValueError):
            raise CorrelationError(f"top-k {part!r} is not a number; give percentages such as 1,5,10") from None
        if not 0 < value <= 100:
            raise CorrelationError(f"top-k {value:g} is not a percentage in (0, 100]")
        values.append(value)
    return tuple(dict.fromkeys(values))


def truth_orientation(metric: str) -> str:
    """How ``correlate`` orients truth ``metric``: ``higher``, ``lower (negated)`` or ``none``.

    Example:
        >>> truth_orientation("test_acc"), truth_orientation("latency:edgegpu")
        ('higher', 'lower (negated)')
    """
    better = metric_higher_is_better(metric)
    return "higher" if better else ("none" if better is None else "lower (negated)")


def topk_column(k: float) -> str:
    """Output column of top-k overlap ``k`` (``top1``, ``top5``, ``top0.5``)."""
    return f"top{k:g}"


def correlate(
    con: duckdb.DuckDBPyConnection,
    *,
    dataset: str | Sequence[str] | None = None,
    metric: str | Sequence[str] | None = None,
    proxies: str | Sequence[str] | None = None,
    by: Sequence[str] = (),
    top_k: str | Iterable[float] | None = (1, 5, 10),
    bootstrap: int = 0,
    seed: int = 0,
) -> CorrelationResult:
    """Correlate every proxy with every truth metric, per group (see the module docstring).

    Args:
        con: A connection with the views ``scores`` and ``truth`` (:func:`proxybench.store.views.open_views`).
        dataset: Only these datasets (default: all that have both scores and truth).
        metric: Only these truth metrics (default: all).
        proxies: Proxy names or shell wildcards, as a list or a comma-separated string
            (default: all in the scores).
        by: Extra grouping columns, from :data:`BY_COLUMNS`.
        top_k: Percentages k for the top-k overlap (``"1,5,10"`` or numbers); empty: none.
        bootstrap: Resamples for the 95 % intervals of ρ and τ (0: none).
        seed: Bootstrap seed.

    Returns:
        A :class:`CorrelationResult`, rows sorted by dataset, metric, proxy and settings.

    Raises:
        CorrelationError: An unknown ``by`` column, a filter that matches nothing, no
            architecture in common, or an architecture twice in a group.

    Example:
        >>> with open_views(scores=["results"], truth=["results"]) as con:  # doctest: +SKIP
        ...     result = correlate(con, dataset="cifar10", metric="test_acc", top_k="1,5,10")
        >>> print(render(result, "md"))  # doctest: +SKIP
    """
    ks = parse_top_k(top_k)
    _check_by(by)
    if bootstrap < 0:
        raise CorrelationError(f"bootstrap resamples must be >= 0, got {bootstrap}")
    by = tuple(dict.fromkeys(by))
    key_names = create_joined_pairs(con, "pb_joined_keys", dataset=dataset, metric=metric, proxies=proxies, by=by)
    try:
        return _compute(con, key_names, ks, bootstrap, seed, by)
    finally:
        for table in ("pb_joined_keys", "pb_groups", "pb_joined", "pb_pairs"):
            con.execute(f"DROP TABLE IF EXISTS {table}")  # names from this list only


def _check_by(by: Sequence[str]) -> None:
    unknown = [c for c in by if c not in BY_COLUMNS]
    if unknown:
        raise CorrelationError(f"cannot group by {', '.join(unknown)}; choose from {', '.join(BY_COLUMNS)}")


def create_joined_pairs(
    con: duckdb.DuckDBPyConnection,
    table: str,
    *,
    dataset: str | Sequence[str] | None = None,
    metric: str | Sequence[str] | None = None,
    proxies: str | Sequence[str] | None = None,
    by: Sequence[str] = (),
) -> list[str]:
    """Create the temporary table ``table``: scores joined to truth, one row per pair, with its group.

    The join and the grouping :func:`correlate` uses (and :mod:`proxybench.stats.plots`
    reuses, so a scatter never mixes settings). Columns: the group columns
    (:data:`GROUP_COLUMNS`, then ``by``), ``arch``, ``x`` (the score, negated when
    lower is better), ``y`` (the truth value, negated when the metric is a cost, see
    :func:`truth_orientation`), ``y_raw`` (the truth value as stored) and ``usable``
    (status ``ok`` and both finite).
    The caller drops the table.

    Args:
        table: A ``pb_`` name (letters and underscores; it is formatted into SQL).

    Returns:
        The group column names, in order.

    Raises:
        CorrelationError: An unknown ``by`` column, or a filter that matches nothing.
    """
    if not re.fullmatch(r"pb_[a-z_]+", table):
        raise ValueError(f"temporary table name {table!r} must match pb_[a-z_]+")
    _check_by(by)
    by = tuple(dict.fromkeys(by))
    datasets = _as_list(dataset)
    metrics = _as_list(metric)
    proxy_names = _match_proxies(con, _as_list(proxies, split=True))
    _check_present(con, "dataset", "scores", datasets)
    _check_present(con, "metric", "truth", metrics)

    keys = list(GROUP_COLUMNS) + [(name, BY_COLUMNS[name]) for name in by]
    # The truth's orientation comes from metric_higher_is_better (one definition), as a parameter.
    present_metrics = [row[0] for row in con.execute("SELECT DISTINCT metric FROM truth").fetchall()]
    negated = [m for m in present_metrics if truth_orientation(m) == "lower (negated)"]
    # Only names from GROUP_COLUMNS/BY_COLUMNS and the checked table name are formatted into the SQL;
    # values are parameters.
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {table} AS
        SELECT {", ".join(f"{expr} AS {name}" for name, expr in keys)}, s.arch,
               -- oriented score; + 0.0 turns a negated 0 (-0.0) into 0.0, so it ties with 0
               (CASE WHEN s.higher_is_better THEN s.score ELSE -s.score END) + 0.0 AS x,
               (CASE WHEN list_contains(?::VARCHAR[], t.metric) THEN -t.value ELSE t.value END) + 0.0 AS y,
               t.value + 0.0 AS y_raw,
               coalesce(s.status = 'ok' AND isfinite(s.score) AND isfinite(t.value), false) AS usable
        FROM scores s
        JOIN truth t ON s.space = t.space AND s.arch = t.arch AND s.dataset = t.dataset
        WHERE (? OR list_contains(?::VARCHAR[], s.dataset))
          AND (? OR list_contains(?::VARCHAR[], t.metric))
          AND list_contains(?::VARCHAR[], s.proxy)
        """,
        [negated, datasets is None, datasets or [], metrics is None, metrics or [], proxy_names],
    )
    return [name for name, _ in keys]


def _compute(
    con: duckdb.DuckDBPyConnection, key_names: list[str], ks: tuple[float, ...], bootstrap: int, seed: int,
    by: tuple[str, ...],
) -> CorrelationResult:
    names = ", ".join(key_names)
    # Number the groups from their distinct keys (a hash aggregate), then attach the number to the
    # pairs with a NULL-safe join: much cheaper than a dense_rank() sorting every pair by 13 keys.
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE pb_groups AS
        SELECT row_number() OVER (ORDER BY {names}) AS gid, *
        FROM (SELECT {names}, count(*) FILTER (WHERE usable) AS n_usable,
                     count(*) FILTER (WHERE NOT usable) AS excluded
              FROM pb_joined_keys GROUP BY {names})
        """
    )
    same = " AND ".join(f"k.{name} IS NOT DISTINCT FROM g.{name}" for name in key_names)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE pb_joined AS SELECT g.gid, k.arch, k.x, k.y, k.usable "
        f"FROM pb_joined_keys k JOIN pb_groups g ON {same}"
    )
    cursor = con.execute("SELECT * FROM pb_groups ORDER BY gid")
    columns = [d[0] for d in cursor.description]
    groups = {row[0]: dict(zip(columns, row)) for row in cursor.fetchall()}
    if not groups:
        raise CorrelationError(
            "the scores and the truth have no (space, architecture, dataset) in common; check --dataset/--metric, "
            "and that the truth covers the scored architectures"
        )
    duplicate = con.execute(
        "SELECT gid, arch, count(*) AS c FROM pb_joined GROUP BY gid, arch HAVING count(*) > 1 "
        "ORDER BY c DESC, gid, arch LIMIT 1"
    ).fetchone()
    if duplicate is not None:
        g = groups[duplicate[0]]
        raise CorrelationError(
            f"{duplicate[1]} appears {duplicate[2]} times for proxy {g['proxy']}, dataset {g['dataset']}, metric "
            f"{g['metric']} under one setting: pass each scores/truth file once, or add --by run_id to keep runs "
            "apart, or (two runs of one command into one OUT) remove the later copies with proxybench repair OUT"
        )
    con.execute("CREATE OR REPLACE TEMP TABLE pb_pairs AS SELECT gid, x, y FROM pb_joined WHERE usable")
    stats = _statistics(con, ks)

    rows = []
    for gid, group in groups.items():
        row: dict[str, Any] = {name: group[name] for name in key_names}
        row["orientation"] = "higher" if group["higher_is_better"] else "lower (negated)"
        row["truth_orientation"] = truth_orientation(group["metric"])
        unoriented = row["truth_orientation"] == "none"
        row["n"] = int(group["n_usable"])
        row["excluded"] = int(group["excluded"])
        found = stats.get(gid, {})
        note = _note(row["n"], found)
        for name in ("spearman", "kendall", "pearson"):
            value = found.get(name)
            row[name] = float(value) if value is not None and note is None else math.nan
        for k in ks:
            value = found.get(("top", k))
            defined = value is not None and row["n"] >= _MIN_PAIRS and not unoriented
            row[topk_column(k)] = float(value) if defined else math.nan
        if bootstrap:
            row.update(spearman_lo=math.nan, spearman_hi=math.nan, kendall_lo=math.nan, kendall_hi=math.nan)
        if unoriented and ks:
            note = "; ".join(filter(None, [note, f"{group['metric']} has no better direction: top-k undefined"]))
        row["note"] = note or ""
        row["_gid"] = gid
        row["_defined"] = math.isfinite(row["spearman"])
        rows.append(row)

    if bootstrap:
        _add_intervals(con, rows, key_names, bootstrap, seed)
    for row in rows:
        del row["_gid"], row["_defined"]
    rows.sort(key=lambda r: tuple(str(r[c]).lower() for c in ("dataset", "metric", "proxy"))
              + tuple(str(r[c]) for c in key_names[3:]))
    columns = (["proxy", "dataset", "metric", "orientation", "truth_orientation", "n", "excluded", "spearman",
                "kendall", "pearson"]
               + [topk_column(k) for k in ks]
               + (["spearman_lo", "spearman_hi", "kendall_lo", "kendall_hi"] if bootstrap else [])
               + [name for name in key_names if name not in ("proxy", "dataset", "metric", "higher_is_better")]
               + ["note"])
    return CorrelationResult(rows=rows, top_k=ks, bootstrap=bootstrap, seed=seed, by=by, columns=columns)


def _statistics(con: duckdb.DuckDBPyConnection, ks: tuple[float, ...]) -> dict[int, dict[Any, Any]]:
    """Run the SQL statistics over ``pb_pairs``; per gid a dict of named values."""
    stats: dict[int, dict[Any, Any]] = {}
    for gid, n, spearman, pearson, x_constant, y_constant in con.execute(RANKS_SQL).fetchall():
        stats[gid] = {"n": n, "spearman": _clamp(spearman), "pearson": _clamp(pearson), "x_constant": x_constant,
                      "y_constant": y_constant}
    for gid, kendall, _discordant in con.execute(KENDALL_SQL).fetchall():
        stats[gid]["kendall"] = _clamp(kendall)
    if ks:
        for gid, k, _m, overlap in con.execute(TOPK_SQL, [list(ks)]).fetchall():
            stats[gid][("top", k)] = overlap
    return stats


def _clamp(value: float | None) -> float | None:
    """Clip rounding excursions beyond ±1 (DuckDB's ``corr`` can return 1.0000000000000002), as scipy does."""
    if value is None or math.isnan(value):
        return value
    return min(1.0, max(-1.0, value))


def _note(n: int, found: dict[Any, Any]) -> str | None:
    """Why the correlations are NaN, or ``None`` when they are defined."""
    if n < _MIN_PAIRS:
        return f"only {n} usable pair(s); correlations need at least {_MIN_PAIRS}"
    if found.get("x_constant"):
        return "the proxy's scores are all equal"
    if found.get("y_constant"):
        return "the true values are all equal"
    return None


def _add_intervals(
    con: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]], key_names: list[str], resamples: int, seed: int
) -> None:
    arrays = con.execute("SELECT gid, x, y FROM pb_pairs ORDER BY gid").fetchnumpy()
    gids, xs, ys = (np.asarray(arrays[c]) for c in ("gid", "x", "y"))
    bounds = np.searchsorted(gids, [row["_gid"] for row in rows]), np.searchsorted(
        gids, [row["_gid"] for row in rows], side="right")
    for row, lo, hi in zip(rows, *bounds):
        if not row["_defined"]:
            continue
        key = tuple(row[name] for name in key_names)
        ci = bootstrap_ci(xs[lo:hi], ys[lo:hi], resamples, group_rng(seed, key))
        row["spearman_lo"], row["spearman_hi"] = ci["spearman"]
        row["kendall_lo"], row["kendall_hi"] = ci["kendall"]


def correlate_vectors(
    x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray, top_k: Iterable[float] = ()
) -> dict[str, float]:
    """The SQL statistics of one pair of vectors (no orientation, no exclusions).

    The same queries as :func:`correlate`, on a fresh connection; meant for checking the
    SQL against scipy and for quick use from Python.

    Returns:
        ``{"n", "spearman", "kendall", "pearson", "top<k>"...}``; NaN where undefined.
    """
    import pyarrow as pa

    x_arr = np.asarray(x, dtype=np.float64)
    y_arr = np.asarray(y, dtype=np.float64)
    if x_arr.shape != y_arr.shape or x_arr.ndim != 1:
        raise CorrelationError(f"x and y must be 1-D and of equal length, got {x_arr.shape} and {y_arr.shape}")
    if not (np.isfinite(x_arr).all() and np.isfinite(y_arr).all()):
        raise CorrelationError("x and y must be finite; drop the non-finite pairs first (correlate() counts them)")
    ks = parse_top_k(list(top_k))
    with duckdb.connect() as con:
        con.register("pb_input", pa.table({"x": x_arr, "y": y_arr}))
        con.execute("CREATE TEMP TABLE pb_pairs AS SELECT 1 AS gid, x + 0.0 AS x, y + 0.0 AS y FROM pb_input")
        found = _statistics(con, ks).get(1, {}) if len(x_arr) else {}
    note = _note(len(x_arr), found)
    result = {"n": float(len(x_arr))}
    for name in ("spearman", "kendall", "pearson"):
        result[name] = math.nan if note is not None or found.get(name) is None else float(found[name])
    for k in ks:
        value = found.get(("top", k))
        result[topk_column(k)] = math.nan if value is None or len(x_arr) < _MIN_PAIRS else float(value)
    return result


def _as_list(value: str | Sequence[str] | None, split: bool = False) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",")] if split else [value]
    else:
        items = [str(v).strip() for v in value]
    items = [v for v in items if v]
    return items or None


def _match_proxies(con: duckdb.DuckDBPyConnection, patterns: list[str] | None) -> list[str]:
    present = [row[0] for row in con.execute("SELECT DISTINCT proxy FROM scores ORDER BY proxy").fetchall()]
    if patterns is None or patterns == ["all"]:
        return present
    chosen: list[str] = []
    for pattern in patterns:
        matches = fnmatch.filter(present, pattern)
        if not matches:
            raise CorrelationError(
                f"no proxy in the scores matches '{pattern}'; present: {', '.join(present) or 'none'}"
            )
        chosen.extend(m for m in matches if m not in chosen)
    return chosen


def _check_present(con: duckdb.DuckDBPyConnection, column: str, view: str, wanted: list[str] | None) -> None:
    if wanted is None:
        return
    # column and view are literals from correlate(), never user input
    present = [row[0] for row in con.execute(f"SELECT DISTINCT {column} FROM {view} ORDER BY 1").fetchall()]
    missing = [w for w in wanted if w not in present]
    if missing:
        raise CorrelationError(
            f"no {view} rows with {column} {', '.join(repr(m) for m in missing)}; present: "
            f"{', '.join(map(str, present)) or 'none'}"
        )
