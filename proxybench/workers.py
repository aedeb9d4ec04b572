"""``workers=N``: one scoring run spread over N spawned processes.

The parent resolves and validates everything (proxies, preset, data, the resume check),
drops the isomorphism classes that are already complete, and deals the others round-robin
to N worker processes (:func:`proxybench.sharding.split_classes`), started with the
``spawn`` method (no forked torch/OpenMP state, same behaviour on Linux and macOS). Each
worker is an ordinary single-process :func:`~proxybench.scoring.score_architectures` run
over its share, with ``torch.set_num_threads(max(1, threads // N))``, its own run id
(``<run>-w<k>of<N>``) and hence its own journal, parts and ``runs/`` file; it builds one
network at a time, so memory per worker is that of a single run. The workers report every
finished architecture on a queue; the parent turns those into one progress bar and adds
the workers' summaries into its own.

Failure: a worker that raises reports the error and the parent stops the others (SIGINT,
so each rolls its journal into a part; SIGTERM after 5 s; a worker takes its first SIGTERM as
SIGINT) and raises it (a :class:`~proxybench.errors.ProxybenchError` keeps its one-line message). A
worker that dies without a word (killed, out of memory) is reported with its exit code.
Workers die with their parent (Linux ``PR_SET_PDEATHSIG``; elsewhere they notice at the
next architecture), so a killed run leaves no orphan writing into OUT behind a rerun. What
every worker journaled survives any kill; rerunning the command resumes it.

As with any ``spawn`` multiprocessing, a *script* that calls
``score_architectures(..., workers=N)`` must do so under ``if __name__ == "__main__":``
(the workers import the main module); the ``proxybench`` command needs nothing.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue as queue_module
import signal
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from proxybench.errors import ProxybenchError, ScoringStoppedError
from proxybench.sharding import split_classes

__all__ = ["run_workers"]

_POLL_S = 0.5


def _die_with_parent(parent_pid: int) -> None:
    """Ask Linux to SIGKILL this process when its parent dies; exit now if it already has."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):  # pragma: no cover - exotic libc
            pass
    if os.getppid() != parent_pid:
        os._exit(1)


def _sigterm_as_interrupt() -> None:
    """The first SIGTERM (SLURM sends it to every process of the job) stops this worker as
    Ctrl-C does, so its writer turns its journal into a part; a second one kills it (the
    parent's ``terminate()`` after its grace period still works)."""

    def on_sigterm(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)


def _worker_main(index: int, archs: list[str], kwargs: dict[str, Any], messages: Any, parent_pid: int) -> None:
    """Body of worker ``index``: score ``archs`` and report progress and the summary on ``messages``."""
    _die_with_parent(parent_pid)
    _sigterm_as_interrupt()

    def report(iterable: Iterable[Any], total: int) -> Iterator[Any]:
        for item in iterable:
            if os.getppid() != parent_pid:  # parent gone (non-Linux): stop between architectures
                raise SystemExit(1)
            yield item
            messages.put(("n", index, 1))

    try:  # the import too: a stop while torch loads is reported like any other (no traceback)
        from proxybench.scoring import score_architectures

        summary = score_architectures(archs, progress=report, **kwargs)
    except BaseException as exc:  # noqa: BLE001 - reported, then this process exits non-zero
        _exiting()
        if isinstance(exc, ScoringStoppedError):  # the parent counts every worker's rows and says it
            messages.put(("stopped", index, exc.problem, exc.fix))
            raise SystemExit(1) from None
        text = str(exc).strip().splitlines()
        messages.put(("error", index, type(exc).__name__, text[0] if text else "", isinstance(exc, ProxybenchError)))
        raise SystemExit(1) from None
    _exiting()
    messages.put(("done", index, summary.to_dict()))


def _exiting() -> None:
    """The worker is done (or failed and reports it): the parent's SIGINT to stop the others must
    not print a traceback from its exit handlers, and its terminate() just ends it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _stop(processes: Sequence[Any], messages: Any, early: bool) -> None:
    """Wait for the workers to exit; when stopping early, interrupt them first (SIGINT).

    An interrupted worker's writer turns its journal into a part; one still alive after
    the grace period is terminated, its journal is recovered by the next run. The queue is
    drained meanwhile, so no worker blocks on a full pipe while exiting.
    """
    if early:
        for process in processes:
            if process.is_alive() and process.pid is not None:
                try:
                    os.kill(process.pid, signal.SIGINT)
                except ProcessLookupError:
                    pass
    deadline = time.monotonic() + (5 if early else 60)
    while any(p.is_alive() for p in processes) and time.monotonic() < deadline:
        try:
            messages.get(timeout=0.05)
        except queue_module.Empty:
            pass
    for process in processes:
        if process.is_alive():
            process.terminate()  # a worker takes its first SIGTERM as SIGINT (a stop between bytecodes)
            process.join(timeout=5)
        if process.is_alive():  # stuck in a long native call: SIGKILL (its journal is recovered)
            process.kill()
        process.join()
    messages.close()


def run_workers(
    groups: Sequence[tuple[str, list[str]]],
    workers: int,
    kwargs: dict[str, Any],
    run_id: str,
    summary: Any,
    progress: bool | Callable[[Iterable[Any], int], Iterable[Any]],
    started: float,
) -> None:
    """Score the architectures of ``groups`` on ``workers`` processes, adding into ``summary``.

    Args:
        groups: ``[(uid, members)]`` still to score (the dedup unit; one arch per group without dedup).
        workers: Number of processes (fewer when there are fewer groups).
        kwargs: Keyword arguments of every worker's ``score_architectures`` call (picklable).
        run_id: The parent's run id; worker ``k`` of ``n`` uses ``<run_id>-w<k>of<n>``.
        summary: The parent's :class:`~proxybench.scoring.ScoreSummary`; counts are added.
        progress: As in ``score_architectures``: tqdm (True), nothing, or a wrapper.
        started: ``time.perf_counter()`` at the start of the run (for ``summary.seconds``).
    """
    shares = [share for share in split_classes(groups, workers) if share]
    total = sum(len(s) for s in shares)
    if not shares:
        summary.workers = 0
        summary.seconds = time.perf_counter() - started
        return
    context = mp.get_context("spawn")
    messages = context.Queue()
    processes = [
        context.Process(
            target=_worker_main, name=f"proxybench-worker-{k}", daemon=True,
            args=(k, share, {**kwargs, "run_id": f"{run_id}-w{k}of{len(shares)}"}, messages, os.getpid()),
        )
        for k, share in enumerate(shares)
    ]
    finished: dict[int, dict[str, Any]] = {}

    def handle(message: tuple[Any, ...]) -> int:
        kind, index = message[0], message[1]
        if kind == "n":
            return int(message[2])
        if kind == "done":
            finished[index] = message[2]
            return 0
        if kind == "stopped":  # rows_saved is counted by score_architectures once every worker stopped
            raise ScoringStoppedError(message[2], kwargs["out"], run_id, 0, fix=message[3])
        _, _, name, text, expected = message
        if expected:
            raise ProxybenchError(text)
        raise ProxybenchError(f"worker {index} failed: {name}: {text}")

    def completed() -> Iterator[int]:
        """One item per architecture a worker finished, until every worker is done."""
        while len(finished) < len(processes):
            try:
                yield from range(handle(messages.get(timeout=_POLL_S)))
            except queue_module.Empty:
                pass
            dead = [k for k, p in enumerate(processes) if k not in finished and not p.is_alive()]
            if not dead:
                continue
            # What a worker sent before it exited is in the pipe already: read on a little.
            until = time.monotonic() + 2 * _POLL_S
            while any(k not in finished for k in dead) and time.monotonic() < until:
                try:
                    yield from range(handle(messages.get(timeout=_POLL_S)))
                except queue_module.Empty:
                    break
            for k in dead:
                if k not in finished:
                    code = processes[k].exitcode
                    hint = (" (a script using workers must call it under if __name__ == '__main__')"
                            if code == 1 else "")
                    raise ProxybenchError(
                        f"worker {k} died (exit code {code}) without finishing; rerun the same command "
                        f"to resume: what it journaled is kept{hint}"
                    )

    for process in processes:
        process.start()
    try:
        drain_with_progress(completed(), total, f"scoring ({len(processes)} workers)", progress)
        if len(finished) < len(processes):  # a progress wrapper stopped early
            raise ProxybenchError("scoring stopped before every worker finished")
    finally:
        _stop(processes, messages, early=len(finished) < len(processes))
    summary.workers = len(processes)
    for k in sorted(finished):
        summary.merge(finished[k])
    summary.seconds = time.perf_counter() - started


def drain_with_progress(
    ticks: Iterable[Any], total: int, desc: str, progress: bool | Callable[[Iterable[Any], int], Iterable[Any]]
) -> None:
    """Consume ``ticks`` (one per finished architecture) behind a tqdm bar, a caller's wrapper, or nothing."""
    iterator: Iterable[Any] = ticks
    if progress is True:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, total=total, unit="arch", desc=desc, file=sys.stderr, dynamic_ncols=True)
    elif callable(progress):
        iterator = progress(iterator, total)
    for _ in iterator:
        pass
