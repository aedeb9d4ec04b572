"""CPU thread defaults that survive a shared machine: passive OpenMP waiting, threads = CPUs we may use.

PyTorch's CPU kernels run on an OpenMP pool (GNU libgomp in the official wheels). Between
two parallel regions libgomp's idle threads *spin* (``OMP_WAIT_POLICY`` unset: 300,000 spins,
a fraction of a millisecond) in case work comes soon. An NB201 network at batch 64 is
thousands of tiny kernels, so a proxybench process spends much of its time between regions.
Alone on its cores that spinning costs nothing. But when two such processes share the cores
(a second scoring job, the test suite, a cluster node's neighbour), every spinning thread
occupies a core that the other process's working thread needs, and each process's
kernels wait for preempted threads of their own: measured here, a job became 7.8× slower
beside a second identical job, where a fair share of 2 cores costs 2×.

What :func:`configure` does, once, before torch is imported (so ``import proxybench`` and
the ``proxybench`` command do it first):

* ``OMP_WAIT_POLICY=PASSIVE`` — idle OpenMP threads sleep at once instead of spinning
  (libgomp then also sets its spin count to 0), unless the user set ``OMP_WAIT_POLICY`` or
  ``GOMP_SPINCOUNT`` themselves;
* the default number of torch threads is :func:`available_cpus` — the CPUs this process may
  run on (its affinity mask, e.g. ``taskset`` or a SLURM allocation) capped by a cgroup CPU
  quota (containers, ``docker --cpus``), instead of every core of the machine — unless
  ``OMP_NUM_THREADS`` is set.

``PROXYBENCH_OMP_DEFAULTS=0`` leaves both alone (``benchmarks/contention.py`` uses it to
measure the old behaviour). The measured effect is in the README ("CPU under contention").
A process that imported torch before proxybench keeps torch's own choice of waiting: set
``OMP_WAIT_POLICY=PASSIVE`` in its environment instead.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

__all__ = ["available_cpus", "configure", "default_threads"]

_CONFIGURED: dict[str, str] = {}


def _cgroup_quota(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """CPUs allowed by a cgroup v2 ``cpu.max`` or v1 ``cpu.cfs_quota_us`` quota; None without one."""
    try:
        text = (root / "cpu.max").read_text().split()
        if text and text[0] != "max":
            return int(text[0]) / int(text[1])
    except (OSError, ValueError, IndexError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        if quota > 0 and period > 0:
            return quota / period
    except (OSError, ValueError):
        pass
    return None


def available_cpus(cgroup_root: Path = Path("/sys/fs/cgroup")) -> int:
    """CPUs this process may use: its affinity mask, capped by the cgroup quota (rounded up), at least 1."""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        count = os.cpu_count() or 1
    quota = _cgroup_quota(cgroup_root)
    if quota is not None:
        count = min(count, max(1, math.ceil(quota)))
    return max(1, count)


def default_threads() -> int:
    """torch intra-op threads when the user chose none: ``OMP_NUM_THREADS`` if set, else :func:`available_cpus`."""
    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    if value.isdigit() and int(value) > 0:
        return int(value)
    return available_cpus()


def configure() -> dict[str, str]:
    """Set the environment defaults described above (once); returns what was set.

    Must run before ``torch`` is first imported: libgomp reads its environment when it loads.
    """
    if _CONFIGURED or os.environ.get("PROXYBENCH_OMP_DEFAULTS", "1") == "0":
        return dict(_CONFIGURED)
    if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
        _CONFIGURED["OMP_WAIT_POLICY"] = "PASSIVE"
    if "OMP_NUM_THREADS" not in os.environ:
        threads = str(available_cpus())
        os.environ["OMP_NUM_THREADS"] = threads
        _CONFIGURED["OMP_NUM_THREADS"] = threads
    return dict(_CONFIGURED)
