"""CPU thread defaults: passive OpenMP waiting and threads from the CPUs the process may use."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from proxybench._threads import available_cpus


def _child(env: dict[str, str]) -> list[str]:
    code = ("import os, proxybench, torch; "
            "print(os.environ.get('OMP_WAIT_POLICY'), os.environ.get('OMP_NUM_THREADS'), torch.get_num_threads())")
    clean = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS",
                                                                "PROXYBENCH_OMP_DEFAULTS")}
    done = subprocess.run([sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True,
                          check=True)
    return done.stdout.split()


def test_cgroup_quota_caps_the_affinity_count(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")  # 1.5 CPUs -> 2
    assert available_cpus(tmp_path) == min(2, len(os.sched_getaffinity(0)))
    (tmp_path / "cpu.max").write_text("50000 100000\n")  # half a CPU -> still 1 thread
    assert available_cpus(tmp_path) == 1
    (tmp_path / "cpu.max").write_text("max 100000\n")  # no quota: the affinity mask decides
    assert available_cpus(tmp_path) == len(os.sched_getaffinity(0))


def test_cgroup_v1_quota(tmp_path):
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("100000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert available_cpus(tmp_path) == 1


@pytest.mark.slow  # each case imports torch in a fresh interpreter
@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="affinity masks are Linux-only")
def test_importing_proxybench_sets_passive_waiting_and_the_affinity_thread_count():
    policy, threads, torch_threads = _child({})
    assert policy == "PASSIVE" and threads == torch_threads == str(available_cpus())
    # a process pinned to one CPU (taskset, a SLURM allocation) gets one thread, not one per core
    code = ("import os; os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]}); import proxybench, torch; "
            "print(torch.get_num_threads())")
    clean = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    pinned = subprocess.run([sys.executable, "-c", code], env=clean, capture_output=True, text=True, check=True)
    assert pinned.stdout.split() == ["1"]


@pytest.mark.slow
def test_a_users_own_settings_and_the_opt_out_are_respected():
    assert _child({"OMP_WAIT_POLICY": "ACTIVE", "OMP_NUM_THREADS": "1"}) == ["ACTIVE", "1", "1"]
    assert _child({"GOMP_SPINCOUNT": "1000"})[0] == "None"
    assert _child({"PROXYBENCH_OMP_DEFAULTS": "0"})[:2] == ["None", "None"]
