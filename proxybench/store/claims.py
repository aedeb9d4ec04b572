"""Claims on isomorphism classes: runs that share a results directory never compute a class twice.

Two runs of one command into one ``OUT`` (a requeued SLURM job, a second terminal, two
shards given overlapping lists) used to compute everything twice: each took its snapshot of
the stored rows at start and scored whatever that snapshot lacked. Now a run *claims* a
class before it computes it (or copies rows into it), and holds the claim until the rows
are durable in its journal:

* ``OUT/claims/<digest>.claim``, one file per class (a digest of space and ``arch_uid``),
  ``flock``-ed exclusively by the run working on the class (the machinery of the journal
  and run locks, :mod:`proxybench.store.scores`; on a cluster file system ``flock`` must
  work across nodes). A claim held by a dead process is released by the kernel, so it is
  taken over by the next run that asks: there is nothing to clean up.
* A run that finds a class claimed by a live run skips it and comes back to it after its
  other classes, then waits for the claim: if the other run finished the class meanwhile
  there is nothing left to do; if it died, this run computes what it lacks.
* Each claim appends one line, ``<run_id> <settings_hash,...>``, to the file (fsync-ed
  before the computation starts). When a run takes a claim whose file names one of its
  settings hashes under another run's id, the class may have rows that the run's snapshot
  of the store does not hold: the caller re-reads the class's stored rows
  (:attr:`Claim.stale`) before deciding what is missing. A file whose lines name none of
  them (another proxy set, another dataset) costs nothing.

Claims are per class, not per (class, settings): runs with different settings that reach
the same class at the same moment take turns on it, which costs them nothing but order.
The files are tiny and stay (one per class ever scored); deleting ``OUT/claims`` while no
run is live is safe.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Collection
from pathlib import Path
from typing import IO

from proxybench.store.atomic import not_writable

__all__ = ["Claim", "ClassClaims"]


class Claim:
    """An exclusive claim on one class, held until :meth:`release`."""

    def __init__(self, handle: IO[bytes], stale: bool) -> None:
        self._handle: IO[bytes] | None = handle
        #: Another run has claimed this class for one of the asked settings hashes before: rows
        #: may exist that the caller's snapshot of the store lacks; re-read them first.
        self.stale = stale

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None

    def __enter__(self) -> "Claim":
        return self

    def __exit__(self, *_: object) -> None:
        self.release()


class ClassClaims:
    """The claims of run ``run_id`` under results directory ``out`` (see the module docstring)."""

    def __init__(self, out: str | os.PathLike[str], run_id: str) -> None:
        self.directory = Path(out) / "claims"
        self.run_id = run_id
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise not_writable(out, exc) from None

    def path(self, space: str, uid: str) -> Path:
        digest = hashlib.sha256(f"{space}\0{uid}".encode()).hexdigest()[:32]
        return self.directory / f"{digest}.claim"

    def acquire(self, space: str, uid: str, hashes: Collection[str], wait: bool) -> Claim | None:
        """Claim class ``uid`` of ``space`` for computing rows with ``hashes``.

        Args:
            space: Space name.
            uid: The class key (``arch_uid``).
            hashes: Settings hashes of the rows the caller is about to write.
            wait: Block until a live run holding the claim releases it; otherwise return None.

        Returns:
            The claim, or None when another live run holds it and ``wait`` is False.
        """
        handle = open(self.path(space, uid), "a+b")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            handle.close()
            return None
        try:
            handle.seek(0)
            wanted = set(hashes)
            stale = False
            for line in handle.read().decode("utf-8", errors="replace").splitlines():
                run, _, listed = line.partition(" ")
                if run != self.run_id and wanted & set(listed.split(",")):
                    stale = True
                    break
            handle.write(f"{self.run_id} {','.join(sorted(wanted))}\n".encode())
            handle.flush()
            os.fsync(handle.fileno())
        except BaseException:
            handle.close()
            raise
        return Claim(handle, stale)
