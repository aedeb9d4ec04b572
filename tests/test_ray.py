"""``--executor ray``: the rows of a local run, one-line errors, and nothing lost or doubled after a dead task.

Runs against a real local Ray instance (2 CPUs). Skipped only when ray is not installed
and ``PROXYBENCH_REQUIRE_SHARED`` is unset; CI installs ``.[test]`` (which includes ray) and
sets it, so there these tests always run.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from builders import ISO, OTHERS, journal_lines
from click.testing import CliRunner
from proxybench_cli.main import cli

from proxybench.errors import ProxybenchError
from proxybench.proxies import registry
from proxybench.scoring import score_architectures
from proxybench.spaces import get_space
from proxybench.store import read_scores, stored_keys

try:
    import ray
except ImportError:  # pragma: no cover - CI installs it
    ray = None

PROXIES = "params,synflow"
MISSING = "Error: --executor ray needs the ray package: pip install 'proxybench[ray]'\n"


@pytest.fixture(scope="module")
def ray_address() -> str:
    """A local Ray instance for this module's tests; its address."""
    if ray is None:
        message = "ray is not installed: pip install 'proxybench[ray]'"
        if os.environ.get("PROXYBENCH_REQUIRE_SHARED") == "1":
            pytest.fail(message)
        pytest.skip(message)
    context = ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    # The test proxies below live in this module, which Ray's workers cannot import: ship them by value.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield context.address_info["address"]
    ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    ray.shutdown()


def run(archs, out, data_dir, **kwargs):
    kwargs.setdefault("progress", False)
    return score_architectures(archs, proxies=kwargs.pop("proxies", PROXIES), data_dir=data_dir, batch_size=8,
                               out=out, threads=1, **kwargs)


def rows_by_key(out):
    return {(r["arch"], r["proxy"]): r for r in read_scores(out).to_pylist()}


def test_ray_run_gives_the_rows_of_a_local_run(tmp_path, data_dir, ray_address):
    archs = ISO + OTHERS[:5]
    local = run(archs, tmp_path / "local", data_dir)
    seen = []

    def progress(iterable, total):
        seen.append(total)
        for item in iterable:
            seen.append(item)
            yield item

    remote = run(archs, tmp_path / "ray", data_dir, executor="ray", progress=progress)
    assert seen[0] == len(archs) and len(seen) == 1 + len(archs)  # one tick per architecture
    assert remote.executor == "ray" and f"as {remote.workers} Ray tasks" in str(remote)
    for name in ("archs_scored", "archs_computed", "archs_copied", "rows_written", "rows_copied", "errors"):
        assert getattr(local, name) == getattr(remote, name), name
    a, b = rows_by_key(tmp_path / "local"), rows_by_key(tmp_path / "ray")
    assert a.keys() == b.keys() and len(a) == len(archs) * 2
    for key in a:  # bit for bit: same seed, same batch, one torch thread on both sides
        assert (a[key]["score"], a[key]["shared_from"]) == (b[key]["score"], b[key]["shared_from"]), key
    n = remote.workers
    assert n == 6  # 6 classes, 4 chunks per slot x 2 slots: one class per task
    assert {r["run_id"].rsplit("-", 1)[1] for r in b.values()} == {f"c{k}of{n}" for k in range(n)}
    again = run(archs, tmp_path / "ray", data_dir, executor="ray")
    assert again.archs_skipped == len(archs) and again.workers == 0  # no task started


def _die_at_call(net, batch, marker: str = "", at: int = 0) -> float:
    """Test proxy: while MARKER exists, the AT-th call (over all processes) kills its process."""
    if marker and os.path.exists(marker):
        with open(marker, "a") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            fh.write("x")
            fh.flush()
            if os.path.getsize(marker) == at:
                os._exit(1)
    return 0.0


def test_a_task_that_dies_stops_the_run_and_a_rerun_completes_it(tmp_path, data_dir, ray_address, monkeypatch):
    # Registered in this process only: the spec travels with the tasks (proxybench.executors).
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._loaded()))
    registry.proxy("die_at_call", higher_is_better=True, paper="test", marker="", at=0)(_die_at_call)
    marker = tmp_path / "marker"
    marker.write_text("")
    archs = ISO + OTHERS  # 8 classes: 8 tasks, 2 at a time
    out = tmp_path / "out"
    settings = {"die_at_call": {"marker": str(marker), "at": 4}}
    with pytest.raises(ProxybenchError) as failed:
        run(archs, out, data_dir, proxies=f"{PROXIES},die_at_call", executor="ray", proxy_settings=settings)
    message = str(failed.value)
    assert "\n" not in message and message.startswith("Ray task ") and "died" in message, message
    partial = len(stored_keys(out))
    assert 0 < partial < len(archs) * 3

    marker.unlink()  # the same command again, with nothing to kill it
    done = run(archs, out, data_dir, proxies=f"{PROXIES},die_at_call", executor="ray", proxy_settings=settings)
    assert done.archs_scored + done.archs_skipped == len(archs) and done.errors == 0
    counts = Counter((r["arch"], r["proxy"]) for r in read_scores(out).to_pylist())
    assert len(counts) == len(archs) * 3 and set(counts.values()) == {1}
    assert not list((out / "scores").glob("journal-*"))


class _Escape(BaseException):
    """Not an Exception: a proxy raising it is not recorded in a row but ends its task."""


def _escape(net, batch) -> float:
    """Test proxy: raises past the engine's per-proxy error handling."""
    raise _Escape("boom\nsecond line")


def test_a_task_that_raises_is_a_one_line_error(tmp_path, data_dir, ray_address, monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._loaded()))
    registry.proxy("escape", higher_is_better=True, paper="test")(_escape)
    with pytest.raises(ProxybenchError) as failed:
        run(ISO[:1], tmp_path / "out", data_dir, proxies="params,escape", executor="ray")
    assert str(failed.value) == "Ray task 0 failed: _Escape: boom"


def test_cli_executor_ray_connects_to_ray_address(tmp_path, data_dir, ray_address):
    archs = tmp_path / "archs.txt"
    archs.write_text("\n".join(ISO + OTHERS[:1]) + "\n")
    cmd = [sys.executable, "-c", "from proxybench_cli.main import cli; cli()", "score", "--archs", str(archs),
           "--proxies", PROXIES, "--batch-size", "8", "--data-dir", str(data_dir), "--out", str(tmp_path / "out"),
           "--executor", "ray", "--ray-address", ray_address, "--threads", "1", "-q"]
    done = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    summary = "scored 4 architectures (2 computed, 2 copied from an isomorph) x 2 proxies = 8 rows (4 copied)"
    assert summary in done.stdout
    assert "as 2 Ray tasks" in done.stdout
    assert len(rows_by_key(tmp_path / "out")) == 8
    assert ray.get(ray.put(1)) == 1  # the CLI disconnected; the cluster it used still runs



def _chunk_processes() -> list[int]:
    """Ray workers running a proxybench chunk task (Ray sets the process title to the task name)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "cmdline").read_bytes().startswith(b"ray::proxybench-chunk"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _journaled(out: Path) -> int:
    return journal_lines(out)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_killing_the_driver_ends_its_tasks_and_a_rerun_completes(tmp_path, data_dir, ray_address):
    out = tmp_path / "out"
    archs = get_space("nb201").sample(24, seed=3)
    (tmp_path / "archs.txt").write_text("\n".join(archs) + "\n")
    cmd = [sys.executable, "-c", "from proxybench_cli.main import cli; cli()", "score",
           "--archs", str(tmp_path / "archs.txt"), "--proxies", "params,flops,synflow,snip", "--batch-size", "8",
           "--data-dir", str(data_dir), "--out", str(out), "--executor", "ray", "--ray-address", ray_address, "-q"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    driver = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while _journaled(out) == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _journaled(out) > 0, "no task wrote anything"
        running = set(_chunk_processes())  # (with xdist, maybe also tasks of another test's Ray instance)
        assert running
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait(timeout=30)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while running & set(_chunk_processes()) and time.monotonic() < deadline:  # Ray ends a dead driver's tasks
        time.sleep(0.1)
    assert not running & set(_chunk_processes())
    partial = len(stored_keys(out))
    assert 0 < partial < len(archs) * 4

    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    counts = Counter((r["arch"], r["proxy"]) for r in read_scores(out).to_pylist())
    assert len(counts) == len(archs) * 4 and set(counts.values()) == {1}
    assert not list((out / "scores").glob("journal-*"))


def test_cli_executor_errors_are_one_line(tmp_path, monkeypatch):
    base = ["score", "--sample", "2", "--proxies", PROXIES, "--out", str(tmp_path / "out"), "-q"]
    monkeypatch.setitem(sys.modules, "ray", None)  # as if ray were not installed
    missing = CliRunner().invoke(cli, [*base, "--executor", "ray"])
    assert missing.exit_code == 1 and missing.output == MISSING, missing.output
    both = CliRunner().invoke(cli, [*base, "--executor", "ray", "--workers", "2"])
    assert both.exit_code == 1 and both.output.startswith("Error: --workers is for --executor local")
    assert both.output.count("\n") == 1
    address = CliRunner().invoke(cli, [*base, "--ray-address", "auto"])
    assert address.exit_code == 1 and address.output == "Error: --ray-address needs --executor ray\n"
    assert not (tmp_path / "out").exists()


def test_an_address_that_does_not_answer_fails_fast():
    from proxybench.executors import _check_reachable

    with pytest.raises(ProxybenchError, match=r"^no Ray cluster answers at 127\.0\.0\.1:1 \("):
        _check_reachable("127.0.0.1:1")
    _check_reachable("auto")  # left to ray.init
    _check_reachable("ray://head:10001")
