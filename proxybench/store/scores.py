"""Incremental, crash-safe writing of score rows into a results directory.

Layout of a results directory (``--out``)::

    scores/part-<run>-<seq>.parquet   finished parts; ``scores/*.parquet`` is the table
    scores/journal-<run>-<seq>.jsonl  rows of the part being filled (one JSON line per row)
    runs/<run>.json                   the run's settings, start/end time and counts

Every architecture's rows are appended to the journal and flushed to disk before the next
architecture starts, so a crash or kill loses at most the architecture in flight. Every
``rows_per_part`` rows (and at ``close``) the journal becomes a Parquet part, written to a
temporary name and renamed atomically, then the journal is deleted. When a directory is
opened again, journals left by a crashed run are converted the same way first (a part that
already exists for a journal means the crash hit between rename and delete: the journal is
just removed), so nothing is lost and nothing is duplicated. A torn last journal line (a
kill in the middle of a write) is dropped; that architecture is scored again.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from proxybench.errors import StoreError
from proxybench.store.schema import RESUME_KEY, SCORES_SCHEMA

__all__ = ["ScoreWriter", "read_scores", "stored_keys", "scores_dir"]


def scores_dir(out: str | os.PathLike[str]) -> Path:
    return Path(out) / "scores"


def _encode_row(row: Mapping[str, Any]) -> str:
    data = dict(row)
    data["created_at"] = data["created_at"].isoformat()
    # json writes NaN/Infinity literally (allow_nan), which json.loads reads back.
    return json.dumps(data, allow_nan=True, separators=(",", ":"))


def _decode_row(line: str) -> dict[str, Any]:
    data = json.loads(line)
    data["created_at"] = datetime.fromisoformat(data["created_at"])
    return data


def _rows_to_table(rows: list[dict[str, Any]], metadata: Mapping[str, str] | None) -> pa.Table:
    columns = {name: [row.get(name) for row in rows] for name in SCORES_SCHEMA.names}
    table = pa.Table.from_pydict(columns, schema=SCORES_SCHEMA)
    if metadata:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
    return table


def _write_part_atomically(table: pa.Table, path: Path) -> None:
    tmp = path.with_suffix(".parquet.tmp")
    pq.write_table(table, tmp, compression="zstd")
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _read_journal(path: Path) -> list[dict[str, Any]]:
    rows = []
    with open(path, encoding="utf-8") as fh:
        lines = fh.read().split("\n")
    # Only newline-terminated lines are complete; the last element is "" or a torn line.
    for line in lines[:-1]:
        if line.strip():
            rows.append(_decode_row(line))
    return rows


def _journal_is_live(journal: Path) -> bool:
    """True when a running writer holds the journal's lock (so it must not be recovered)."""
    try:
        with open(journal, "rb") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    except BlockingIOError:
        return True
    except FileNotFoundError:  # its writer rolled it meanwhile
        return True
    return False


def _recover_journals(directory: Path) -> None:
    """Turn journals left by dead writers into parts; journals of live writers are left alone."""
    for journal in sorted(directory.glob("journal-*.jsonl")):
        if _journal_is_live(journal):
            continue
        part = directory / (journal.name.replace("journal-", "part-", 1)[: -len(".jsonl")] + ".parquet")
        if not part.exists():
            rows = _read_journal(journal)
            if rows:
                _write_part_atomically(_rows_to_table(rows, {"proxybench.recovered": "true"}), part)
        journal.unlink()
    for stale in directory.glob("*.parquet.tmp"):
        stale.unlink()


def _part_files(out: str | os.PathLike[str]) -> list[Path]:
    directory = scores_dir(out)
    return sorted(directory.glob("*.parquet")) if directory.is_dir() else []


def stored_keys(out: str | os.PathLike[str]) -> set[tuple[str, ...]]:
    """Resume keys (:data:`RESUME_KEY`) of every row already stored under ``out``.

    Complete lines of journals count too: they are durable rows, whether their writer died
    (its journal becomes a part when the directory is next opened for writing) or still runs.
    """
    keys: set[tuple[str, ...]] = set()
    directory = scores_dir(out)
    if directory.is_dir():
        for journal in sorted(directory.glob("journal-*.jsonl")):
            try:
                keys.update(tuple(row[c] for c in RESUME_KEY) for row in _read_journal(journal))
            except FileNotFoundError:  # rolled into a part meanwhile; read below
                pass
    for part in _part_files(out):
        try:
            table = pq.read_table(part, columns=list(RESUME_KEY))
        except (pa.ArrowInvalid, OSError) as exc:
            raise StoreError(
                f"corrupt Parquet part {part}: {exc}; move it away and rerun with --resume to score its rows again"
            ) from None
        keys.update(zip(*(table.column(c).to_pylist() for c in RESUME_KEY)))
    return keys


def read_scores(out: str | os.PathLike[str]) -> pa.Table:
    """Every stored score row under ``out`` as one Arrow table (empty table when none)."""
    parts = _part_files(out)
    if not parts:
        return SCORES_SCHEMA.empty_table()
    try:
        return pa.concat_tables([pq.read_table(p, schema=SCORES_SCHEMA) for p in parts])
    except (pa.ArrowInvalid, OSError) as exc:
        raise StoreError(f"cannot read the scores under {out}: {exc}") from None


class ScoreWriter:
    """Append score rows to ``<out>/scores`` durably; see the module docstring.

    Args:
        out: Results directory (created if missing).
        run_id: Unique id of this run; part and journal names start with it.
        run_info: JSON-serialisable description of the run, written to ``runs/<run_id>.json``
            and into every part's Parquet key-value metadata.
        rows_per_part: Rows collected before a journal is turned into a Parquet part.
    """

    def __init__(
        self,
        out: str | os.PathLike[str],
        run_id: str,
        run_info: Mapping[str, Any],
        rows_per_part: int = 5000,
    ) -> None:
        self.out = Path(out)
        self.directory = scores_dir(out)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            (self.out / "runs").mkdir(exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create results directory {self.out}: {exc}; choose another --out") from None
        _recover_journals(self.directory)
        self.run_id = run_id
        self.run_info = dict(run_info)
        self.rows_per_part = rows_per_part
        self._metadata = {"proxybench.run": json.dumps(self.run_info, sort_keys=True, default=str)}
        self._seq = 0
        self._rows_in_journal = 0
        self._journal: Any = None
        self.rows_written = 0
        self._write_run_file(status="running")

    # -- public -----------------------------------------------------------------
    def add(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Append the rows of one architecture and flush them to disk."""
        rows = list(rows)
        if not rows:
            return
        if self._journal is None:
            self._journal = open(self._journal_path(), "a", encoding="utf-8")
            # Held until the journal is rolled: tells other processes' recovery it is live.
            fcntl.flock(self._journal.fileno(), fcntl.LOCK_EX)
        self._journal.write("".join(_encode_row(r) + "\n" for r in rows))
        self._journal.flush()
        os.fsync(self._journal.fileno())
        self._rows_in_journal += len(rows)
        self.rows_written += len(rows)
        if self._rows_in_journal >= self.rows_per_part:
            self._roll()

    def close(self, summary: Mapping[str, Any] | None = None) -> None:
        """Turn the open journal into a part and record the run as finished."""
        self._roll()
        self._write_run_file(status="finished", summary=summary)

    def __enter__(self) -> "ScoreWriter":
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is None:
            self.close()
        else:  # keep what was scored; the run file says it did not finish
            self._roll()
            self._write_run_file(status=f"interrupted ({exc_type.__name__})")

    # -- internals --------------------------------------------------------------
    def _journal_path(self) -> Path:
        return self.directory / f"journal-{self.run_id}-{self._seq:05d}.jsonl"

    def _roll(self) -> None:
        if self._journal is None:
            return
        journal = self._journal_path()
        rows = _read_journal(journal)
        if rows:
            _write_part_atomically(
                _rows_to_table(rows, self._metadata),
                self.directory / f"part-{self.run_id}-{self._seq:05d}.parquet",
            )
        journal.unlink()
        # Closing releases the lock only now, so no other process recovers it half-way.
        self._journal.close()
        self._journal = None
        self._seq += 1
        self._rows_in_journal = 0

    def _write_run_file(self, status: str, summary: Mapping[str, Any] | None = None) -> None:
        info = {**self.run_info, "run_id": self.run_id, "status": status,
                "updated_at": datetime.now(timezone.utc).isoformat()}
        if summary is not None:
            info["summary"] = dict(summary)
        path = self.out / "runs" / f"{self.run_id}.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(info, indent=2, sort_keys=True, default=_json_default))
        os.replace(tmp, path)


def _json_default(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return str(value)
