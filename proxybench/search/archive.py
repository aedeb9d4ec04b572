"""The search archive: every evaluated candidate, one Parquet part per iteration, and the run's files.

Layout of a search run directory (``--out RUN``)::

    RUN/run.json                    the run's settings (also in every part's metadata)
    RUN/archive/iter-0000.parquet   the initial sample (iteration 0)
    RUN/archive/iter-0001.parquet   the K candidates of iteration 1, ...
    RUN/iterations.parquet          per-iteration statistics (surrogate, CV τ, fit on the new points,
                                    exact evaluations computed/reused: n_exact_computed, n_exact_reused)
    RUN/picks/<k>.json              the top-k trade-off picks, with how to train them
    RUN/scores/*.parquet            proxy scores computed on the way (the ``scores`` table)

A part is written to a temporary name and renamed, so an iteration is in the archive
entirely or not at all: the archive *is* the search state, and a resumed run continues
after the last complete part. The per-iteration statistics travel in each part's key-value
metadata (``proxybench.search.iteration``) and ``iterations.parquet`` is rebuilt from them,
so the two can never disagree. ``selected``/``arch_label`` are rewritten (atomically, part by
part) when the final picks are made.

Columns (:func:`archive_schema`): ``run_id, iteration, candidate`` (0, 1, ... over the run),
``space, genome`` (list<int64>), ``arch`` (canonical string), ``arch_uid`` (isomorphism key),
``status`` (``ok`` | ``failed``), ``error``, ``surrogate`` (``objective=model`` pairs used to
pick the candidate; null for the initial sample and for searches without expensive
objectives), ``seconds`` (the candidate's measurement time), ``created_at``, ``arch_label``,
``selected`` and the FlatNAS-table columns ``top1_error, robustness, mce, params_m, macs_m``
(null when not measured), then ``obj_<name>`` (the measured, minimised value: −score for a
higher-is-better proxy) and ``pred_<name>`` (the surrogate's prediction when the candidate was
picked; null for cheap objectives and the initial sample) per objective.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from proxybench.errors import StoreError
from proxybench.search.problem import FLATNAS_COLUMNS
from proxybench.store.atomic import write_parquet_atomically

__all__ = ["ITERATION_KEY", "ITERATION_SCHEMA", "RUN_KEY", "Archive", "archive_schema", "write_json_atomically"]

RUN_KEY = "proxybench.search.run"
ITERATION_KEY = "proxybench.search.iteration"

_BASE = [
    pa.field("run_id", pa.string(), nullable=False),
    pa.field("iteration", pa.int64(), nullable=False),
    pa.field("candidate", pa.int64(), nullable=False),
    pa.field("space", pa.string(), nullable=False),
    pa.field("genome", pa.list_(pa.int64())),
    pa.field("arch", pa.string(), nullable=False),
    pa.field("arch_uid", pa.string()),
    pa.field("status", pa.string(), nullable=False),
    pa.field("error", pa.string()),
    pa.field("surrogate", pa.string()),
    pa.field("seconds", pa.float64()),
    pa.field("created_at", pa.timestamp("us", tz="UTC")),
    pa.field("arch_label", pa.string()),
    pa.field("selected", pa.bool_(), nullable=False),
] + [pa.field(name, pa.float64()) for name in FLATNAS_COLUMNS]

ITERATION_SCHEMA = pa.schema([
    pa.field("run_id", pa.string(), nullable=False),
    pa.field("iteration", pa.int64(), nullable=False),
    pa.field("objective", pa.string()),
    pa.field("surrogate", pa.string()),
    pa.field("cv_folds", pa.int64()),
    pa.field("cv_tau_mean", pa.float64()),
    pa.field("cv_tau_std", pa.float64()),
    pa.field("cv_scores", pa.string()),
    pa.field("new_rmse", pa.float64()),
    pa.field("new_spearman", pa.float64()),
    pa.field("new_kendall", pa.float64()),
    pa.field("gamma", pa.float64()),
    pa.field("n_archive", pa.int64()),
    pa.field("n_pool", pa.int64()),
    pa.field("n_new", pa.int64()),
    pa.field("n_failed", pa.int64()),
    pa.field("n_exact_computed", pa.int64()),
    pa.field("n_exact_reused", pa.int64()),
    pa.field("seconds", pa.float64()),
])


def archive_schema(objectives: Sequence[str]) -> pa.Schema:
    """The archive schema for a run with these objective names."""
    extra = [pa.field(f"obj_{n}", pa.float64()) for n in objectives]
    extra += [pa.field(f"pred_{n}", pa.float64()) for n in objectives]
    return pa.schema(_BASE + extra)


def write_json_atomically(data: Any, path: Path) -> None:
    """``json.dump`` through a temporary file and a rename."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StoreError(f"cannot write {path}: {exc.strerror or exc}; choose another --out") from None


class Archive:
    """The archive of a run directory (see the module docstring).

    Args:
        run_dir: The run directory.
        objectives: The run's objective names (column set).
        run_settings: The run's settings, stored in every part's metadata.
    """

    def __init__(self, run_dir: str | os.PathLike[str], objectives: Sequence[str],
                 run_settings: Mapping[str, Any] | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.directory = self.run_dir / "archive"
        self.objectives = list(objectives)
        self.schema = archive_schema(self.objectives)
        self.run_settings = dict(run_settings or {})

    @staticmethod
    def part_name(iteration: int) -> str:
        return f"iter-{iteration:04d}.parquet"

    def parts(self) -> list[Path]:
        return sorted(self.directory.glob("iter-*.parquet")) if self.directory.is_dir() else []

    def iterations(self) -> list[int]:
        """Complete iterations, in order. Raises StoreError when one is missing in between."""
        done = []
        for p in self.parts():
            try:
                done.append(int(p.stem.split("-", 1)[1]))
            except ValueError:
                raise StoreError(f"unexpected file {p} in the archive; move it away") from None
        if done != list(range(len(done))):
            raise StoreError(f"archive {self.directory} has iterations {done}: one is missing; "
                             "restore it or start a new run")
        return done

    def read(self) -> pa.Table:
        """Every row, ordered by candidate."""
        parts = self.parts()
        if not parts:
            return self.schema.empty_table()
        try:
            tables = [pq.read_table(p, schema=self.schema) for p in parts]
        except (pa.ArrowInvalid, OSError) as exc:
            raise StoreError(f"cannot read the archive {self.directory}: {exc}") from None
        return pa.concat_tables(tables).sort_by("candidate")

    def rows(self) -> list[dict[str, Any]]:
        return self.read().to_pylist()

    def append(self, iteration: int, rows: Sequence[Mapping[str, Any]], stats: Sequence[Mapping[str, Any]]) -> Path:
        """Write iteration ``iteration``'s candidates and statistics as one part (atomic).

        Raises:
            StoreError: The part exists already (an iteration is written once) or cannot be written.
        """
        path = self.directory / self.part_name(iteration)
        if path.exists():
            raise StoreError(f"{path} exists: iteration {iteration} was written already")
        table = pa.Table.from_pylist([{f.name: r.get(f.name) for f in self.schema} for r in rows], schema=self.schema)
        write_parquet_atomically(table, path, {RUN_KEY: json.dumps(self.run_settings, sort_keys=True, default=str),
                                        ITERATION_KEY: json.dumps(list(stats), sort_keys=True, default=str)})
        return path

    def iteration_stats(self) -> list[dict[str, Any]]:
        """The statistics rows of every part, in order."""
        out: list[dict[str, Any]] = []
        for p in self.parts():
            meta = pq.read_schema(p).metadata or {}
            out.extend(json.loads(meta.get(ITERATION_KEY.encode(), b"[]")))
        return out

    def write_iterations(self) -> Path:
        """Rebuild ``RUN/iterations.parquet`` from the parts' metadata."""
        rows = self.iteration_stats()
        table = pa.Table.from_pylist([{f.name: r.get(f.name) for f in ITERATION_SCHEMA} for r in rows],
                                     schema=ITERATION_SCHEMA)
        path = self.run_dir / "iterations.parquet"
        write_parquet_atomically(table, path, {RUN_KEY: json.dumps(self.run_settings, sort_keys=True, default=str)})
        return path

    def mark_selected(self, labels: Mapping[int, str]) -> None:
        """Set ``selected``/``arch_label``: candidates in ``labels`` get that label, the others
        ``c<candidate>``. Parts that already agree are left untouched."""
        for p in self.parts():
            table = pq.read_table(p, schema=self.schema)
            meta = pq.read_schema(p).metadata or {}
            cands = table.column("candidate").to_pylist()
            selected = [c in labels for c in cands]
            names = [labels.get(c, f"c{c:04d}") for c in cands]
            if selected == table.column("selected").to_pylist() and names == table.column("arch_label").to_pylist():
                continue
            table = table.set_column(table.schema.get_field_index("selected"), self.schema.field("selected"),
                                     pa.array(selected, pa.bool_()))
            table = table.set_column(table.schema.get_field_index("arch_label"), self.schema.field("arch_label"),
                                     pa.array(names, pa.string()))
            write_parquet_atomically(table, p, {k.decode(): v.decode() for k, v in meta.items() if not k.startswith(b"ARROW:")})
