"""What a results directory holds: its runs and, per proxy, what is scored.

A whole-space scoring run takes hours and may be split over workers, shards or a Ray
cluster, killed and resumed. ``proxybench status OUT`` answers the questions that follow
without any SQL: did every run finish (or which ones were killed), how many architectures
and isomorphism classes does each proxy cover, how many rows are ``nonfinite`` or
``error``, and how much compute did they take. It reads the finished Parquet parts *and*
the journals of live or killed writers, so the picture is complete while a run is going.

A run's state comes from its ``runs/<run>.json`` record and its lock
(:func:`proxybench.store.scores.run_is_live`): ``finished``; ``running`` while its writer
holds the lock; ``killed`` when the record still says running but nobody holds the lock (a
SIGKILL, a lost node, an out-of-memory kill: the journal rows survive and the next run in
the directory turns them into a part); ``interrupted (...)`` when the writer saw an
exception and closed; ``unclosed (no run lock)`` for a record left by a version that did
not lock its runs yet.

Duplicates (a resume key stored more than once, e.g. by two runs of one command before
runs claimed classes) are counted per proxy (:attr:`ResultsStatus.duplicates`) and named
with the fix, ``proxybench repair OUT``; the coverage counts each key once (its earliest
row, the one repair keeps). Parts are read through :func:`~proxybench.store.views.open_views`,
so a foreign or incomplete Parquet file is the same one-line error as in ``correlate``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from proxybench.errors import StoreError
from proxybench.store.schema import RESUME_KEY, SCORES_SCHEMA
from proxybench.store.views import open_views
from proxybench.store.scores import _rows_to_table, journal_rows, read_directory, run_is_live, scores_dir

__all__ = ["RunState", "ProxyCoverage", "ResultsStatus", "results_status"]


@dataclass(frozen=True)
class RunState:
    """One scoring run (one writer: a worker, a shard or a Ray task) of a results directory."""

    run_id: str
    state: str  # finished | running | killed | interrupted (<exception>) | unclosed (no run lock)
    started_at: str
    updated_at: str
    archs_requested: int | None
    rows: int  # rows of this run now in the directory (parts and journals)
    #: For a killed or interrupted run whose every requested (architecture, proxy) is stored now: the run that
    #: stored the last of them (its own id when it had done everything before it died). None
    #: otherwise, and for runs recorded before runs listed their architectures (runs/<run>.archs).
    completed_by: str | None = None

    @property
    def label(self) -> str:
        """The state as ``str(status)`` prints it."""
        if self.completed_by is None:
            return self.state
        if self.completed_by == self.run_id:
            return f"{self.state} (its work was complete)"
        return f"{self.state} (its work was completed by run {self.completed_by})"


@dataclass(frozen=True)
class ProxyCoverage:
    """What is stored for one proxy under one configuration (space, dataset, preset, weights, seed)."""

    space: str
    dataset: str
    preset: str
    weights: str
    seed: int
    proxy: str
    archs: int  # distinct architecture strings with a row
    classes: int  # distinct isomorphism classes (arch_uid)
    computed: int  # rows computed on their own architecture (shared_from IS NULL)
    ok: int
    nonfinite: int
    error: int
    compute_seconds: float  # sum of ``seconds`` over computed rows (a shared pass counts for its first proxy)
    space_size: int | None  # architectures in the space, when it can be enumerated
    #: Architectures that runs of this configuration and proxy were asked for (the union of their
    #: ``runs/<run>.archs``) and how many of them are scored; None when no run recorded its list.
    requested: int | None = None
    requested_scored: int | None = None


@dataclass
class ResultsStatus:
    """Runs and per-proxy coverage of one results directory; ``str()`` renders it for a terminal."""

    out: Path
    runs: list[RunState] = field(default_factory=list)
    coverage: list[ProxyCoverage] = field(default_factory=list)
    journal_rows: int = 0  # rows not yet in a Parquet part (live writers' or killed runs')
    #: Per proxy, rows stored more than once under one resume key (the extra copies), e.g.
    #: from two runs of one command into one OUT before runs claimed classes; the coverage
    #: counts each key once. ``proxybench repair OUT`` removes them.
    duplicates: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "runs": [{**vars(r), "label": r.label} for r in self.runs],
            "coverage": [vars(c) for c in self.coverage],
            "journal_rows": self.journal_rows,
            "duplicates": dict(self.duplicates),
        }

    def __str__(self) -> str:
        lines = [f"results directory {self.out}"]
        states: dict[str, int] = {}
        for run in self.runs:
            key = f"{run.state}, completed later" if run.completed_by else run.state
            states[key] = states.get(key, 0) + 1
        summary = ", ".join(f"{n} {state}" for state, n in sorted(states.items())) or "none"
        lines.append(f"runs: {len(self.runs)} ({summary})")
        for run in self.runs:
            if run.state != "finished":
                lines.append(f"  {run.run_id}: {run.label}, {run.rows} rows, started {run.started_at}")
        if any(r.state == "killed" and r.completed_by is None for r in self.runs):
            lines.append("  a killed run lost at most the architecture in flight; rerun its command to resume it")
        if self.journal_rows:
            lines.append(f"rows still in journals: {self.journal_rows} (a part is written when the run ends or resumes)")
        if self.duplicates:
            extra = sum(self.duplicates.values())
            lines.append(f"duplicates: {extra} extra rows stored twice or more under one (arch, proxy, settings) "
                         f"key, proxies {', '.join(sorted(self.duplicates))}; correlate and tables refuse them "
                         f"until you run: proxybench repair {self.out}")
        if not self.coverage:
            lines.append("no scores yet")
            return "\n".join(lines)
        header = ["space", "dataset", "preset", "weights", "seed", "proxy", "requested", "archs", "classes", "ok",
                  "nonfinite", "error", "hours"]
        table = [header]
        for c in self.coverage:
            archs = f"{c.archs}/{c.space_size}" if c.space_size else str(c.archs)
            requested = "-" if c.requested is None else f"{c.requested_scored}/{c.requested}"
            table.append([c.space, c.dataset, c.preset, c.weights, str(c.seed), c.proxy, requested, archs,
                          str(c.classes), str(c.ok), str(c.nonfinite), str(c.error), f"{c.compute_seconds / 3600:.2f}"])
        widths = [max(len(row[k]) for row in table) for k in range(len(header))]
        lines.append("")
        for row in table:
            lines.append("  ".join(v.rjust(w) if k >= 6 else v.ljust(w)
                                   for k, (v, w) in enumerate(zip(row, widths))).rstrip())
        lines.append("requested: architectures scored / asked for by the runs (runs/<run>.archs; - when no run "
                     "recorded them); archs: scored / the space's total")
        lines.append("hours: worker time of the computed rows; a pass shared by several proxies counts "
                     "for the first proxy that ran it")
        return "\n".join(lines)


def results_status(out: str | os.PathLike[str]) -> ResultsStatus:
    """Read the runs and the score rows of results directory ``out`` (nothing is written).

    Raises:
        StoreError: ``out`` is not a results directory, or a part or run record is unreadable.
    """
    out = Path(out)
    if not (out / "runs").is_dir() and not scores_dir(out).is_dir():
        raise StoreError(f"{out} is not a results directory (no runs/ or scores/); "
                         "create one with proxybench score --out")
    journals = _journal_table(out)
    stored = _stored_rows(out)
    rows = _all_rows(stored)
    rows_per_run = dict(rows.query("r", "SELECT run_id, count(*) FROM r GROUP BY run_id").fetchall())
    records = _run_records(out)
    runs = _runs(out, records, rows_per_run)
    requests = _requests(out, records)
    keys = _stored_keys(rows) if requests else {}
    runs = [_with_completion(run, requests.get(run.run_id), keys) for run in runs]
    status = ResultsStatus(out=out, runs=runs, journal_rows=journals.num_rows, duplicates=_duplicates(stored))
    status.coverage = [_with_requested(c, records, requests, keys) for c in _coverage(rows)]
    return status


@dataclass(frozen=True)
class _Request:
    """What one run was asked for: its architectures and, per proxy, the settings hash of its rows."""

    space: str
    dataset: str
    archs: tuple[str, ...]
    hashes: dict[str, str]


def _requests(out: Path, records: dict[str, dict[str, Any]]) -> dict[str, _Request]:
    """The requests of the runs that recorded them (``runs/<run>.archs`` and ``settings_hashes``)."""
    from proxybench.store.scores import requested_path

    found = {}
    for run_id, info in records.items():
        path = requested_path(out, run_id)
        settings = info.get("settings") or {}
        if not path.is_file() or not isinstance(info.get("settings_hashes"), dict):
            continue
        try:
            archs = tuple(line for line in path.read_text(encoding="utf-8").splitlines() if line)
        except OSError:
            continue
        found[run_id] = _Request(str(settings.get("space")), str(settings.get("dataset")), archs,
                                 dict(info["settings_hashes"]))
    return found


def _stored_keys(rows: duckdb.DuckDBPyRelation) -> dict[tuple[str, ...], tuple[Any, str]]:
    """``(space, dataset, proxy, settings_hash, arch)`` -> ``(created_at, run_id)`` of every stored row."""
    found = rows.select("space, dataset, proxy, settings_hash, arch, created_at, run_id").fetchall()
    return {tuple(key[:5]): tuple(key[5:]) for key in found}


def _with_completion(run: RunState, request: _Request | None,
                     stored: dict[tuple[str, ...], tuple[Any, str]]) -> RunState:
    """``run`` with :attr:`RunState.completed_by` set when it did not finish and every row it was asked
    for is stored now (by whichever run: the one that stored the last of them is named)."""
    if run.state in ("finished", "running") or request is None or not request.archs:
        return run
    last: tuple[Any, str] | None = None
    for arch in request.archs:
        for proxy, settings_hash in request.hashes.items():
            found = stored.get((request.space, request.dataset, proxy, settings_hash, arch))
            if found is None:
                return run
            if last is None or str(found[0]) > str(last[0]):
                last = found
    return run if last is None else replace(run, completed_by=last[1])


def _with_requested(coverage: ProxyCoverage, records: dict[str, dict[str, Any]], requests: dict[str, _Request],
                    stored: dict[tuple[str, ...], tuple[Any, str]]) -> ProxyCoverage:
    """``coverage`` with the architectures its configuration's runs asked for, and how many are scored."""
    asked: set[str] = set()
    hashes: set[str] = set()
    for run_id, request in requests.items():
        settings = records[run_id].get("settings") or {}
        same = (request.space == coverage.space and request.dataset == coverage.dataset
                and settings.get("preset") == coverage.preset and settings.get("weights") == coverage.weights
                and settings.get("seed") == coverage.seed and coverage.proxy in request.hashes)
        if same:
            asked.update(request.archs)
            hashes.add(request.hashes[coverage.proxy])
    if not asked:
        return coverage
    scored = sum(any((coverage.space, coverage.dataset, coverage.proxy, h, arch) in stored for h in hashes)
                 for arch in asked)
    return replace(coverage, requested=len(asked), requested_scored=scored)


def _journal_table(out: Path) -> pa.Table:
    rows = journal_rows(out)
    return _rows_to_table(rows, None) if rows else SCORES_SCHEMA.empty_table()


def _stored_rows(out: Path) -> duckdb.DuckDBPyRelation:
    """Every stored row once per copy on disk: the parts and the journal rows not yet in a part,
    read through :func:`open_views` (the same schema checks and one-line errors as
    ``correlate``; a journal next to its part counts once)."""
    parts, journaled = read_directory(scores_dir(out))
    if parts or journaled:
        connection = open_views(scores=[scores_dir(out)], ensembles=())
    else:  # a first run that has not journaled anything yet
        connection = duckdb.connect()
        connection.register("scores", SCORES_SCHEMA.empty_table())
    return connection.sql("SELECT * FROM scores")


def _all_rows(stored: duckdb.DuckDBPyRelation) -> duckdb.DuckDBPyRelation:
    """One row per resume key: the earliest (what :func:`proxybench.store.repair.repair_results` keeps)."""
    key = ", ".join(RESUME_KEY)
    return stored.query("s", f"SELECT * FROM s QUALIFY row_number() OVER (PARTITION BY {key} "
                             "ORDER BY created_at, run_id) = 1")


def _duplicates(stored: duckdb.DuckDBPyRelation) -> dict[str, int]:
    """Per proxy, the extra rows of resume keys stored more than once."""
    key = ", ".join(RESUME_KEY)
    found = stored.query("s", f"SELECT proxy, sum(n - 1) FROM (SELECT proxy, count(*) AS n FROM s "
                              f"GROUP BY {key}) WHERE n > 1 GROUP BY proxy ORDER BY proxy").fetchall()
    return {proxy: int(extra) for proxy, extra in found}


def _run_records(out: Path) -> dict[str, dict[str, Any]]:
    """``runs/<run>.json`` of every run, by run id."""
    records = {}
    for record in sorted((out / "runs").glob("*.json")) if (out / "runs").is_dir() else []:
        try:
            info = json.loads(record.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise StoreError(f"unreadable run record {record}: {exc}; move it away") from None
        records[info.get("run_id", record.stem)] = info
    return records


def _runs(out: Path, records: dict[str, dict[str, Any]], rows_per_run: dict[str, int]) -> list[RunState]:
    runs = []
    for run_id, info in records.items():
        state = info.get("status", "unknown")
        if state == "running" and not run_is_live(out, run_id):
            # A killed writer leaves its lock file behind; no lock file at all means a record
            # written before runs were locked, whose writer may or may not still be alive.
            state = "killed" if (out / "runs" / f"{run_id}.lock").exists() else "unclosed (no run lock)"
        runs.append(RunState(
            run_id=run_id, state=state, started_at=info.get("started_at", ""),
            updated_at=info.get("updated_at", ""), archs_requested=info.get("archs_requested"),
            rows=rows_per_run.get(run_id, 0),
        ))
    return runs


def _coverage(rows: duckdb.DuckDBPyRelation) -> list[ProxyCoverage]:
    found = rows.query("r", """
        SELECT space, dataset, preset, weights, seed, proxy,
               count(DISTINCT arch), count(DISTINCT arch_uid),
               count(*) FILTER (WHERE shared_from IS NULL),
               count(*) FILTER (WHERE status = 'ok'),
               count(*) FILTER (WHERE status = 'nonfinite'),
               count(*) FILTER (WHERE status = 'error'),
               coalesce(sum(seconds) FILTER (WHERE shared_from IS NULL), 0)
        FROM r GROUP BY ALL ORDER BY ALL
    """).fetchall()
    sizes: dict[str, int | None] = {}
    coverage = []
    for space, dataset, preset, weights, seed, proxy, archs, classes, computed, ok, nonfinite, error, seconds in found:
        if space not in sizes:
            sizes[space] = _space_size(space)
        coverage.append(ProxyCoverage(space, dataset, preset, weights, seed, proxy, archs, classes, computed, ok,
                                      nonfinite, error, float(seconds), sizes[space]))
    return coverage


def _space_size(name: str) -> int | None:
    """Architectures in space ``name`` when it is registered and small enough to enumerate."""
    from proxybench.errors import ProxybenchError
    from proxybench.spaces import get_space

    try:
        space = get_space(name)
    except ProxybenchError:  # not registered in this installation
        return None
    try:
        return len(space)  # type: ignore[arg-type]
    except TypeError:
        return None
