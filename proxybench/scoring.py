"""The scoring engine: architectures × proxies → rows of the ``scores`` table.

For every architecture the engine builds the network once under the run's seed
(*common random numbers*: the same seed for every architecture, so a comparison between
two architectures is not a comparison between two random draws), then gives every proxy a
fresh copy prepared as its ``needs`` say (a BN-free copy that shares the conv/linear
weights, float64; with shared passes, proxies that only read the network share one copy),
reseeds torch before each proxy so a proxy's random draws do not depend
on which proxies ran before it, and records one row per proxy: ``ok``, ``nonfinite``
(the value is kept) or ``error`` (the message is kept). Rows go to a
:class:`~proxybench.store.ScoreWriter` after each architecture (with dedup: each
isomorphism class, its copies included), so a crash loses at most the architecture in
flight and ``resume`` continues where a run stopped.

Proxies that need the same pass of the same network share it (``share_passes``,
:mod:`proxybench.proxies.passes`); the scores are bit-identical either way.

**Isomorphism dedup** (``dedup=True``, the default; ``--no-dedup``): architectures with the
same isomorphism key (``space.uid``; NB201: :func:`proxybench.spaces.nb201.arch_uid`, the
benchmark's ``UniqueString`` partition) compute the same function, so each class is scored
once, on its *representative* (the first requested member that is not stored yet), and
every other requested member gets a copy of the representative's rows with
``shared_from`` = the representative's string (NULL on computed rows). Things to know:

* A copy is not an independent draw. Isomorphic strings build networks whose weights are
  drawn in different places (and, for NB201, whose dead edges still hold parameters), so
  without dedup their scores differ by the initialisation noise -- and ``params``/``flops``
  count the dead operations of each string. A copied row carries the representative's
  numbers, batch (``batch_id``: with ``batch_per_arch`` presets, ``zc-nas`` and
  ``suite-zero``, the batch drawn for the representative, not the one the member would
  get), ``seconds``, device and versions; filter ``shared_from IS NULL`` for independent
  rows or compute time.
* ``settings_hash`` (the resume key) does **not** include ``dedup``, and the ``settings``
  column does not record it (the run file does, ``runs/<run>.json``): a computed row is
  the same number with and without dedup, and the per-row fact is ``shared_from``. So
  resume works across the flag: stored rows, computed or copied, count as done either
  way (to get independent rows for isomorphs that were copied, score into a new OUT with
  ``--no-dedup``).
* Resume: a class whose representative is stored but some members are not gets copies of
  the stored rows (read back from the parts and journals; a computed row is preferred,
  then the smallest arch string) without recomputing. A class's rows are written in one
  journal append, so a kill never leaves a representative without its copies for long:
  the next run completes them either way.

**Scale-out**: ``shard=(I, N)`` scores only the classes that
:func:`proxybench.sharding.shard_of` puts into shard ``I``; ``workers=N`` spreads a run's
classes over N spawned processes (:mod:`proxybench.workers`); ``executor="ray"`` runs the
same per-share calls as tasks on a Ray cluster (:mod:`proxybench.executors`; ``out`` on a
shared file system). Every process writes its own journal and parts (run ids differ), so
shards, workers and tasks share one ``out``; the results are the rows of one unsharded
single-process run (network and batch depend only on the seed and the architecture, never
on the order of scoring), bit for bit when every process has the same number of torch
threads.

**Concurrent runs** into one ``out`` (a requeued job, a second terminal, overlapping lists)
cooperate: each class is claimed before it is scored (:mod:`proxybench.store.claims`) and
held until its rows are journaled; a class claimed by a live run is skipped and done at
the end (after waiting for the claim, so nothing is computed twice and nothing a dead run
left undone is lost); a claim that shows another run worked on the class makes the run
re-read the class's stored rows first.
"""

from __future__ import annotations

import copy
import errno
import functools
import hashlib
import json
import math
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from proxybench.batch import ProxyBatch, input_resolution
from proxybench.device import configure_cuda_determinism
from proxybench.errors import ProxybenchError, ScoringInterrupted, ScoringStoppedError
from proxybench.presets import Preset, get_preset
from proxybench.proxies.passes import PassCache, sharing
from proxybench.proxies.registry import ProxySpec, reads_images, resolve_proxies
from proxybench.sharding import group_by_class, parse_shard, select_shard
from proxybench.spaces import SearchSpace, get_space
from proxybench.store import RESUME_KEY, SCORE_COLUMNS, ScoreWriter, stored_keys, stored_rows
from proxybench.store.atomic import not_writable, os_errno, os_reason
from proxybench.store.claims import ClassClaims
from proxybench.store.scores import rows_of_run

__all__ = ["ScoreSummary", "score_architectures", "resolve_device", "settings_hash"]

DEFAULT_OUT = "proxybench-results"
WEIGHTS_INIT = "init"  # PyTorch default initialisation under the run's seed


@dataclass
class ScoreSummary:
    """What a scoring run did; ``str()`` is the one-line summary the CLI prints.

    ``archs_scored`` = ``archs_computed`` (a network was built and scored for it) +
    ``archs_copied`` (every new row is a copy from an isomorph); ``archs_skipped`` had
    nothing left to do. ``rows_written`` includes the ``rows_copied``.
    """

    out: Path
    run_id: str
    archs_requested: int
    archs_scored: int = 0
    archs_skipped: int = 0
    archs_computed: int = 0
    archs_copied: int = 0
    proxies: list[str] = field(default_factory=list)
    rows_written: int = 0
    rows_copied: int = 0
    errors: int = 0
    nonfinite: int = 0
    #: Rows with status error / nonfinite per proxy (only proxies that had any).
    errors_by_proxy: dict[str, int] = field(default_factory=dict)
    nonfinite_by_proxy: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    shard: str | None = None
    workers: int = 1
    executor: str = "local"

    def count_failures(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Add the error and non-finite rows among ``rows`` to the totals and the per-proxy counts."""
        for row in rows:
            if row["status"] == "error":
                self.errors += 1
                self.errors_by_proxy[row["proxy"]] = self.errors_by_proxy.get(row["proxy"], 0) + 1
            elif row["status"] == "nonfinite":
                self.nonfinite += 1
                self.nonfinite_by_proxy[row["proxy"]] = self.nonfinite_by_proxy.get(row["proxy"], 0) + 1

    def _failures(self, count: int, by_proxy: Mapping[str, int], what: str) -> str:
        text = f"{count} {what}"
        if by_proxy:  # in the run's proxy order, so two runs read alike
            order = {name: k for k, name in enumerate(self.proxies)}
            names = sorted(by_proxy, key=lambda name: (order.get(name, len(order)), name))
            text += " (" + ", ".join(f"{name} {by_proxy[name]}" for name in names) + ")"
        return text

    def __str__(self) -> str:
        failures = (f"{self._failures(self.errors, self.errors_by_proxy, 'error' if self.errors == 1 else 'errors')}, "
                    f"{self._failures(self.nonfinite, self.nonfinite_by_proxy, 'non-finite')}")
        notes = []
        if self.archs_copied:
            notes.append(f"{self.archs_computed} computed, {self.archs_copied} copied from an isomorph")
        if self.archs_skipped:
            notes.append(f"{self.archs_skipped} already done")
        detail = f" ({'; '.join(notes)})" if notes else ""
        copied = f" ({self.rows_copied} copied)" if self.rows_copied else ""
        where = f"shard {self.shard}: " if self.shard else ""
        workers = f" with {self.workers} workers" if self.workers > 1 else ""
        if self.executor == "ray" and self.workers:
            workers = f" as {self.workers} Ray tasks"
        return (
            f"{where}scored {self.archs_scored} architectures{detail} x {len(self.proxies)} proxies "
            f"= {self.rows_written} rows{copied}, {failures}, in {self.seconds:.1f} s{workers} -> {self.out / 'scores'}"
        )

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["out"] = str(self.out)
        d["errors_by_proxy"], d["nonfinite_by_proxy"] = dict(self.errors_by_proxy), dict(self.nonfinite_by_proxy)
        return d

    def merge(self, other: Mapping[str, Any]) -> None:
        """Add the counts of another run's :meth:`to_dict` (a worker's) to this one."""
        for name in ("archs_scored", "archs_skipped", "archs_computed", "archs_copied", "rows_written",
                     "rows_copied", "errors", "nonfinite"):
            setattr(self, name, getattr(self, name) + int(other[name]))
        for name in ("errors_by_proxy", "nonfinite_by_proxy"):
            mine = getattr(self, name)
            for proxy_name, count in (other.get(name) or {}).items():
                mine[proxy_name] = mine.get(proxy_name, 0) + int(count)


def resolve_device(device: str | None) -> torch.device:
    """``cpu``, ``cuda`` or ``cuda:N``; a clear error when CUDA is asked for but absent."""
    name = device or "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ProxybenchError(f"device '{name}' requested but CUDA is not available here; use --device cpu")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ProxybenchError(f"unknown device '{name}'; use cpu, cuda or cuda:N") from None


def settings_hash(settings: Mapping[str, Any]) -> str:
    """Stable 16-hex digest of a JSON-able settings mapping (the resume key's settings part)."""
    text = json.dumps(settings, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _prepare_network(
    space: SearchSpace, arch: str, spec: ProxySpec, base: nn.Module, num_classes: int, preset: Preset,
    device: torch.device,
) -> nn.Module:
    """A private copy of ``base`` shaped as the proxy's ``needs`` ask."""
    if "no_bn" in spec.needs:
        net = space.build(arch, num_classes, bn=preset.no_bn)
        missing, _ = net.load_state_dict(base.state_dict(), strict=False)
        if missing:
            raise ProxybenchError(f"BN-free copy of {arch} lacks weights {missing[:3]}: space builder bug")
    else:
        net = copy.deepcopy(base)
    net = net.to(device)
    if "float64" in spec.needs:
        net = net.double()
    net.train()
    return net


def _build_on(space: SearchSpace, arch: str, num_classes: int, device: torch.device, **options: Any) -> nn.Module:
    """``space.build(arch, num_classes, **options)`` on ``device``, in train mode: the ``builder`` need.

    Weights are drawn from torch's global generator at the time of the call, so a proxy that
    builds after the engine's reseed gets the same network on every run.
    """
    return space.build(arch, num_classes, **options).to(device).train()


def _row_status(value: float) -> str:
    return "ok" if math.isfinite(value) else "nonfinite"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:500]


def score_architectures(
    archs: Iterable[str],
    *,
    space: str = "nb201",
    proxies: str | Sequence[str] | None = "zero-cost",
    dataset: str = "cifar10",
    preset: str | None = None,
    seed: int | None = None,
    batch_size: int | None = None,
    device: str | None = "cpu",
    data_dir: str | Path | None = None,
    out: str | Path = DEFAULT_OUT,
    resume: bool = True,
    proxy_settings: Mapping[str, Mapping[str, Any]] | None = None,
    progress: bool | Callable[[Iterable[Any], int], Iterable[Any]] = True,
    download: bool = True,
    threads: int | None = None,
    dedup: bool = True,
    shard: str | Sequence[int] | None = None,
    workers: int = 1,
    run_id: str | None = None,
    share_passes: bool = True,
    executor: str = "local",
    ray_address: str | None = None,
    weights: str | None = None,
    space_options: Mapping[str, Any] | None = None,
    sample: Mapping[str, Any] | None = None,
) -> ScoreSummary:
    """Score ``archs`` with ``proxies`` and append the rows to ``<out>/scores/*.parquet``.

    Args:
        archs: Architecture strings of ``space`` (validated and canonicalised).
        space: Registered search space name.
        proxies: ``"zero-cost"`` (default: the suite of Abdelfattah et al. / NAS-Bench-Suite-Zero),
            ``"modern"``, ``"all"`` (every proxy scored at initialisation, croze and the modern ones
            included; each modern proxy wants its paper's preset), a comma-separated string or a
            list; wildcards work.
        dataset: ``cifar10`` or ``cifar100``; the batch comes from its training split.
        preset: Settings preset (``proxybench`` default, ``zc-nas``, ``suite-zero``).
        seed: Seed of the network initialisation and of the batch draw (preset's when None).
        batch_size: Images per proxy batch (preset's when None).
        device: ``cpu`` or ``cuda[:N]``.
        data_dir: Folder with local datasets (else ``PROXYBENCH_DATA_DIR``, else download).
        out: Results directory.
        resume: Skip (architecture, proxy, settings) already stored under ``out``. With
            ``False`` the results directory must not hold scores yet (with ``shard``: no
            scores of this shard's architectures).
        proxy_settings: Per-proxy setting overrides, merged over the preset's.
        progress: Show a tqdm bar (True), nothing (False), or a wrapper ``(iterable, total)``.
        download: Allow downloading the dataset when no local copy is found.
        threads: torch intra-op threads (default: torch's, one per core). Give each of
            several concurrent runs ``cores / runs``: oversubscribed OpenMP threads spin
            against each other and a run becomes an order of magnitude slower. With
            ``workers`` > 1 each worker gets ``max(1, threads // workers)``.
        dedup: Score each isomorphism class once and copy its rows to the class's other
            requested members (``shared_from`` says from which architecture); see the
            module docstring. ``False`` computes every architecture on its own network.
        shard: ``(I, N)`` or ``"I/N"``: score only the architectures whose isomorphism
            class falls into shard ``I`` of ``N`` (:mod:`proxybench.sharding`). N shards
            may write into the same ``out`` at the same time.
        workers: Processes to split the architectures over (spawned; each writes its own
            parts and holds one network at a time).
        run_id: Id of this run (part and journal names, ``run_id`` column); default: UTC
            time, 6 random hex digits and the shard.
        weights: Weight provider spec (:func:`proxybench.weights.get_weights_provider`):
            ``init`` (default: the seeded initialisation), ``train[:key=value,...]``
            (short training, cached on disk). Applies to every proxy of the run and is
            recorded in the ``weights`` column and the settings (hence the resume key).
            Proxies that need trained weights (``flatnas_r``) refuse ``init``, and are
            given the provider's held-out images instead of the proxy batch.
        share_passes: Let proxies that need the same pass of the same network share it
            (:mod:`proxybench.proxies.passes`: one loss pass for grad_norm, snip, plain and
            fisher, one input Jacobian for jacov and epe_nas). The scores are bit-identical
            either way (tested), so it is not a setting of the rows; ``False`` runs every
            proxy on its own passes, as the reference implementations do.
        executor: ``"local"`` (this process, or ``workers`` processes) or ``"ray"``: the
            classes are dealt into chunks, each scored by a Ray task with ``threads``
            torch threads (default 1) that writes straight into ``out``, which must be a
            shared file system reachable by every node (:mod:`proxybench.executors`).
            Needs ``pip install 'proxybench[ray]'``; ``workers`` must stay 1.
        space_options: Options of the space (:func:`~proxybench.spaces.get_space`), e.g. for
            ``ofa`` ``{"resolutions": [...], "supernet_weights": PATH, "random_init": False}``.
            The configured space's :meth:`~proxybench.spaces.SearchSpace.settings` are part of
            every row's settings (``space_settings``) and of the resume key.
        sample: How ``archs`` were chosen, e.g. ``{"n": 100, "seed": 0}`` for a random sample
            (``proxybench score --sample N --sample-seed S``); recorded in the run record
            (``runs/<run_id>.json``), not in the rows' settings: it picks the architectures,
            not their scores, so rows of one architecture stay one resume key however it was chosen.
        ray_address: With ``executor="ray"``: the cluster to connect to
            (``ray.init(address=...)``); None starts a local Ray instance for this run.
            A process already connected to Ray keeps its connection.

    Returns:
        A :class:`ScoreSummary`.

    Raises:
        ProxybenchError: Unknown space/proxy/preset, malformed architecture, missing data,
            malformed ``shard``, ``resume=False`` on a directory that already holds scores.

    Example:
        >>> score_architectures(get_space("nb201").sample(10, seed=0), proxies="synflow,nwot",
        ...                     data_dir="data", out="results")
    """
    started = time.perf_counter()
    search_space = get_space(space, **dict(space_options or {}))
    canonical = list(dict.fromkeys(search_space.parse(a) for a in archs))
    shard_spec = parse_shard(shard)
    if shard_spec is not None:
        canonical = select_shard(canonical, search_space.uid, shard_spec)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ProxybenchError(f"workers must be a positive integer, got {workers!r}")
    if threads is not None and threads < 1:
        raise ProxybenchError(f"threads must be at least 1, got {threads}")
    if executor not in ("local", "ray"):
        raise ProxybenchError(f"executor must be 'local' or 'ray', got {executor!r}")
    if executor == "ray":
        if workers != 1:
            raise ProxybenchError("--workers is for --executor local; with ray every chunk of classes is a "
                                  "Ray task with --threads CPUs, as many at once as the cluster has room for")
        from proxybench.executors import import_ray

        import_ray()  # a missing package fails before any data is loaded
    elif ray_address is not None:
        raise ProxybenchError("--ray-address needs --executor ray")
    if threads is not None and workers == 1 and executor == "local":
        torch.set_num_threads(threads)
    setup = _prepare(search_space, space, proxies, dataset, preset, seed, batch_size, device, data_dir,
                     proxy_settings, download, weights)
    setup.share_passes = share_passes
    out = Path(out)
    done = stored_keys(out)
    if not resume:
        mine = set(canonical)
        clash = done if shard_spec is None else [k for k in done if k[0] == space and k[1] in mine]
        if clash:
            where = "" if shard_spec is None else f" for architectures of shard {shard_spec[0]}/{shard_spec[1]}"
            raise ProxybenchError(
                f"{out} already holds scores{where}; pass --resume to continue it or choose another --out")
    if run_id is None:
        run_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
        if shard_spec is not None:
            run_id += f"-s{shard_spec[0]}of{shard_spec[1]}"
    if dedup:
        groups = group_by_class(canonical, search_space.uid)
    else:
        groups = [(search_space.uid(a), [a]) for a in canonical]
    shard_text = None if shard_spec is None else f"{shard_spec[0]}/{shard_spec[1]}"
    if progress is True and done:
        already = sum(not setup.missing(a, done) for a in canonical)
        if already:
            print(f"resuming: {already} of {len(canonical)} architectures already scored in {out}",
                  file=sys.stderr)

    try:
        if workers > 1 or executor == "ray":
            setup.source = setup.batches = None  # the workers load their own copy
            pending = [g for g in groups if any(setup.missing(m, done) for m in g[1])]
            summary = ScoreSummary(out=out, run_id=run_id, archs_requested=len(canonical),
                                   proxies=[s.name for s in setup.specs], shard=shard_text, workers=workers,
                                   executor=executor)
            summary.archs_skipped = len(canonical) - sum(len(m) for _, m in pending)
            per_worker = max(1, (threads or torch.get_num_threads()) // workers)
            kwargs = dict(space=space, proxies=[s.name for s in setup.specs], dataset=dataset, preset=preset,
                          seed=seed, batch_size=batch_size, device=device, data_dir=data_dir, out=out, resume=True,
                          proxy_settings={k: dict(v) for k, v in (proxy_settings or {}).items()},
                          download=download, threads=per_worker, dedup=dedup, share_passes=share_passes,
                          weights=weights, space_options=dict(space_options or {}),
                          sample=None if sample is None else dict(sample))
            if executor == "ray":
                from proxybench.executors import run_ray

                run_ray(pending, kwargs, setup.specs, run_id, summary, progress, started, threads=threads or 1,
                        address=ray_address)
            else:
                from proxybench.workers import run_workers

                run_workers(pending, workers, kwargs, run_id, summary, progress, started)
            return summary

        from proxybench import __version__

        run_info = {
            "command": "score", "settings": setup.run_settings,
            "proxies": {k: setup.per_proxy[k] for k in setup.per_proxy},
        "settings_hashes": dict(setup.hashes),
            "data_origin": setup.source.origin, "archs_requested": len(canonical), "dedup": bool(dedup),
            "shard": shard_text, "sample": None if sample is None else dict(sample),
            "proxybench_version": __version__, "torch_version": torch.__version__,
            "torch_threads": torch.get_num_threads(), "started_at": datetime.now(timezone.utc).isoformat(),
        }
        summary = ScoreSummary(out=out, run_id=run_id, archs_requested=len(canonical),
                               proxies=[s.name for s in setup.specs], shard=shard_text)
        common = {
            "space": space, "dataset": dataset, "seed": setup.seed, "batch_size": setup.batch_size,
            "preset": setup.preset.name, "weights": setup.provider.describe(), "device": str(setup.device),
            "proxybench_version": __version__, "torch_version": torch.__version__, "run_id": run_id,
        }
        # Rows already stored that a class's missing members can be copied from.
        sources: dict[tuple[str, str], dict[str, Any]] = {}
        if dedup and done:
            for row in stored_rows(out, set(setup.hashes.values()), {uid for uid, _ in groups}):
                if row["settings_hash"] != setup.hashes.get(row["proxy"]):
                    continue
                key = (row["arch_uid"], row["proxy"])
                if key not in sources or _source_rank(row) < _source_rank(sources[key]):
                    sources[key] = row

        order = [arch for _, members in groups for arch in members]
        group_of = {members[0]: (uid, members) for uid, members in groups}
        iterator: Iterable[str] = order
        if progress is True:
            from tqdm.auto import tqdm

            iterator = tqdm(order, total=len(order), unit="arch", desc="scoring", file=sys.stderr, dynamic_ncols=True)
        elif callable(progress):
            iterator = progress(order, len(order))

        claims = ClassClaims(out, run_id)

        def score_claimed(uid: str, members: list[str], wait: bool) -> bool:
            """Score one class under its claim; False when another live run holds it (and not ``wait``)."""
            hashes = {setup.hashes[s.name] for m in members for s in setup.missing(m, done)}
            claim = None
            if hashes:
                claim = claims.acquire(space, uid, hashes, wait=wait)
                if claim is None:
                    return False
                if claim.stale:  # another run worked on this class: what is stored now, not at start, counts
                    _refresh_class(out, setup, uid, done, sources if dedup else None)
            try:
                rows = _score_class(setup, uid, members, done, sources, common, summary)
                writer.add(rows)
            finally:
                if claim is not None:
                    claim.release()
            summary.rows_written += len(rows)
            summary.count_failures(rows)
            return True

        with ScoreWriter(out, run_id, run_info, requested=canonical) as writer:
            deferred = []
            for arch in iterator:
                if arch not in group_of:  # a later member of a class: handled with its first
                    continue
                uid, members = group_of[arch]
                if not score_claimed(uid, members, wait=False):
                    deferred.append((uid, members))
            if deferred and progress is not False:
                print(f"waiting for {len(deferred)} classes claimed by another live run in {out}; whatever it "
                      "leaves undone is scored here", file=sys.stderr)
            for uid, members in deferred:  # their run finished them meanwhile, is on them now, or died
                score_claimed(uid, members, wait=True)
            summary.seconds = time.perf_counter() - started
            writer.close(summary.to_dict())
        return summary
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM turned into one by the command line
        if isinstance(exc, ScoringInterrupted):  # a worker's, already counted
            raise
        reason = getattr(exc, "reason", None) or "interrupted"
        raise ScoringInterrupted(reason, out, run_id, rows_of_run(out, run_id)) from None
    except OSError as exc:
        raise _write_failure(exc, out, run_id) from None
    except ScoringStoppedError as exc:  # a worker's: count what every worker saved, now that all stopped
        raise ScoringStoppedError(exc.problem, out, run_id, rows_of_run(out, run_id), exc.fix) from None


def _write_failure(exc: OSError, out: Path, run_id: str) -> Exception:
    """The one-line error for an ``OSError`` met while writing into ``out``, or ``exc`` itself.

    A read-only or forbidden folder is a :class:`~proxybench.errors.StoreError` that names it;
    a full disk (or quota) is a :class:`~proxybench.errors.ScoringStoppedError` that says how
    many rows the run saved (they are kept: rerunning the command resumes). Any other error
    is unexpected and keeps its traceback.
    """
    reason, code = os_reason(exc), os_errno(exc)  # pyarrow's errors carry the errno in their text
    if code in (errno.EROFS, errno.EACCES, errno.EPERM):
        return not_writable(out, exc)
    if code in (errno.ENOSPC, errno.EDQUOT):
        return ScoringStoppedError(f"disk full while writing into {out} ({reason})", out, run_id,
                                   rows_of_run(out, run_id), fix="free some space")
    return exc


def _refresh_class(
    out: Path, setup: "_Setup", uid: str, done: set[tuple[str, ...]],
    sources: dict[tuple[str, str], dict[str, Any]] | None,
) -> None:
    """Add the rows stored now for class ``uid`` (by another run since this run's snapshot) to
    ``done`` and, with dedup, to the copy ``sources``."""
    for row in stored_rows(out, set(setup.hashes.values()), {uid}):
        if row["settings_hash"] != setup.hashes.get(row["proxy"]):
            continue
        done.add(tuple(row[c] for c in RESUME_KEY))
        if sources is not None:
            key = (uid, row["proxy"])
            if key not in sources or _source_rank(row) < _source_rank(sources[key]):
                sources[key] = row


def _source_rank(row: Mapping[str, Any]) -> tuple[bool, str]:
    """Which stored row of a class to copy from: a computed one first, then the smallest arch."""
    return (row.get("shared_from") is not None, row["arch"])


@dataclass
class _Setup:
    """What one scoring run resolved from its arguments: proxies, settings, data, hashes."""

    space: SearchSpace
    space_name: str
    dataset: str
    specs: list[ProxySpec]
    preset: Preset
    seed: int
    batch_size: int
    device: torch.device
    per_proxy: dict[str, dict[str, Any]]
    run_settings: dict[str, Any]
    hashes: dict[str, str]
    source: Any
    batches: Any
    share_passes: bool = True
    provider: Any = None
    data_dir: str | Path | None = None
    _held_out: dict[int, ProxyBatch] = field(default_factory=dict)

    def held_out(self, n_images: int) -> ProxyBatch:
        """The provider's held-out images (for proxies that need trained weights), loaded once."""
        if n_images not in self._held_out:
            self._held_out[n_images] = self.provider.held_out_batch(self.dataset, self.data_dir, n_images)
        return self._held_out[n_images]

    def missing(self, arch: str, done: set[tuple[str, ...]]) -> list[ProxySpec]:
        """The proxies whose row for ``arch`` is not stored (the tuple follows RESUME_KEY)."""
        return [s for s in self.specs
                if (self.space_name, arch, self.dataset, s.name, self.hashes[s.name]) not in done]


def _prepare(
    search_space: SearchSpace, space: str, proxies: str | Sequence[str] | None, dataset: str,
    preset: str | None, seed: int | None, batch_size: int | None, device: str | None,
    data_dir: str | Path | None, proxy_settings: Mapping[str, Mapping[str, Any]] | None, download: bool,
    weights: str | None = None,
) -> _Setup:
    from proxybench.data import BatchProvider, NoImages, load_images
    from proxybench.weights import get_weights_provider

    specs = resolve_proxies(proxies)
    provider = get_weights_provider(weights or WEIGHTS_INIT)
    for spec in specs:
        if "trained_weights" in spec.needs and provider.name == WEIGHTS_INIT:
            raise ProxybenchError(
                f"proxy '{spec.name}' needs trained weights; pass --weights train[:epochs=N,optimizer=sgd|sam|asam,...] "
                "or --weights supernet:PATH"
            )
    chosen = get_preset(preset)
    seed = chosen.seed if seed is None else int(seed)
    batch_size = chosen.batch_size if batch_size is None else int(batch_size)
    if batch_size < 1:
        raise ProxybenchError(f"batch size must be at least 1, got {batch_size}")
    torch_device = resolve_device(device)
    # Before any tensor reaches the GPU: cuBLAS reads its workspace setting once (proxybench.device).
    determinism = configure_cuda_determinism() if torch_device.type == "cuda" else None

    overrides: dict[str, dict[str, Any]] = {k: dict(v) for k, v in chosen.proxy_settings.items()}
    for name, values in (proxy_settings or {}).items():
        overrides.setdefault(name, {}).update(values)
    per_proxy = {spec.name: spec.settings(overrides.get(spec.name)) for spec in specs}

    # Only proxies that read images need the dataset: params, flops, synflow, zen, ... run without it, and
    # their rows (settings, hashes, batch ids) are the same as in a run that loaded it (NoImages).
    if any(reads_images(spec, per_proxy[spec.name]) for spec in specs):
        source = load_images(dataset, "train", data_dir=data_dir, download=download)
    else:
        source = NoImages(dataset, "train")
    batches = BatchProvider(source, chosen, seed=seed, batch_size=batch_size)
    # What changes the numbers goes into the settings (and their hash, the resume key);
    # where the files were found does not, but is recorded in the run file. Neither do
    # dedup, shard and workers: they change which computation a row comes from, never the
    # numbers of a computed row (see the module docstring).
    data_settings = {k: v for k, v in batches.settings().items() if k not in ("data_origin", "data_layout")}
    run_settings = {
        "space": space, "dataset": dataset, "seed": seed, "batch_size": batch_size,
        "preset": chosen.name, "no_bn": chosen.no_bn, "data": data_settings,
        "weights": provider.describe(), "device": str(torch_device),
    }
    if provider.settings:  # init has none; leaving the key out keeps init scores' hashes as they were
        run_settings["weights_settings"] = dict(provider.settings)
    if search_space.settings():  # likewise for spaces without options (nb201)
        run_settings["space_settings"] = search_space.settings()
    if torch_device.type == "cuda":  # what makes CUDA scores reproducible; CPU hashes stay as they were
        run_settings["determinism"] = determinism
    hashes = {
        spec.name: settings_hash({**run_settings, "proxy": spec.name, "proxy_settings": per_proxy[spec.name],
                                  "dtype": _dtype_of(spec)})
        for spec in specs
    }
    return _Setup(space=search_space, space_name=space, dataset=dataset, specs=specs, preset=chosen, seed=seed,
                  batch_size=batch_size, device=torch_device, per_proxy=per_proxy, run_settings=run_settings,
                  hashes=hashes, source=source, batches=batches, provider=provider, data_dir=data_dir)


def _score_class(
    setup: _Setup,
    uid: str,
    members: Sequence[str],
    done: set[tuple[str, ...]],
    sources: dict[tuple[str, str], dict[str, Any]],
    common: Mapping[str, Any],
    summary: ScoreSummary,
) -> list[dict[str, Any]]:
    """Rows for the missing (member, proxy) pairs of one class (of one arch without dedup).

    A proxy with a stored row in the class is copied from it; the others are computed once
    on the representative (the first member, in the requested order, that lacks all of
    them) and copied to the other members that lack them.
    """
    missing = {m: setup.missing(m, done) for m in members}
    needed = [s for s in setup.specs if any(s in missing[m] for m in members)]
    to_compute = [s for s in needed if (uid, s.name) not in sources]
    rows: list[dict[str, Any]] = []
    computed: dict[str, set[str]] = {}

    def compute(arch: str, specs: list[ProxySpec]) -> list[dict[str, Any]]:
        new = _score_one(setup.space, arch, specs, setup.batches, setup.source.num_classes, setup.preset,
                         setup.seed, setup.device, setup.per_proxy, setup.hashes, common=common,
                         run_settings=setup.run_settings, share_passes=setup.share_passes, setup=setup)
        computed[arch] = {s.name for s in specs}
        rows.extend(new)
        return new

    if to_compute:
        rep = next((m for m in members if all(s in missing[m] for s in to_compute)), None)
        if rep is not None:
            for row in compute(rep, to_compute):
                sources[(uid, row["proxy"])] = row
        else:  # the store changed under us (another process wrote into this class): no copies
            for m in members:
                mine = [s for s in to_compute if s in missing[m]]
                if mine:
                    compute(m, mine)
    now = datetime.now(timezone.utc)
    for m in members:
        for spec in missing[m]:
            if spec.name in computed.get(m, ()):
                continue
            source = sources[(uid, spec.name)]
            rows.append({**{name: source.get(name) for name in SCORE_COLUMNS}, "arch": m,
                         "shared_from": source.get("shared_from") or source["arch"],
                         "run_id": common["run_id"], "created_at": now})
            summary.rows_copied += 1
    for m in members:
        summary.archs_scored += bool(m in computed or missing[m])
        if m in computed:
            summary.archs_computed += 1
        elif missing[m]:
            summary.archs_copied += 1
        else:
            summary.archs_skipped += 1
    # Computed rows are only kept as sources within their class: memory stays bounded.
    for spec in needed:
        sources.pop((uid, spec.name), None)
    return rows


def _dtype_of(spec: ProxySpec) -> str:
    return "float64" if "float64" in spec.needs else "float32"


def _score_one(
    space: SearchSpace,
    arch: str,
    specs: Sequence[ProxySpec],
    batches: Any,
    num_classes: int,
    preset: Preset,
    seed: int,
    device: torch.device,
    per_proxy: Mapping[str, Mapping[str, Any]],
    hashes: Mapping[str, str],
    common: Mapping[str, Any],
    run_settings: Mapping[str, Any],
    share_passes: bool = True,
    setup: _Setup | None = None,
) -> list[dict[str, Any]]:
    batch, batch_id = batches.batch_for(arch)
    resolution = input_resolution(space, arch)  # OFA: the architecture's own input size
    batch = batch.to(device).resized(resolution)
    torch.manual_seed(seed)
    base = space.build(arch, num_classes)
    uid = space.uid(arch)
    provider = setup.provider if setup is not None else None
    weights_error = None
    if provider is not None and provider.name != WEIGHTS_INIT:
        try:  # a failed training is recorded in every row of the architecture; the run goes on
            base = provider.prepare(base, arch, space, setup.dataset, data_dir=setup.data_dir, seed=seed,
                                    device=device)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:
            weights_error = f"weights {provider.describe()}: {_first_line(exc)}"
    rows = []
    # One cache per architecture and batch: proxies that need the same pass of the same
    # network (same BatchNorm variant and dtype) compute it once (proxybench.proxies.passes).
    cache = PassCache(wanted={p for spec in specs for p in spec.passes}) if share_passes else None
    # With shared passes, proxies that only read the network (ProxySpec.shares_network) share
    # one prepared copy per variant; the others, and every proxy without sharing, get their own.
    shared_nets: dict[tuple[Any, ...], nn.Module] = {}
    for spec in specs:
        settings = per_proxy[spec.name]
        dtype = _dtype_of(spec)
        error = None
        started = time.perf_counter()
        row_batch_id = batch_id
        try:
            if weights_error is not None:
                raise ProxybenchError(weights_error)
            variant = (spec.needs & {"no_bn", "float64"}, dtype)
            if cache is not None and spec.shares_network:
                if variant not in shared_nets:
                    shared_nets[variant] = _prepare_network(space, arch, spec, base, num_classes, preset, device)
                net = shared_nets[variant]
            else:
                net = _prepare_network(space, arch, spec, base, num_classes, preset, device)
            proxy_batch: ProxyBatch = batch.to(dtype=torch.float64) if dtype == "float64" else batch
            if "trained_weights" in spec.needs and setup is not None:
                n_images = int(settings.get("eval_images", batch.size))
                proxy_batch = setup.held_out(n_images).to(device).resized(resolution)
                row_batch_id = f"held-out:{n_images}"
            call_settings = dict(settings)
            if "builder" in spec.needs:  # the proxy builds networks of its own from the architecture
                call_settings["builder"] = functools.partial(_build_on, space, arch, num_classes, device)
            torch.manual_seed(seed)
            if cache is None:
                value = float(spec.fn(net, proxy_batch, **call_settings))
            else:
                with sharing(cache, variant=variant):
                    value = float(spec.fn(net, proxy_batch, **call_settings))
            status = _row_status(value)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # recorded in the row, the run goes on
            value, status, error = float("nan"), "error", _first_line(exc)
        seconds = time.perf_counter() - started
        rows.append(
            {
                **common,
                "arch": arch,
                "arch_uid": uid,
                "proxy": spec.name,
                "score": value,
                "status": status,
                "error": error,
                "higher_is_better": spec.higher_is_better,
                "batch_id": row_batch_id,
                "settings": json.dumps({**run_settings, "proxy_settings": dict(settings)}, sort_keys=True,
                                       default=str),
                "settings_hash": hashes[spec.name],
                "dtype": dtype,
                "seconds": seconds,
                "created_at": datetime.now(timezone.utc),
                "shared_from": None,
            }
        )
    return rows

