"""The Python steps of ``benchmarks/device_check.sh``: each writes one JSON result, even when it fails.

* ``info`` -- interpreter, torch, CUDA, the GPU, the bundled packages, the registered suites;
* ``agreement`` -- a seeded sample of NB201 isomorphism classes scored on the CPU (several
  processes), then twice on the device with the same seed: per-proxy CPU-vs-device
  agreement (:mod:`proxybench.agreement`) and bit identity of the two device runs, with the
  ops that warned of a missing deterministic kernel (:mod:`proxybench.device`);
* ``rate`` -- architectures per second of a proxy selection on the device, for 1 and N
  worker processes sharing it, measured on a timed sample of isomorphism classes and
  **extrapolated** to the whole space (6,466 classes: with dedup only one member of each is
  computed). The one-worker run stops itself at its deadline; the N-worker sample is sized
  from the one-worker rate so it ends in time even without any speed-up.

Usage: ``python benchmarks/device_steps.py STEP --json PATH [options]`` (see ``--help``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from proxybench.agreement import compare_rows, identical_rows
from proxybench.device import nondeterministic_alerts
from proxybench.proxies.registry import resolve_proxies
from proxybench.scoring import resolve_device, score_architectures
from proxybench.sharding import group_by_class
from proxybench.spaces import get_space
from proxybench.spaces.nb201 import all_archs
from proxybench.store import read_scores

WHOLE_SPACE_ARCHS = 15_625


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def class_sample(n: int, seed: int) -> tuple[list[str], int]:
    """Representatives (first member) of ``n`` seeded NB201 isomorphism classes; and how many classes exist."""
    import random

    space = get_space("nb201")
    classes = group_by_class(list(all_archs()), space.uid)
    picked = random.Random(seed).sample(range(len(classes)), min(n, len(classes)))
    return [classes[i][1][0] for i in picked], len(classes)


def _rows(out: str | Path) -> list[dict[str, Any]]:
    return read_scores(out).to_pylist()


def _finish_times(rows: list[dict[str, Any]]) -> list[float]:
    """Per computed architecture, the time its last row was made (seconds since the epoch), sorted."""
    last: dict[str, float] = {}
    for r in rows:
        if r.get("shared_from") is None:
            t = r["created_at"].timestamp()
            last[r["arch"]] = max(t, last.get(r["arch"], t))
    return sorted(last.values())


def _steady_rate(times: list[float]) -> float | None:
    """Architectures per second between the first and the last finish (start-up excluded)."""
    if len(times) < 3 or times[-1] <= times[0]:
        return None
    return (len(times) - 1) / (times[-1] - times[0])


def _errors_by_proxy(rows: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        if r["status"] == "error":
            e = out.setdefault(r["proxy"], {"rows": 0, "first": r["error"]})
            e["rows"] += 1
    return out


def _deadline_progress(deadline: float) -> Callable[[Iterable[Any], int], Iterator[Any]]:
    """A progress wrapper that ends the engine's loop at ``deadline`` (what was scored is kept)."""
    def wrap(iterable: Iterable[Any], total: int) -> Iterator[Any]:
        for item in iterable:
            if time.monotonic() >= deadline:
                return
            yield item
    return wrap


# ----------------------------------------------------------------------------- info


def step_info(args: argparse.Namespace, save: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    import proxybench

    result: dict[str, Any] = {
        "python": sys.version.split()[0], "executable": sys.executable, "platform": platform.platform(),
        "cpus_available": _cpus(), "torch": torch.__version__, "torch_cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "cuda_available": torch.cuda.is_available(), "proxybench": proxybench.__version__,
        "proxybench_file": proxybench.__file__,
    }
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        result["gpu"] = {"name": p.name, "capability": f"{p.major}.{p.minor}", "memory_gib": p.total_memory / 2**30,
                         "multiprocessors": p.multi_processor_count, "count": torch.cuda.device_count()}
    packages = {}
    for dist, module in (("duckdb", "duckdb"), ("pymoo", "pymoo"), ("ofa", "ofa"),
                         ("imagecorruptions-imaug", "imagecorruptions"), ("numpy", "numpy"), ("scipy", "scipy"),
                         ("pyarrow", "pyarrow"), ("setuptools", "setuptools")):
        try:
            version = metadata.version(dist)
        except metadata.PackageNotFoundError:
            version = None
        spec = importlib.util.find_spec(module)
        packages[dist] = {"version": version, "module": None if spec is None else str(spec.origin)}
    import duckdb  # noqa: F401  -- scoring needs it; fail here, not in a later step
    import pymoo  # noqa: F401

    result["packages"] = packages
    result["suites"] = {s: [p.name for p in resolve_proxies(s)] for s in ("zero-cost", "modern")}
    return result


# ----------------------------------------------------------------------------- agreement


def _score(archs: list[str], out: str, args: argparse.Namespace, device: str, **kwargs: Any) -> float:
    t0 = time.perf_counter()
    score_architectures(archs, proxies=args.proxies, data_dir=args.data_dir, seed=args.seed, device=device,
                        out=out, progress=False, dedup=False, batch_size=args.batch_size, **kwargs)
    return time.perf_counter() - t0


def step_agreement(args: argparse.Namespace, save: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    resolve_device(args.device)  # no device: fail now, not after the CPU reference
    archs, _ = class_sample(args.n, args.seed)
    cpu_workers = max(1, min(args.cpu_workers, _cpus()))
    result: dict[str, Any] = {"archs": len(archs), "seed": args.seed, "device": args.device,
                              "proxies": args.proxies, "cpu_workers": cpu_workers}
    with tempfile.TemporaryDirectory() as tmp:
        result["cpu_seconds"] = _score(archs, f"{tmp}/cpu", args, "cpu", workers=cpu_workers, threads=cpu_workers)
        save(result)
        with nondeterministic_alerts() as alerts:
            result["device_seconds"] = [_score(archs, f"{tmp}/dev{i}", args, args.device) for i in (1, 2)]
        cpu, first, second = _rows(f"{tmp}/cpu"), _rows(f"{tmp}/dev1"), _rows(f"{tmp}/dev2")
    agreement = compare_rows(cpu, first)
    differences = identical_rows(first, second)
    settings = json.loads(first[0]["settings"]) if first else {}
    result.update(
        agreement={k: v.to_dict() for k, v in agreement.items()},
        agree_all=all(a.ok for a in agreement.values()),
        agree_vetted=all(a.ok for a in agreement.values() if a.tolerance.vetted),
        disagreeing=[k for k, a in agreement.items() if not a.ok],
        identical=not differences, differences=differences[:20], n_differences=len(differences),
        nondeterministic_alerts=alerts, determinism=settings.get("determinism"),
        errors_cpu=_errors_by_proxy(cpu), errors_device=_errors_by_proxy(first),
    )
    return result


# ----------------------------------------------------------------------------- rate


def step_rate(args: argparse.Namespace, save: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    specs = resolve_proxies(args.proxies)
    if not specs:
        return {"proxies": args.proxies, "skipped": f"no proxy is registered for '{args.proxies}' yet"}
    resolve_device(args.device)
    started = time.monotonic()
    end = started + args.budget
    archs, n_classes = class_sample(args.sample, args.seed)
    result: dict[str, Any] = {"proxies": args.proxies, "proxy_names": [s.name for s in specs], "device": args.device,
                              "sample_planned": len(archs), "classes_in_space": n_classes,
                              "archs_in_space": WHOLE_SPACE_ARCHS, "budget_s": args.budget, "runs": []}
    workers = sorted({int(w) for w in args.workers.split(",")})
    one_share = args.one_worker_share if len(workers) > 1 else 0.9
    rate_one: float | None = None
    for k, n_workers in enumerate(workers):
        left = end - time.monotonic()
        if left < 15:
            result["runs"].append({"workers": n_workers, "skipped": f"{left:.0f} s of the budget left"})
            continue
        run: dict[str, Any] = {"workers": n_workers}
        with tempfile.TemporaryDirectory() as out:
            t0 = time.perf_counter()
            if n_workers == 1:
                deadline = time.monotonic() + left * (one_share if k < len(workers) - 1 else 0.9)
                with nondeterministic_alerts() as alerts:
                    summary = score_architectures(archs, proxies=args.proxies, data_dir=args.data_dir,
                                                  seed=args.seed, device=args.device, out=out,
                                                  batch_size=args.batch_size, progress=_deadline_progress(deadline))
                run["nondeterministic_alerts"] = alerts
                run["stopped_by_deadline"] = summary.archs_computed < len(archs)
            else:
                # Sized to end in time even if N workers were no faster than one (spawn: ~15 s).
                n = min(len(archs), int((rate_one or 0.0) * max(0.0, left - 20) * 0.8))
                if n < 2 * n_workers:
                    result["runs"].append({"workers": n_workers, "skipped": f"{n} archs would fit in the "
                                           f"{left:.0f} s left at the one-worker rate; {2 * n_workers} needed"})
                    continue
                summary = score_architectures(archs[:n], proxies=args.proxies, data_dir=args.data_dir,
                                              seed=args.seed, device=args.device, out=out,
                                              batch_size=args.batch_size, progress=False, workers=n_workers)
            wall = time.perf_counter() - t0
            rows = _rows(out)
        times = _finish_times(rows)
        steady = _steady_rate(times)
        run.update(archs=summary.archs_computed, wall_s=wall, rows=len(rows), errors=summary.errors,
                   nonfinite=summary.nonfinite, errors_by_proxy=_errors_by_proxy(rows),
                   archs_per_s_wall=summary.archs_computed / wall if wall > 0 else None,
                   archs_per_s_steady=steady)
        if steady:
            run["extrapolated_whole_space_min"] = n_classes / steady / 60
            run["extrapolated_s_per_arch"] = 1 / steady
        per_proxy: dict[str, list[float]] = {}
        for r in rows:
            per_proxy.setdefault(r["proxy"], []).append(r["seconds"])
        run["mean_s_by_proxy"] = {p: sum(v) / len(v) for p, v in sorted(per_proxy.items())}
        if n_workers == 1:
            rate_one = steady or run["archs_per_s_wall"]
        result["runs"].append(run)
        save(result)
    result["extrapolated"] = ("whole-space figures are extrapolated: n_classes / the steady rate measured on the "
                              "timed sample (start-up excluded; with dedup each class is computed once)")
    result["seconds"] = time.monotonic() - started
    return result


STEPS = {"info": step_info, "agreement": step_agreement, "rate": step_rate}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=sorted(STEPS))
    parser.add_argument("--json", required=True, help="write the step's result here")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--proxies", default="zero-cost")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=None, help="proxy batch (default: the preset's, 64)")
    parser.add_argument("--n", type=int, default=48, help="agreement: isomorphism classes")
    parser.add_argument("--cpu-workers", type=int, default=8, help="agreement: processes for the CPU reference")
    parser.add_argument("--sample", type=int, default=200, help="rate: isomorphism classes in the timed sample")
    parser.add_argument("--workers", default="1,4", help="rate: worker counts to time, comma-separated")
    parser.add_argument("--budget", type=float, default=60.0, help="rate: seconds for all its runs")
    parser.add_argument("--one-worker-share", type=float, default=0.5,
                        help="rate: fraction of the budget for the one-worker run")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()

    def save(partial: dict[str, Any]) -> None:
        """Write what is known so far: a step killed at its timeout still leaves its finished parts."""
        done = {"step": args.step, "ok": False, "partial": True, **partial, "step_seconds": time.perf_counter() - t0}
        Path(args.json).write_text(json.dumps(done, indent=2, default=str) + "\n")

    try:
        result = {"step": args.step, "ok": True, **STEPS[args.step](args, save)}
    except BaseException as exc:  # noqa: BLE001 -- recorded in the result file, then the exit code says so
        result = {"step": args.step, "ok": False, "error": f"{type(exc).__name__}: {exc}"[:2000],
                  "traceback": traceback.format_exc()[-4000:]}
    result["step_seconds"] = time.perf_counter() - t0
    Path(args.json).write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k not in ("agreement", "runs", "traceback")},
                     default=str)[:3000])
    if not result["ok"]:
        print(result.get("traceback", ""), file=sys.stderr)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
