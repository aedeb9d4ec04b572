"""One-line errors instead of tracebacks (issue 13): read-only OUT, full disk, SIGTERM and Ctrl-C
in the middle of ``proxybench score`` (swapped --scores/--truth: test_swapped_inputs.py).

Tests run as root, where ``chmod`` does not stop writes. A read-only file system is
simulated by making ``open`` for writing under OUT fail with EROFS, as the kernel does on a
read-only mount; where unprivileged user namespaces exist, a test on a real read-only bind
mount checks the same line end to end. A full disk is simulated by making the journal
append fail with ENOSPC after some architectures (and the Parquet write with it, as on a
really full disk).
"""

from __future__ import annotations

import builtins
import errno
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from builders import journal_lines
from click.testing import CliRunner

from proxybench.spaces import get_space
from proxybench.store import read_scores
from proxybench.store.scores import read_directory
from proxybench_cli.main import cli

CLI = [sys.executable, "-c", "from proxybench_cli.main import cli; cli()"]


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _saved_rows(out: Path) -> int:
    """Rows under OUT: the parts and the complete lines of journals."""
    parts, journaled = read_directory(out / "scores")
    return len(journaled) + sum(pq.ParquetFile(p).metadata.num_rows for p in parts)


def _archs_file(tmp_path: Path, n: int, seed: int = 3) -> Path:
    path = tmp_path / "archs.txt"
    path.write_text("\n".join(get_space("nb201").sample(n, seed=seed)) + "\n")
    return path


# -- 1. a read-only results directory ------------------------------------------------------------
def _read_only(monkeypatch, folder: Path) -> None:
    """``open`` for writing anywhere under ``folder`` fails with EROFS, as on a read-only mount."""
    real_open = builtins.open
    root = str(folder.resolve())

    def guarded(file, mode="r", *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and any(c in mode for c in "wax+") \
                and os.path.abspath(os.fspath(file)).startswith(root):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(file))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded)
    monkeypatch.setattr("io.open", guarded)


def test_score_with_nothing_to_do_into_a_read_only_out_is_one_line(tmp_path, monkeypatch):
    out = tmp_path / "out"
    args = ("score", "--sample", "2", "--proxies", "params", "--out", str(out), "-q")
    assert invoke(*args).exit_code == 0
    _read_only(monkeypatch, out)
    result = invoke(*args)
    assert result.exit_code == 1
    assert result.output == (f"Error: cannot write into results directory {out} (Read-only file system); "
                             "make it writable or choose another --out\n")


def test_truth_import_into_a_read_only_out_is_one_line(tmp_path, monkeypatch):
    source = tmp_path / "t.csv"
    source.write_text("arch,acc\n"
                      + "".join(f"{a},{50 + k}\n" for k, a in enumerate(get_space("nb201").sample(3, seed=0))))
    out = tmp_path / "out"
    (out / "truth").mkdir(parents=True)

    def read_only_write(table, where, *args, **kwargs):  # pyarrow's own file writer, as on a read-only mount
        raise OSError(f"Failed to open local file '{where}'. Detail: [errno {errno.EROFS}] Read-only file system")

    monkeypatch.setattr("pyarrow.parquet.write_table", read_only_write)
    # The temporary file's removal fails too on a read-only file system (it used to hide the first error).
    monkeypatch.setattr(Path, "unlink", lambda self, missing_ok=False: (_ for _ in ()).throw(
        OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))))
    result = invoke("truth", "import", str(source), "--format", "table", "--metric", "acc=test_acc",
                    "--dataset", "cifar10", "--out", str(out))
    assert result.exit_code == 1, result.output
    assert result.output == (f"Error: cannot write {out / 'truth' / 't.parquet'}: Read-only file system; "
                             f"make {out / 'truth'} writable or choose another --out\n")


def _user_namespaces() -> bool:
    """True when ``unshare -rm`` can make a read-only bind mount (and writing into it then fails)."""
    if not sys.platform.startswith("linux") or shutil.which("unshare") is None:
        return False
    folder = tempfile.mkdtemp()
    try:
        probe = subprocess.run(["unshare", "-rm", "sh", "-c", f"mount --bind {folder} {folder} && mount -o "
                                f"remount,bind,ro {folder} && ! touch {folder}/x 2>/dev/null"],
                               capture_output=True, timeout=30)
        return probe.returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.skipif(not _user_namespaces(), reason="needs unprivileged user namespaces for a read-only bind mount")
def test_score_and_truth_import_on_a_real_read_only_mount(tmp_path, nb201_csv):
    out = tmp_path / "out"
    (out / "scores").mkdir(parents=True)
    (out / "runs").mkdir()
    script = (f"mount --bind {out} {out} && mount -o remount,bind,ro {out} && "
              f"{sys.executable} -c 'from proxybench_cli.main import cli; cli()' \"$@\"")
    for args, line in [
        (["score", "--sample", "2", "--proxies", "params", "--out", str(out), "-q"],
         f"Error: cannot write into results directory {out} (Read-only file system); make it writable or choose "
         "another --out"),
        (["truth", "import", str(nb201_csv), "--out", str(out)],
         f"Error: cannot write {out / 'truth' / (nb201_csv.stem + '.parquet')}: Read-only file system; make "
         f"{out / 'truth'} writable or choose another --out"),
    ]:
        if args[0] == "truth":
            (out / "truth").mkdir(exist_ok=True)
        done = subprocess.run(["unshare", "-rm", "sh", "-c", script, "sh", *args], capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 1 and done.stderr.strip().splitlines()[-1] == line, done.stderr
        assert "Traceback" not in done.stderr, done.stderr


# -- 2. disk full in the middle of a run -----------------------------------------------------------
def test_disk_full_mid_run_says_rows_saved_and_the_command_that_resumes(tmp_path, monkeypatch):
    from proxybench.store import scores as store_scores

    out = tmp_path / "out"
    archs = _archs_file(tmp_path, 6)
    args = ("score", "--archs", str(archs), "--proxies", "params,flops", "--no-dedup", "--out", str(out), "-q")
    real_add = store_scores.ScoreWriter.add
    appended = []

    def add_until_full(self, rows):
        if len(appended) == 3:  # the disk is full: the journal append and the Parquet part both fail
            monkeypatch.setattr(store_scores, "_write_part_atomically", _no_space)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        appended.append(1)
        return real_add(self, rows)

    monkeypatch.setattr(store_scores.ScoreWriter, "add", add_until_full)
    result = invoke(*args)
    assert result.exit_code == 1
    assert _saved_rows(out) == 6  # 3 architectures x 2 proxies, still in the journal
    assert result.output == (
        f"Error: disk full while writing into {out} (No space left on device): 6 rows of this run saved in {out}; "
        f"free some space, then resume with: proxybench score --archs {archs} --proxies params,flops --no-dedup "
        f"--out {out} -q\n")

    monkeypatch.undo()  # space freed: the same command completes the run
    assert invoke(*args).exit_code == 0
    counts = Counter((r["arch"], r["proxy"]) for r in read_scores(out).to_pylist())
    assert len(counts) == 12 and set(counts.values()) == {1}


@pytest.mark.slow
@pytest.mark.skipif(not _user_namespaces(), reason="needs unprivileged user namespaces for a tiny tmpfs")
@pytest.mark.parametrize("workers", [1, 2])
def test_disk_full_on_a_real_tiny_file_system(tmp_path, workers):
    disk = tmp_path / "disk"
    disk.mkdir()
    out = disk / "out"
    args = ["score", "--sample", "60", "--proxies", "params,flops", "--no-dedup", "--out", str(out), "-q"]
    if workers > 1:  # every worker's rows are counted, once all of them stopped
        args += ["--workers", str(workers)]
    script = (f"mount -t tmpfs -o size=96k tmpfs {disk} && {sys.executable} -c 'from proxybench_cli.main import "
              "cli; cli()' \"$@\" ; echo rc=$? ; cat " + str(out / "scores") + "/journal-*.jsonl | wc -l ; "
              f"{sys.executable} -c 'from proxybench_cli.main import cli; cli()' status {out}")
    done = subprocess.run(["unshare", "-rm", "sh", "-c", script, "sh", *args], capture_output=True, text=True,
                          timeout=300)
    lines = done.stdout.strip().splitlines()
    assert "rc=1" in lines, done.stdout + done.stderr
    saved = int(lines[lines.index("rc=1") + 1])
    assert 0 < saved < 120
    assert done.stderr.strip().splitlines()[-1] == (
        f"Error: disk full while writing into {out} (No space left on device): {saved} rows of this run saved in "
        f"{out}; free some space, then resume with: proxybench {' '.join(args)}"), done.stderr
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr, done.stderr
    # A record that could not be updated says running: status says killed (resumable), never "unclosed".
    assert "killed" in done.stdout and "unclosed" not in done.stdout, done.stdout


def _no_space(table, path):
    raise OSError(f"Failed to open local file '{path}.tmp'. Detail: [errno {errno.ENOSPC}] No space left on device")


def test_no_resume_is_left_out_of_the_command_that_resumes(tmp_path, monkeypatch):
    from proxybench.store import scores as store_scores

    out = tmp_path / "out"

    def full(self, rows):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(store_scores.ScoreWriter, "add", full)
    result = invoke("score", "--sample", "1", "--proxies", "params", "--no-resume", "--out", str(out), "-q")
    assert result.exit_code == 1
    assert result.output.endswith(f"0 rows of this run saved in {out}; free some space, then resume with: "
                                  f"proxybench score --sample 1 --proxies params --out {out} -q\n"), result.output


# -- 3. SIGTERM (SLURM) and Ctrl-C -----------------------------------------------------------------
def _wait(predicate, timeout: float = 120.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def _journaled(out: Path) -> int:
    if not (out / "scores").is_dir():
        return 0
    return journal_lines(out) + len(list((out / "scores").glob("part-*.parquet")))


@pytest.mark.slow
@pytest.mark.parametrize("signum, workers", [(signal.SIGTERM, 1), (signal.SIGINT, 1), (signal.SIGTERM, 2)])
def test_sigterm_and_ctrl_c_say_rows_saved_and_the_command_that_resumes(tmp_path, data_dir, signum, workers):
    out = tmp_path / "out"
    archs = _archs_file(tmp_path, 20)
    args = ["score", "--archs", str(archs), "--proxies", "params,flops,synflow", "--batch-size", "8",
            "--data-dir", str(data_dir), "--out", str(out), "--threads", str(workers), "-q"]
    if workers > 1:
        args += ["--workers", str(workers)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # Its own process group, as a SLURM job step: SIGTERM goes to the workers too.
    run = subprocess.Popen(CLI + args, env=env, start_new_session=True, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        assert _wait(lambda: _journaled(out) > 0), "nothing was journaled"
        os.killpg(run.pid, signum) if workers > 1 or signum == signal.SIGINT else run.send_signal(signum)
        stdout, stderr = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    assert run.returncode == 128 + signum, stderr
    assert "Traceback" not in stderr and stdout == "", stderr
    saved = _saved_rows(out)
    assert 0 < saved < 20 * 3
    what = "terminated (SIGTERM)" if signum == signal.SIGTERM else "interrupted"
    resume = "proxybench " + " ".join(args)
    assert stderr.strip().splitlines()[-1] == (
        f"Aborted: {what}: {saved} rows of this run saved in {out}; resume with: {resume}"), stderr

    done = subprocess.run(CLI + args, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    counts = Counter((r["arch"], r["proxy"]) for r in read_scores(out).to_pylist())
    assert len(counts) == 20 * 3 and set(counts.values()) == {1}
