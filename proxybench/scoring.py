"""The scoring engine: architectures × proxies → rows of the ``scores`` table.

For every architecture the engine builds the network once under the run's seed
(*common random numbers*: the same seed for every architecture, so a comparison between
two architectures is not a comparison between two random draws), then gives every proxy a
fresh copy prepared as its ``needs`` say (a BN-free copy that shares the conv/linear
weights, float64), reseeds torch before each proxy so a proxy's random draws do not depend
on which proxies ran before it, and records one row per proxy: ``ok``, ``nonfinite``
(the value is kept) or ``error`` (the message is kept). Rows go to a
:class:`~proxybench.store.ScoreWriter` after each architecture, so a crash loses at most
the architecture in flight and ``resume`` continues where a run stopped.

This is the simple engine (each proxy runs its own passes). Grouping proxies by shared
passes and deduplicating isomorphic architectures belong to the speed work.
"""

from __future__ import annotations

import copy
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

from proxybench.batch import ProxyBatch
from proxybench.errors import ProxybenchError
from proxybench.presets import Preset, get_preset
from proxybench.proxies.registry import ProxySpec, resolve_proxies
from proxybench.spaces import SearchSpace, get_space
from proxybench.store import ScoreWriter, stored_keys

__all__ = ["ScoreSummary", "score_architectures", "resolve_device", "settings_hash"]

DEFAULT_OUT = "proxybench-results"
WEIGHTS_INIT = "init"  # PyTorch default initialisation under the run's seed


@dataclass
class ScoreSummary:
    """What a scoring run did; ``str()`` is the one-line summary the CLI prints."""

    out: Path
    run_id: str
    archs_requested: int
    archs_scored: int = 0
    archs_skipped: int = 0
    proxies: list[str] = field(default_factory=list)
    rows_written: int = 0
    errors: int = 0
    nonfinite: int = 0
    seconds: float = 0.0

    def __str__(self) -> str:
        failures = f"{self.errors} errors, {self.nonfinite} non-finite"
        skipped = f" ({self.archs_skipped} already done)" if self.archs_skipped else ""
        return (
            f"scored {self.archs_scored} architectures{skipped} x {len(self.proxies)} proxies "
            f"= {self.rows_written} rows, {failures}, in {self.seconds:.1f} s -> {self.out / 'scores'}"
        )

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["out"] = str(self.out)
        return d


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


def _row_status(value: float) -> str:
    return "ok" if math.isfinite(value) else "nonfinite"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:500]


def score_architectures(
    archs: Iterable[str],
    *,
    space: str = "nb201",
    proxies: str | Sequence[str] | None = "all",
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
) -> ScoreSummary:
    """Score ``archs`` with ``proxies`` and append the rows to ``<out>/scores/*.parquet``.

    Args:
        archs: Architecture strings of ``space`` (validated and canonicalised).
        space: Registered search space name.
        proxies: ``"all"`` (the zero-cost suite), a comma-separated string or a list; wildcards work.
        dataset: ``cifar10`` or ``cifar100``; the batch comes from its training split.
        preset: Settings preset (``proxybench`` default, ``zc-nas``, ``suite-zero``).
        seed: Seed of the network initialisation and of the batch draw (preset's when None).
        batch_size: Images per proxy batch (preset's when None).
        device: ``cpu`` or ``cuda[:N]``.
        data_dir: Folder with local datasets (else ``PROXYBENCH_DATA_DIR``, else download).
        out: Results directory.
        resume: Skip (architecture, proxy, settings) already stored under ``out``. With
            ``False`` the results directory must not hold scores yet.
        proxy_settings: Per-proxy setting overrides, merged over the preset's.
        progress: Show a tqdm bar (True), nothing (False), or a wrapper ``(iterable, total)``.
        download: Allow downloading the dataset when no local copy is found.
        threads: torch intra-op threads (default: torch's, one per core). Give each of
            several concurrent runs ``cores / runs``: oversubscribed OpenMP threads spin
            against each other and a run becomes an order of magnitude slower.

    Returns:
        A :class:`ScoreSummary`.

    Raises:
        ProxybenchError: Unknown space/proxy/preset, malformed architecture, missing data,
            ``resume=False`` on a directory that already holds scores.

    Example:
        >>> score_architectures(get_space("nb201").sample(10, seed=0), proxies="synflow,nwot",
        ...                     data_dir="data", out="results")
    """
    from proxybench import __version__
    from proxybench.data import BatchProvider, load_images

    started = time.perf_counter()
    search_space = get_space(space)
    canonical = list(dict.fromkeys(search_space.parse(a) for a in archs))
    specs = resolve_proxies(proxies)
    for spec in specs:
        if "trained_weights" in spec.needs:
            raise ProxybenchError(
                f"proxy '{spec.name}' needs trained weights, which this scoring run does not provide"
            )
    chosen = get_preset(preset)
    seed = chosen.seed if seed is None else int(seed)
    batch_size = chosen.batch_size if batch_size is None else int(batch_size)
    if batch_size < 1:
        raise ProxybenchError(f"batch size must be at least 1, got {batch_size}")
    torch_device = resolve_device(device)
    out = Path(out)
    if threads is not None:
        if threads < 1:
            raise ProxybenchError(f"threads must be at least 1, got {threads}")
        torch.set_num_threads(threads)

    overrides: dict[str, dict[str, Any]] = {k: dict(v) for k, v in chosen.proxy_settings.items()}
    for name, values in (proxy_settings or {}).items():
        overrides.setdefault(name, {}).update(values)
    per_proxy = {spec.name: spec.settings(overrides.get(spec.name)) for spec in specs}

    source = load_images(dataset, "train", data_dir=data_dir, download=download)
    batches = BatchProvider(source, chosen, seed=seed, batch_size=batch_size)
    # What changes the numbers goes into the settings (and their hash, the resume key);
    # where the files were found does not, but is recorded in the run file.
    data_settings = {k: v for k, v in batches.settings().items() if k not in ("data_origin", "data_layout")}
    run_settings = {
        "space": space, "dataset": dataset, "seed": seed, "batch_size": batch_size,
        "preset": chosen.name, "no_bn": chosen.no_bn, "data": data_settings,
        "weights": WEIGHTS_INIT, "device": str(torch_device),
    }
    hashes = {
        spec.name: settings_hash({**run_settings, "proxy": spec.name, "proxy_settings": per_proxy[spec.name],
                                  "dtype": _dtype_of(spec)})
        for spec in specs
    }
    done = stored_keys(out)
    if done and not resume:
        raise ProxybenchError(f"{out} already holds scores; pass --resume to continue it or choose another --out")

    run_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    run_info = {
        "command": "score", "settings": run_settings, "proxies": {k: per_proxy[k] for k in per_proxy},
        "data_origin": source.origin, "archs_requested": len(canonical),
        "proxybench_version": __version__, "torch_version": torch.__version__,
        "torch_threads": torch.get_num_threads(), "started_at": datetime.now(timezone.utc).isoformat(),
    }
    summary = ScoreSummary(out=out, run_id=run_id, archs_requested=len(canonical), proxies=[s.name for s in specs])
    iterator: Iterable[str] = canonical
    if progress is True:
        from tqdm.auto import tqdm

        iterator = tqdm(canonical, total=len(canonical), unit="arch", desc="scoring", file=sys.stderr,
                        dynamic_ncols=True)
    elif callable(progress):
        iterator = progress(canonical, len(canonical))

    with ScoreWriter(out, run_id, run_info) as writer:
        for arch in iterator:
            # The tuple follows proxybench.store.RESUME_KEY.
            todo = [s for s in specs if (space, arch, dataset, s.name, hashes[s.name]) not in done]
            if not todo:
                summary.archs_skipped += 1
                continue
            rows = _score_one(
                search_space, arch, todo, batches, source.num_classes, chosen, seed, torch_device,
                per_proxy, hashes,
                common={
                    "space": space, "dataset": dataset, "seed": seed, "batch_size": batch_size,
                    "preset": chosen.name, "weights": WEIGHTS_INIT, "device": str(torch_device),
                    "proxybench_version": __version__, "torch_version": torch.__version__, "run_id": run_id,
                },
                run_settings=run_settings,
            )
            writer.add(rows)
            summary.archs_scored += 1
            summary.rows_written += len(rows)
            summary.errors += sum(r["status"] == "error" for r in rows)
            summary.nonfinite += sum(r["status"] == "nonfinite" for r in rows)
        summary.seconds = time.perf_counter() - started
        writer.close(summary.to_dict())
    return summary


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
) -> list[dict[str, Any]]:
    batch, batch_id = batches.batch_for(arch)
    batch = batch.to(device)
    torch.manual_seed(seed)
    base = space.build(arch, num_classes)
    uid = space.uid(arch)
    rows = []
    for spec in specs:
        settings = per_proxy[spec.name]
        dtype = _dtype_of(spec)
        error = None
        started = time.perf_counter()
        try:
            net = _prepare_network(space, arch, spec, base, num_classes, preset, device)
            proxy_batch: ProxyBatch = batch.to(dtype=torch.float64) if dtype == "float64" else batch
            torch.manual_seed(seed)
            value = float(spec.fn(net, proxy_batch, **settings))
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
                "batch_id": batch_id,
                "settings": json.dumps({**run_settings, "proxy_settings": dict(settings)}, sort_keys=True,
                                       default=str),
                "settings_hash": hashes[spec.name],
                "dtype": dtype,
                "seconds": seconds,
                "created_at": datetime.now(timezone.utc),
            }
        )
    return rows

