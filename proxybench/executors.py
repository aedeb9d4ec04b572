"""``executor="ray"``: one scoring run distributed over a Ray cluster (``pip install 'proxybench[ray]'``).

It is the worker mechanism of :mod:`proxybench.workers` with Ray tasks in place of local
processes. The parent resolves and validates everything (proxies, preset, data, the
resume check) and drops the isomorphism classes that are already complete; the others are
dealt round-robin (:func:`proxybench.sharding.split_classes`) into *chunks*, and each chunk
is one Ray task (``num_cpus`` = its torch threads) running an ordinary single-process
:func:`~proxybench.scoring.score_architectures` call over its share, with run id
``<run>-c<k>of<n>`` and hence its own journal, parts and ``runs/`` file, one network in
memory at a time.

* **Shared OUT.** The tasks write straight into ``out`` (nothing is shipped back but a
  summary), so ``out`` -- and ``data_dir``, when given -- must be the same path on every
  node: a shared file system on which ``flock`` works across nodes (NFS does, Lustre needs
  the ``flock`` mount option). Relative paths are made absolute in the parent. Every node
  needs proxybench installed (same version) in the Python that runs its Ray workers. The
  tasks never download the dataset: they read it where the parent found it (``data_dir``,
  else ``PROXYBENCH_DATA_DIR``, else the download cache, ``PROXYBENCH_CACHE_DIR`` or
  ``~/.cache/proxybench`` as seen on each node).
* **Chunks.** ``4 × slots`` chunks (slots = the cluster's CPUs // threads per task, read
  when the run starts), never more than there are classes: enough for load balancing
  (a chunk that finishes early frees its slot for the next), few enough that the fixed
  cost of a task (loading the dataset, reading the resume keys of OUT, about half a second
  on a small OUT) stays small. A class never spans two chunks.
* **Progress.** Every task reports each finished architecture to a small actor
  (``num_cpus=0``); the parent polls it and feeds one progress bar, as with workers.
* **Failure.** No automatic retries: a task that raises or dies (killed, out of memory,
  node lost) stops the run with a one-line :class:`~proxybench.errors.ProxybenchError`; the
  parent cancels the other tasks (a running one gets ``KeyboardInterrupt``, so its writer
  turns its journal into a part; still running after 5 s, it is killed and its journal is
  recovered by the next run). What every task journaled survives; rerunning the same
  command resumes it and scores each (architecture, proxy) exactly once. When the driver
  dies, Ray ends the tasks of its job, so no orphan keeps writing behind a rerun.
* **Connection.** ``address`` goes to ``ray.init(address=...)`` (``auto``, ``HOST:PORT``,
  ``ray://HOST:PORT``; ``RAY_ADDRESS`` works too; a ``HOST:PORT`` that does not answer
  fails within seconds); without it a local instance with one CPU per core is started and
  shut down afterwards. A process that is already connected
  (it called ``ray.init``) keeps its connection.
* **Custom proxies.** The proxy specs travel with every task; one that a task's worker
  does not know (registered in the driver, e.g. in a script) is registered there.

Scores are bit-identical to a local run when every task has the same number of torch
threads as the local process(es) (``threads``, default 1 per task).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from proxybench.errors import ProxybenchError
from proxybench.sharding import split_classes
from proxybench.workers import drain_with_progress

__all__ = ["import_ray", "run_ray"]

_POLL_S = 0.5
_CHUNKS_PER_SLOT = 4
_CANCEL_GRACE_S = 5.0
_CONNECT_TIMEOUT_S = 5.0
MISSING_RAY = "--executor ray needs the ray package: pip install 'proxybench[ray]'"


def import_ray() -> Any:
    """The ``ray`` module, or a one-line :class:`ProxybenchError` saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ProxybenchError(MISSING_RAY) from None
    return ray


class _Progress:
    """Ray actor: architectures finished per chunk (tasks add, the parent reads)."""

    def __init__(self) -> None:
        self.done: dict[int, int] = {}

    def add(self, chunk: int, n: int = 1) -> None:
        self.done[chunk] = self.done.get(chunk, 0) + n

    def counts(self) -> dict[int, int]:
        return dict(self.done)


def _ensure_registered(specs: Sequence[Any]) -> None:
    """Register in this (worker) process the proxies of ``specs`` it does not know."""
    from proxybench.proxies.registry import _loaded

    registry = _loaded()
    for spec in specs:
        registry.setdefault(spec.name, spec)


def _chunk_main(
    index: int, archs: list[str], kwargs: dict[str, Any], specs: Sequence[Any], progress: Any,
) -> dict[str, Any]:
    """Body of chunk task ``index``: score ``archs``, report each to ``progress``, return the summary."""
    _ensure_registered(specs)
    from proxybench.scoring import score_architectures

    def report(iterable: Iterable[Any], total: int) -> Iterator[Any]:
        for item in iterable:
            yield item
            progress.add.remote(index, 1)

    return score_architectures(archs, progress=report, **kwargs).to_dict()


def _first_line(text: str) -> str:
    lines = str(text).strip().splitlines()
    return lines[0] if lines else ""


def _task_error(ray: Any, exc: BaseException, index: int) -> ProxybenchError:
    """The one-line error for chunk task ``index`` that failed with ``exc`` (from ``ray.get``)."""
    if isinstance(exc, ray.exceptions.RayTaskError):
        cause = getattr(exc, "cause", None)
        if isinstance(cause, ProxybenchError):
            return ProxybenchError(_first_line(str(cause)))
        if cause is not None:
            return ProxybenchError(f"Ray task {index} failed: {type(cause).__name__}: {_first_line(str(cause))}")
        return ProxybenchError(f"Ray task {index} failed: {_first_line(str(exc))}")
    return ProxybenchError(
        f"Ray task {index} died ({type(exc).__name__}) without finishing; rerun the same command to resume: "
        f"what it journaled is kept"
    )


def _check_reachable(address: str) -> None:
    """Fail in one line, within seconds, when ``HOST:PORT`` does not answer (ray.init would retry for minutes)."""
    host, _, port = address.rpartition(":")
    if address == "auto" or "://" in address or not host or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=_CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise ProxybenchError(
            f"no Ray cluster answers at {address} ({exc.strerror or type(exc).__name__}); "
            f"start one with 'ray start --head' or check --ray-address"
        ) from None


def _connect(ray: Any, address: str | None) -> bool:
    """Connect to Ray unless this process already is; True when this call connected (so shut down after)."""
    if ray.is_initialized():
        return False
    if address is not None:
        _check_reachable(address)
    options: dict[str, Any] = {"logging_level": logging.WARNING, "include_dashboard": False}
    if address is None and not os.environ.get("RAY_ADDRESS"):
        options["num_cpus"] = os.cpu_count() or 1  # a local instance, ended with this run
    try:
        ray.init(address=address, **options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f" at {address}" if address else ""
        raise ProxybenchError(f"cannot connect to Ray{where}: {_first_line(str(exc))}") from None
    return True


def _cancel(ray: Any, refs: Sequence[Any]) -> None:
    """Stop ``refs``: interrupt (KeyboardInterrupt: journals roll into parts), then kill after a grace period."""
    if not refs:
        return
    for ref in refs:
        with contextlib.suppress(Exception):  # already finished or gone
            ray.cancel(ref)
    try:
        _, left = ray.wait(list(refs), num_returns=len(refs), timeout=_CANCEL_GRACE_S)
    except Exception:  # noqa: BLE001
        left = list(refs)
    for ref in left:
        with contextlib.suppress(Exception):
            ray.cancel(ref, force=True)


def run_ray(
    groups: Sequence[tuple[str, list[str]]],
    kwargs: dict[str, Any],
    specs: Sequence[Any],
    run_id: str,
    summary: Any,
    progress: bool | Callable[[Iterable[Any], int], Iterable[Any]],
    started: float,
    *,
    threads: int = 1,
    address: str | None = None,
) -> None:
    """Score the architectures of ``groups`` as Ray tasks, adding into ``summary``.

    Args:
        groups: ``[(uid, members)]`` still to score (the dedup unit; one arch per group without dedup).
        kwargs: Keyword arguments of every task's ``score_architectures`` call (picklable).
        specs: The run's proxy specs (registered in a task's worker when missing there).
        run_id: The parent's run id; chunk ``k`` of ``n`` uses ``<run_id>-c<k>of<n>``.
        summary: The parent's :class:`~proxybench.scoring.ScoreSummary`; counts are added.
        progress: As in ``score_architectures``: tqdm (True), nothing, or a wrapper.
        started: ``time.perf_counter()`` at the start of the run (for ``summary.seconds``).
        threads: torch threads of each task, and the CPUs it asks Ray for.
        address: ``ray.init(address=...)``; None starts (and ends) a local instance.
    """
    ray = import_ray()
    groups = [g for g in groups if g[1]]
    if not groups:
        summary.workers = 0
        summary.seconds = time.perf_counter() - started
        return
    # Tasks run elsewhere: absolute paths, the parent's data folder, and no download races
    # (the parent found or fetched the data, at a path every node sees).
    kwargs = dict(kwargs, threads=threads, out=Path(kwargs["out"]).absolute(), download=False)
    data_dir = kwargs.get("data_dir") or os.environ.get("PROXYBENCH_DATA_DIR")
    if data_dir:
        kwargs["data_dir"] = Path(data_dir).expanduser().absolute()
    connected = _connect(ray, address)
    try:
        slots = max(1, int(ray.cluster_resources().get("CPU", 1)) // threads)
        chunks = [c for c in split_classes(groups, min(len(groups), _CHUNKS_PER_SLOT * slots)) if c]
        _run_chunks(ray, chunks, kwargs, specs, run_id, summary, progress, threads)
    finally:
        if connected:
            ray.shutdown()
    summary.seconds = time.perf_counter() - started


def _run_chunks(
    ray: Any, chunks: list[list[str]], kwargs: dict[str, Any], specs: Sequence[Any], run_id: str, summary: Any,
    progress: bool | Callable[[Iterable[Any], int], Iterable[Any]], threads: int,
) -> None:
    n = len(chunks)
    total = sum(len(c) for c in chunks)
    actor = ray.remote(num_cpus=0)(_Progress).remote()
    task = ray.remote(_chunk_main).options(num_cpus=threads, max_retries=0, name="proxybench-chunk")
    pending = {
        task.remote(k, chunk, {**kwargs, "run_id": f"{run_id}-c{k}of{n}"}, list(specs), actor): k
        for k, chunk in enumerate(chunks)
    }
    finished: dict[int, dict[str, Any]] = {}
    shown = 0

    def completed() -> Iterator[int]:
        """One item per architecture a task finished, until every task is done."""
        nonlocal shown
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=_POLL_S)
            for ref in ready:
                k = pending.pop(ref)
                try:
                    finished[k] = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    raise _task_error(ray, exc, k) from None
            try:
                counts = ray.get(actor.counts.remote(), timeout=10)
            except ray.exceptions.RayError:  # progress is a nicety: fall back to whole chunks
                counts = {}
            now = sum(len(chunks[k]) if k in finished else min(counts.get(k, 0), len(chunks[k]))
                      for k in range(n))
            if now > shown:
                yield from range(now - shown)
                shown = now

    try:
        drain_with_progress(completed(), total, f"scoring ({n} Ray tasks)", progress)
        if pending:  # a progress wrapper stopped early
            raise ProxybenchError("scoring stopped before every Ray task finished")
    finally:
        _cancel(ray, list(pending))
        with contextlib.suppress(Exception):
            ray.kill(actor)
    summary.workers = n
    summary.executor = "ray"
    for k in sorted(finished):
        summary.merge(finished[k])
