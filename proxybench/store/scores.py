"""Incremental, crash-safe writing of score rows into a results directory.

Layout of a results directory (``--out``)::

    scores/part-<run>-<seq>.parquet   finished parts; ``scores/*.parquet`` is the table
    scores/journal-<run>-<seq>.jsonl  rows of the part being filled (one JSON line per row)
    runs/<run>.json                   the run's settings, start/end time and counts
    runs/<run>.lock                   ``flock``-ed while the run is alive (see ``run_is_live``)

Every architecture's rows are appended to the journal and flushed to disk before the next
architecture starts, so a crash or kill loses at most the architecture in flight. Every
``rows_per_part`` rows (and at ``close``) the journal becomes a Parquet part, written to a
temporary name and renamed atomically, then the journal is deleted. When a directory is
opened again, journals left by a crashed run are converted the same way first (a part that
already exists for a journal means the crash hit between rename and delete: the journal is
just removed), so nothing is lost and nothing is duplicated. A torn last journal line (a
kill in the middle of a write) is dropped with a warning; that architecture is scored
again. A complete line that is not a row (a disk error, a stray write) is skipped with a
warning naming the file and line, everywhere journals are read; it never stops a reader or
a run, and resuming scores its architecture again.

Several writers may share one directory at the same time (``--shard``, ``--workers``): each
has its own run id, so part and journal names never collide; each journal is ``flock``-ed
by its writer while it is live; and the directory lock ``scores/.lock`` is held shared while
a writer creates a journal or rolls one into a part, and exclusively while journals of dead
writers are recovered, so recovery never sees a journal before its writer locked it nor
removes the temporary file of a part being written. (On a cluster file system ``flock``
must work across nodes: NFS does, Lustre needs the ``flock`` mount option.)
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import warnings
from collections.abc import Collection, Iterable, Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from proxybench.errors import StoreError
from proxybench.store.atomic import not_writable
from proxybench.store.schema import REQUIRED_SCORE_COLUMNS, RESUME_KEY, SCORES_SCHEMA, check_parquet_schema

__all__ = ["ScoreWriter", "StoreWarning", "check_part", "journal_rows", "read_directory", "read_scores", "run_is_live", "stored_keys", "stored_rows", "scores_dir"]

LOCK_NAME = ".lock"


def scores_dir(out: str | os.PathLike[str]) -> Path:
    return Path(out) / "scores"


def _encode_row(row: Mapping[str, Any]) -> str:
    data = dict(row)
    data["created_at"] = data["created_at"].isoformat()
    # json writes NaN/Infinity literally (allow_nan), which json.loads reads back.
    return json.dumps(data, allow_nan=True, separators=(",", ":"))


class StoreWarning(UserWarning):
    """A results directory held something unusable that was skipped (the message says what)."""


#: Keys a journal line must have to be a row (the non-nullable columns but ``shared_from``).
_REQUIRED_KEYS = frozenset(f.name for f in SCORES_SCHEMA if not f.nullable)


def _decode_row(line: str) -> dict[str, Any]:
    """One journal line as a row; ``ValueError`` when it is not one (garbage, a foreign line)."""
    data = json.loads(line)
    if not isinstance(data, dict) or not _REQUIRED_KEYS <= data.keys():
        raise ValueError("not a score row")
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


def _read_journal(path: Path, dead: bool = False) -> list[dict[str, Any]]:
    """The rows of journal ``path``; lines that are not rows are skipped with a :class:`StoreWarning`.

    Only newline-terminated lines are complete. An unterminated last line is a write in
    progress (live writer) or torn by a kill (``dead``: warned about); either way it is not
    a row yet, and its architecture is scored again on resume. A complete line that is not
    a row (a disk error, a foreign write) is skipped with a warning naming the file and line:
    the row it held cannot be recovered, resuming scores its architecture again, and every
    other row of the journal is kept (failing instead would leave the folder stuck).
    """
    rows = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        lines = fh.read().split("\n")
    for number, line in enumerate(lines[:-1], start=1):
        if not line.strip():
            continue
        try:
            rows.append(_decode_row(line))
        except (ValueError, TypeError):  # JSONDecodeError is a ValueError
            _warn_once(path, number, "is not a score row (corrupt)")
    if dead and lines[-1].strip():
        _warn_once(path, len(lines), "is truncated (its writer was killed mid-write)")
    return rows


_WARNED: set[tuple[str, int, str]] = set()


def _warn_once(path: Path, number: int, problem: str) -> None:
    """One :class:`StoreWarning` per journal line and problem per process (a command reads a
    journal more than once; Python's own once-per-location rule is reset by filter changes)."""
    key = (str(path), number, problem)
    if key not in _WARNED:
        _WARNED.add(key)
        warnings.warn(f"{path} line {number} {problem}; skipped, resuming the run scores its architecture again",
                      StoreWarning, stacklevel=3)


def _journal_is_live(journal: Path) -> bool:
    """True when a running writer holds the journal's lock (so it must not be recovered)."""
    return _is_locked(journal)


def run_is_live(out: str | os.PathLike[str], run_id: str) -> bool:
    """True when the writer of run ``run_id`` under ``out`` is still alive (holds its run lock)."""
    lock = Path(out) / "runs" / f"{run_id}.lock"
    return lock.exists() and _is_locked(lock)


def _is_locked(path: Path) -> bool:
    """True when another open file description holds an exclusive ``flock`` on ``path``."""
    try:
        with open(path, "rb") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    except BlockingIOError:
        return True
    except FileNotFoundError:  # its writer rolled it meanwhile
        return True
    return False


@contextlib.contextmanager
def _directory_lock(directory: Path, exclusive: bool) -> Iterator[None]:
    """``flock`` on ``directory/.lock``: shared for writers' journal/part moves, exclusive for recovery."""
    with open(directory / LOCK_NAME, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _recover_journals(directory: Path) -> None:
    """Turn journals left by dead writers into parts; journals of live writers are left alone."""
    with _directory_lock(directory, exclusive=True):
        _recover_journals_locked(directory)


def _recover_journals_locked(directory: Path) -> None:
    for journal in sorted(directory.glob("journal-*.jsonl")):
        if _journal_is_live(journal):
            continue
        part = directory / (journal.name.replace("journal-", "part-", 1)[: -len(".jsonl")] + ".parquet")
        if not part.exists():
            rows = _read_journal(journal, dead=True)
            if rows:
                _write_part_atomically(_rows_to_table(rows, {"proxybench.recovered": "true"}), part)
        journal.unlink()
    for stale in directory.glob("*.parquet.tmp"):
        stale.unlink()


def journal_rows(out: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Complete rows of every journal under ``out`` (live writers' and dead ones' not yet
    recovered). A journal rolled into a part while this reads is skipped: its rows are in
    the part, which callers read next. A journal still on disk beside its part is read too
    (use :func:`read_directory` to get every row once)."""
    directory = scores_dir(out)
    rows: list[dict[str, Any]] = []
    for journal in sorted(directory.glob("journal-*.jsonl")) if directory.is_dir() else []:
        try:
            rows.extend(_read_journal(journal))
        except FileNotFoundError:
            pass
    return rows


def _part_of(journal: Path) -> Path:
    return journal.with_name(journal.name.replace("journal-", "part-", 1)[: -len(".jsonl")] + ".parquet")


def read_directory(folder: str | os.PathLike[str]) -> tuple[list[Path], list[dict[str, Any]]]:
    """The Parquet files of a scores folder and the rows of its journals, every row once.

    A journal whose part exists (rolled, or being removed) is left out; a journal rolled
    while this reads has been read, so its new part is left out instead. Rows of live
    writers are included: a reader sees what ``proxybench status`` counts.

    Returns:
        ``(parquet files, journal rows)``; both empty when ``folder`` does not exist.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return [], []
    rows: list[dict[str, Any]] = []
    read: set[Path] = set()
    for journal in sorted(folder.glob("journal-*.jsonl")):
        part = _part_of(journal)
        if part.exists():
            continue
        try:
            rows.extend(_read_journal(journal))
        except FileNotFoundError:  # rolled meanwhile: its part is listed below
            continue
        read.add(part)
    return [p for p in sorted(folder.glob("*.parquet")) if p not in read], rows


def _part_files(out: str | os.PathLike[str]) -> list[Path]:
    directory = scores_dir(out)
    return sorted(directory.glob("*.parquet")) if directory.is_dir() else []


def check_part(part: Path) -> None:
    """Raise a one-line :class:`StoreError` unless ``part`` is a scores Parquet file."""
    check_parquet_schema(
        part, SCORES_SCHEMA, "scores", required=REQUIRED_SCORE_COLUMNS, corrupt="corrupt Parquet part",
        fix=f"move it away from {part.parent} (a scores folder holds only proxybench score parts) and rerun "
            "with --resume to score its rows again",
    )


def stored_keys(out: str | os.PathLike[str]) -> set[tuple[str, ...]]:
    """Resume keys (:data:`RESUME_KEY`) of every row already stored under ``out``.

    Complete lines of journals count too: they are durable rows, whether their writer died
    (its journal becomes a part when the directory is next opened for writing) or still runs.
    """
    keys = {tuple(row[c] for c in RESUME_KEY) for row in journal_rows(out)}
    for part in _part_files(out):
        check_part(part)
        try:
            table = pq.read_table(part, columns=list(RESUME_KEY))
        except (pa.ArrowInvalid, OSError) as exc:
            raise StoreError(
                f"corrupt Parquet part {part}: {exc}; move it away and rerun with --resume to score its rows again"
            ) from None
        keys.update(zip(*(table.column(c).to_pylist() for c in RESUME_KEY)))
    return keys


def stored_rows(
    out: str | os.PathLike[str],
    settings_hashes: Collection[str],
    arch_uids: Collection[str] | None = None,
) -> list[dict[str, Any]]:
    """Stored rows (parts and complete journal lines) with one of ``settings_hashes``.

    Args:
        out: Results directory.
        settings_hashes: Keep rows whose ``settings_hash`` is one of these.
        arch_uids: Keep only rows of these isomorphism classes (all when None).

    Returns:
        The rows as dicts of :data:`SCORES_SCHEMA` columns (``shared_from`` is None for rows
        of files written before the column existed). A row that is both in a journal and in
        the part it was just rolled into appears once per copy; callers index by key.
    """
    hashes = set(settings_hashes)
    uids = None if arch_uids is None else set(arch_uids)

    def wanted(row: Mapping[str, Any]) -> bool:
        return row.get("settings_hash") in hashes and (uids is None or row.get("arch_uid") in uids)

    if not hashes:
        return []
    rows = [{name: r.get(name) for name in SCORES_SCHEMA.names} for r in journal_rows(out) if wanted(r)]
    for part in _part_files(out):
        check_part(part)
        try:
            table = pq.read_table(part, schema=SCORES_SCHEMA)
        except (pa.ArrowInvalid, OSError) as exc:
            raise StoreError(
                f"corrupt Parquet part {part}: {exc}; move it away and rerun with --resume to score its rows again"
            ) from None
        mask = pc.is_in(table.column("settings_hash"), value_set=pa.array(sorted(hashes), pa.string()))
        if uids is not None:
            mask = pc.and_(mask, pc.is_in(table.column("arch_uid"), value_set=pa.array(sorted(uids), pa.string())))
        rows.extend(table.filter(mask).to_pylist())
    return rows


def read_scores(out: str | os.PathLike[str]) -> pa.Table:
    """The rows of every finished Parquet part under ``out`` as one Arrow table (empty table
    when none). Rows still in journals are not included; :func:`read_directory` has them.

    Raises:
        StoreError: A part is not Parquet or not a scores file (:func:`check_part`).
    """
    parts = _part_files(out)
    if not parts:
        return SCORES_SCHEMA.empty_table()
    for part in parts:
        check_part(part)
    try:
        return pa.concat_tables([pq.read_table(p, schema=SCORES_SCHEMA) for p in parts])
    except (pa.ArrowInvalid, OSError) as exc:
        raise StoreError(f"cannot read the scores under {out}: {exc}") from None


def rows_of_run(out: str | os.PathLike[str], run_id: str) -> int:
    """Rows stored under ``out`` (parts and complete journal lines) by run ``run_id`` and by the
    processes it started (workers ``<run_id>-w...``, Ray chunks): what a stopped run saved."""
    parts, journaled = read_directory(scores_dir(out))
    prefix = f"{run_id}-"
    count = sum(1 for row in journaled
                if row.get("run_id") == run_id or str(row.get("run_id") or "").startswith(prefix))
    for part in parts:
        try:
            ids = pq.read_table(part, columns=["run_id"]).column("run_id")
        except (pa.ArrowInvalid, OSError, KeyError):
            continue
        hits = pc.or_(pc.equal(ids, run_id), pc.starts_with(ids, prefix))
        count += int(pc.sum(hits.cast(pa.int64())).as_py() or 0)
    return count


class ScoreWriter:
    """Append score rows to ``<out>/scores`` durably; see the module docstring.

    Args:
        out: Results directory (created if missing).
        run_id: Unique id of this run; part and journal names start with it.
        run_info: JSON-serialisable description of the run, written to ``runs/<run_id>.json``
            and into every part's Parquet key-value metadata.
        rows_per_part: Rows collected before a journal is turned into a Parquet part.
        requested: The architectures the run was asked for, written once to
            ``runs/<run_id>.archs`` (one per line): ``proxybench status`` compares them with
            what is stored (coverage of the request; a killed run whose work a later run did).
    """

    def __init__(
        self,
        out: str | os.PathLike[str],
        run_id: str,
        run_info: Mapping[str, Any],
        rows_per_part: int = 5000,
        requested: Iterable[str] | None = None,
    ) -> None:
        self.out = Path(out)
        self.directory = scores_dir(out)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            (self.out / "runs").mkdir(exist_ok=True)
        except OSError as exc:
            raise not_writable(self.out, exc) from None
        _recover_journals(self.directory)
        self.run_id = run_id
        self.run_info = dict(run_info)
        self.rows_per_part = rows_per_part
        self._metadata = {"proxybench.run": json.dumps(self.run_info, sort_keys=True, default=str)}
        self._seq = 0
        self._rows_in_journal = 0
        self._journal: Any = None
        self.rows_written = 0
        self._run_lock = self._hold_run_lock()
        if requested is not None:
            _write_text_atomically(requested_path(self.out, run_id), "".join(f"{a}\n" for a in requested))
        self._write_run_file(status="running")

    # -- public -----------------------------------------------------------------
    def add(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Append the rows of one architecture and flush them to disk."""
        rows = list(rows)
        if not rows:
            return
        if self._journal is None:
            # Created and locked under the shared directory lock, so a recovery running in
            # another process never finds it unlocked (and takes it for a dead writer's).
            with _directory_lock(self.directory, exclusive=False):
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
        self._release_run_lock()

    def __enter__(self) -> "ScoreWriter":
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is None:
            self.close()
        else:  # keep what was scored; the run file says it did not finish
            # Best effort: on a full or read-only disk the part or the run file cannot be written
            # either; the journal's complete lines are durable and the next run recovers them.
            # A second error here would only hide the first one behind a chained traceback.
            try:
                self._roll()
            except OSError:
                self._abandon_journal()
            try:
                self._write_run_file(status=f"interrupted ({exc_type.__name__})")
            except OSError:  # the record still says running: keep the lock file, so status says killed
                self._run_lock.close()
                self._run_lock = None
                return
            self._release_run_lock()

    # -- internals --------------------------------------------------------------
    def _hold_run_lock(self) -> Any:
        """Lock ``runs/<run>.lock`` for the writer's lifetime: a run whose file says
        ``running`` but whose lock nobody holds was killed (``proxybench status`` says so)."""
        handle = open(self.out / "runs" / f"{self.run_id}.lock", "a+b")
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        return handle

    def _release_run_lock(self) -> None:
        if self._run_lock is not None:
            with contextlib.suppress(OSError):  # gone already, or a read-only / full disk
                (self.out / "runs" / f"{self.run_id}.lock").unlink()
            self._run_lock.close()
            self._run_lock = None

    def _abandon_journal(self) -> None:
        """Close the journal without rolling it (the next writer in this folder recovers it)."""
        if self._journal is not None:
            with contextlib.suppress(OSError):
                self._journal.close()
            self._journal = None

    def _journal_path(self) -> Path:
        return self.directory / f"journal-{self.run_id}-{self._seq:05d}.jsonl"

    def _roll(self) -> None:
        if self._journal is None:
            return
        journal = self._journal_path()
        with _directory_lock(self.directory, exclusive=False):
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
        _write_text_atomically(self.out / "runs" / f"{self.run_id}.json",
                               json.dumps(info, indent=2, sort_keys=True, default=_json_default))


def requested_path(out: str | os.PathLike[str], run_id: str) -> Path:
    """``runs/<run_id>.archs``: the architectures run ``run_id`` was asked for, one per line."""
    return Path(out) / "runs" / f"{run_id}.archs"


def _write_text_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _json_default(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return str(value)
