"""Remove duplicate score rows from a results directory (``proxybench repair OUT``).

Before runs claimed classes (:mod:`proxybench.store.claims`), two runs of one command into
one ``OUT`` stored every row twice; ``correlate`` and ``tables`` then refuse the folder
(an architecture twice in one group) and ``proxybench status`` reports the duplicates.

**What wins**: per resume key (space, arch, dataset, proxy, settings_hash; the settings
hash covers every setting that changes a number) the *earliest* row by ``created_at`` is
kept (ties: the smaller ``run_id``, then file and row order), every later copy is removed.
The copies were computed under identical settings, so they differ only by run-to-run
noise; the earliest is the one every reader saw first, and keeping it makes the repair
deterministic and idempotent. ``proxybench status`` counts the same row per key.

How: under the exclusive directory lock (no writer can create or roll a journal
meanwhile), refused while any run is live; journals of dead runs are first turned into
parts as a new run would; then each part holding a removed row is rewritten without it
(written to a temporary name and renamed, as every part is; a part left empty is
deleted). A kept row is never touched, so a repair interrupted at any point loses nothing
and running it again finishes the job.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from proxybench.errors import StoreError
from proxybench.store.schema import RESUME_KEY
from proxybench.store.scores import (
    _directory_lock,
    _journal_is_live,
    _recover_journals_locked,
    _write_part_atomically,
    check_part,
    run_is_live,
    scores_dir,
)

__all__ = ["RepairReport", "repair_results"]


@dataclass
class RepairReport:
    """What :func:`repair_results` removed (or would remove, with ``dry_run``)."""

    out: Path
    dry_run: bool = False
    removed: dict[str, int] = field(default_factory=dict)  # proxy -> rows removed
    parts_rewritten: list[str] = field(default_factory=list)
    parts_deleted: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {"out": str(self.out), "dry_run": self.dry_run, "removed": dict(self.removed),
                "parts_rewritten": list(self.parts_rewritten), "parts_deleted": list(self.parts_deleted)}

    def __str__(self) -> str:
        total = sum(self.removed.values())
        if not total:
            return f"no duplicate rows in {self.out}"
        verb = "would remove" if self.dry_run else "removed"
        proxies = ", ".join(f"{p} {n}" for p, n in sorted(self.removed.items()))
        files = f"{len(self.parts_rewritten)} parts rewritten, {len(self.parts_deleted)} deleted"
        return (f"{verb} {total} duplicate rows ({proxies}) from {self.out}, keeping the earliest row per "
                f"(arch, proxy, settings); {files}" + (" (dry run: nothing written)" if self.dry_run else ""))


def repair_results(out: str | os.PathLike[str], dry_run: bool = False) -> RepairReport:
    """Keep the earliest row per resume key under ``out`` and remove the later copies.

    Args:
        out: Results directory.
        dry_run: Only report what would be removed (dead runs' journals are not converted
            either; their rows are counted as if they were parts).

    Returns:
        A :class:`RepairReport`.

    Raises:
        StoreError: ``out`` has no ``scores/``, a run is still writing into it, or a part is
            unreadable or not a scores file.

    Example:
        >>> print(repair_results("results"))  # doctest: +SKIP
        removed 87 duplicate rows (params 29, flops 29, synflow 29) from results, keeping the earliest ...
    """
    out = Path(out)
    directory = scores_dir(out)
    if not directory.is_dir():
        raise StoreError(f"{out} is not a results directory (no scores/); nothing to repair")
    report = RepairReport(out=out, dry_run=dry_run)
    with _directory_lock(directory, exclusive=True):
        live = sorted(p.stem for p in (out / "runs").glob("*.lock") if run_is_live(out, p.stem)) \
            if (out / "runs").is_dir() else []
        live += [j.name for j in sorted(directory.glob("journal-*.jsonl")) if _journal_is_live(j)]
        if live:
            raise StoreError(f"{live[0]} is still writing into {out}; repair once every run has finished or "
                             f"been stopped (proxybench status {out} lists them)")
        if not dry_run:
            _recover_journals_locked(directory)
        parts = sorted(directory.glob("*.parquet"))
        keyed = [_key_table(part, index) for index, part in enumerate(parts)]
        journaled = _journal_keys(directory, len(parts)) if dry_run else None
        tables = [t for t in keyed + ([journaled] if journaled is not None else []) if t.num_rows]
        if not tables:
            return report
        con = duckdb.connect()
        con.register("pb_keys", pa.concat_tables(tables))
        key = ", ".join(RESUME_KEY)
        dropped = con.execute(
            f"SELECT pb_file, pb_row, proxy FROM pb_keys QUALIFY row_number() OVER (PARTITION BY {key} "
            "ORDER BY created_at, run_id, pb_file, pb_row) > 1 ORDER BY pb_file, pb_row").fetchall()
        con.close()
        by_file: dict[int, list[int]] = {}
        for file_index, row, proxy in dropped:
            report.removed[proxy] = report.removed.get(proxy, 0) + 1
            by_file.setdefault(file_index, []).append(row)
        for file_index, rows in sorted(by_file.items()):
            if file_index >= len(parts):  # dry run: rows of a journal
                continue
            part = parts[file_index]
            table = pq.read_table(part)
            keep = pc.invert(pc.is_in(pa.array(range(table.num_rows), pa.int64()),
                                      value_set=pa.array(rows, pa.int64())))
            kept = table.filter(keep)
            if kept.num_rows == 0:
                report.parts_deleted.append(part.name)
                if not dry_run:
                    part.unlink()
            else:
                report.parts_rewritten.append(part.name)
                if not dry_run:
                    _write_part_atomically(kept, part)
    return report


def _key_table(part: Path, index: int) -> pa.Table:
    """The resume key, ``created_at`` and ``run_id`` of every row of ``part``, with file and row numbers."""
    check_part(part)
    try:
        table = pq.read_table(part, columns=[*RESUME_KEY, "created_at", "run_id"])
    except (pa.ArrowInvalid, OSError) as exc:
        raise StoreError(f"corrupt Parquet part {part}: {exc}; move it away and rerun repair") from None
    return _numbered(table, index)


def _numbered(table: pa.Table, index: int) -> pa.Table:
    table = table.cast(pa.schema([(n, table.schema.field(n).type if n != "created_at" else
                                   pa.timestamp("us", tz="UTC")) for n in table.column_names]))
    return (table.append_column("pb_file", pa.array([index] * table.num_rows, pa.int64()))
            .append_column("pb_row", pa.array(range(table.num_rows), pa.int64())))


def _journal_keys(directory: Path, index: int) -> pa.Table:
    from proxybench.store.scores import _rows_to_table, read_directory

    _, rows = read_directory(directory)
    table = _rows_to_table(rows, None).select([*RESUME_KEY, "created_at", "run_id"])
    return _numbered(table, index)
