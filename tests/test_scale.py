"""Isomorphism dedup, shards and worker processes: same rows as one plain run, nothing lost or doubled."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from builders import ISO, OTHERS, journal_lines

from proxybench import scoring
from proxybench.errors import ProxybenchError
from proxybench.scoring import score_architectures
from proxybench.sharding import (
    group_by_class,
    parse_shard,
    select_shard,
    shard_of,
    split_classes,
)
from proxybench.spaces import get_space
from proxybench.spaces.nb201 import arch_uid
from proxybench.store import open_views, read_scores
from proxybench.store.scores import _directory_lock, _recover_journals
from proxybench.store.status import results_status

PROXIES = "params,flops,synflow"


def run(archs, out, data_dir, **kwargs):
    kwargs.setdefault("progress", False)
    return score_architectures(archs, proxies=PROXIES, data_dir=data_dir, batch_size=8, out=out, **kwargs)


def rows_by_key(out):
    return {(r["arch"], r["proxy"]): r for r in read_scores(out).to_pylist()}


def test_the_fixture_class_is_one_class():
    assert len({arch_uid(a) for a in ISO}) == 1 and len({arch_uid(a) for a in OTHERS}) == len(OTHERS)


def test_dedup_writes_rows_for_every_member_with_identical_scores(tmp_path, data_dir):
    archs = [ISO[0], OTHERS[0], ISO[1], ISO[2]]
    summary = run(archs, tmp_path, data_dir)
    rows = rows_by_key(tmp_path)
    assert len(rows) == 12 == summary.rows_written
    assert (summary.archs_computed, summary.archs_copied, summary.rows_copied) == (2, 2, 6)
    assert "2 computed, 2 copied from an isomorph" in str(summary) and "(6 copied)" in str(summary)
    for proxy in PROXIES.split(","):
        rep = rows[(ISO[0], proxy)]
        assert rep["shared_from"] is None
        for member in ISO[1:]:
            copy = rows[(member, proxy)]
            assert copy["shared_from"] == ISO[0] and copy["arch_uid"] == rep["arch_uid"]
            assert copy["score"] == rep["score"] and copy["batch_id"] == rep["batch_id"]
            assert copy["settings_hash"] == rep["settings_hash"]
        assert rows[(OTHERS[0], proxy)]["shared_from"] is None


def test_no_dedup_computes_each_and_representatives_match(tmp_path, data_dir, monkeypatch):
    built = []
    real = scoring._score_one
    monkeypatch.setattr(scoring, "_score_one", lambda space, arch, *a, **k: built.append(arch) or real(space, arch, *a, **k))
    summary = run(ISO + OTHERS[:1], tmp_path / "plain", data_dir, dedup=False)
    assert sorted(built) == sorted(ISO + OTHERS[:1])
    assert (summary.archs_computed, summary.archs_copied, summary.rows_copied) == (4, 0, 0)
    plain = rows_by_key(tmp_path / "plain")
    assert all(r["shared_from"] is None for r in plain.values())
    built.clear()
    run(ISO + OTHERS[:1], tmp_path / "dedup", data_dir)
    assert sorted(built) == sorted([ISO[0], OTHERS[0]])
    dedup = rows_by_key(tmp_path / "dedup")
    for key in [(ISO[0], p) for p in PROXIES.split(",")] + [(OTHERS[0], p) for p in PROXIES.split(",")]:
        assert dedup[key]["score"] == plain[key]["score"]  # a computed row is the same with or without dedup


def test_resume_copies_from_the_stored_representative(tmp_path, data_dir, monkeypatch):
    run([ISO[1]], tmp_path, data_dir)
    stored = rows_by_key(tmp_path)

    def no_compute(*args, **kwargs):
        raise AssertionError("a class whose rows are stored must not be computed again")

    monkeypatch.setattr(scoring, "_score_one", no_compute)
    summary = run(ISO, tmp_path, data_dir)
    assert (summary.archs_skipped, summary.archs_copied, summary.archs_computed) == (1, 2, 0)
    rows = read_scores(tmp_path).to_pylist()
    assert len(rows) == 9 and len({(r["arch"], r["proxy"]) for r in rows}) == 9
    for r in rows:
        assert r["score"] == stored[(ISO[1], r["proxy"])]["score"]
        assert r["shared_from"] == (None if r["arch"] == ISO[1] else ISO[1])
    # settings_hash ignores dedup: a --no-dedup rerun finds everything done, nothing is doubled.
    again = run(ISO, tmp_path, data_dir, dedup=False)
    assert again.archs_skipped == 3 and again.rows_written == 0


def test_resume_adds_a_new_proxy_on_the_representative_only(tmp_path, data_dir, monkeypatch):
    run(ISO, tmp_path, data_dir)
    built = []
    real = scoring._score_one
    monkeypatch.setattr(scoring, "_score_one", lambda space, arch, specs, *a, **k: built.append(
        (arch, [s.name for s in specs])) or real(space, arch, specs, *a, **k))
    score_architectures(ISO, proxies=PROXIES + ",nwot", data_dir=data_dir, batch_size=8, out=tmp_path,
                        progress=False)
    assert built == [(ISO[0], ["nwot"])]
    rows = read_scores(tmp_path).to_pylist()
    assert len(rows) == 12 and len({(r["arch"], r["proxy"]) for r in rows}) == 12


def test_shard_partition_covers_every_arch_once_and_groups_isomorphs():
    space = get_space("nb201")
    archs = list(space)
    shards = [select_shard(archs, space.uid, (i, 3)) for i in range(3)]
    assert sorted(a for s in shards for a in s) == sorted(archs)
    owner = {a: i for i, s in enumerate(shards) for a in s}
    for uid, members in group_by_class(archs, space.uid):
        assert len({owner[m] for m in members}) == 1, uid
    assert all(4000 < len(s) < 6500 for s in shards)  # roughly even (6466 classes of unequal size)
    # Stable across processes and Python versions: sha256 of the class key, not hash().
    uid = arch_uid(ISO[0])
    assert shard_of(uid, 7) == int(hashlib.sha256(uid.encode()).hexdigest()[:16], 16) % 7
    # Order and subset do not matter: a shard is a property of the class.
    assert select_shard(list(reversed(archs[:300])), space.uid, (1, 3)) == [a for a in reversed(archs[:300])
                                                                           if owner[a] == 1]


def test_split_classes_is_round_robin_by_class():
    groups = group_by_class(ISO + OTHERS[:3], arch_uid)
    shares = split_classes(groups, 2)
    assert shares == [ISO + [OTHERS[1]], [OTHERS[0], OTHERS[2]]]


@pytest.mark.parametrize("text", ["3/3", "-1/2", "1/0", "a/b", "1", "0/2/3", ""])
def test_malformed_shard_is_a_one_line_error(text):
    with pytest.raises(ProxybenchError, match=r"I/N") as info:
        parse_shard(text)
    assert "\n" not in str(info.value)


def test_parse_shard_accepts_text_and_tuples():
    assert parse_shard("2/5") == (2, 5) == parse_shard((2, 5)) and parse_shard(None) is None


def test_three_shards_into_one_out_read_as_one_table(tmp_path, data_dir):
    archs = ISO + OTHERS
    summaries = [run(archs, tmp_path / "sharded", data_dir, shard=(i, 3)) for i in range(3)]
    assert sum(s.archs_requested for s in summaries) == len(archs)
    assert sorted(s.shard for s in summaries) == ["0/3", "1/3", "2/3"]
    run_ids = {p.name.rsplit("-", 1)[0] for p in (tmp_path / "sharded" / "scores").glob("part-*.parquet")}
    assert len(run_ids) == sum(s.archs_requested > 0 for s in summaries)
    run(archs, tmp_path / "single", data_dir)
    query = "select arch, proxy, score, shared_from, count(*) over (partition by arch, proxy) from scores"
    with open_views(scores=[tmp_path / "sharded"]) as con:
        sharded = con.execute(query).fetchall()
    with open_views(scores=[tmp_path / "single"]) as con:
        single = con.execute(query).fetchall()
    assert len(sharded) == len(archs) * 3 and {r[4] for r in sharded} == {1}
    assert sorted(r[:4] for r in sharded) == sorted(r[:4] for r in single)


def test_no_resume_with_shard_only_refuses_its_own_archs(tmp_path, data_dir):
    archs = ISO + OTHERS
    owners = {i for i in range(3) if select_shard(archs, arch_uid, (i, 3))}
    first, *rest = sorted(owners)
    run(archs, tmp_path, data_dir, shard=(first, 3), resume=False)
    for i in rest:
        run(archs, tmp_path, data_dir, shard=(i, 3), resume=False)
    with pytest.raises(ProxybenchError, match=f"shard {first}/3"):
        run(archs, tmp_path, data_dir, shard=(first, 3), resume=False)


def test_workers_2_gives_the_rows_of_workers_1(tmp_path, data_dir):
    archs = ISO + OTHERS[:5]
    one = run(archs, tmp_path / "one", data_dir, threads=1)
    seen = []

    def progress(iterable, total):
        seen.append(total)
        for item in iterable:
            seen.append(item)
            yield item

    two = run(archs, tmp_path / "two", data_dir, workers=2, threads=2, progress=progress)
    assert seen[0] == len(archs) and len(seen) == 1 + len(archs)
    assert two.workers == 2 and "with 2 workers" in str(two)
    for name in ("archs_scored", "archs_computed", "archs_copied", "rows_written", "rows_copied", "errors"):
        assert getattr(one, name) == getattr(two, name), name
    a, b = rows_by_key(tmp_path / "one"), rows_by_key(tmp_path / "two")
    assert a.keys() == b.keys()
    for key in a:
        assert (a[key]["score"], a[key]["shared_from"]) == (b[key]["score"], b[key]["shared_from"]), key
    run_ids = {r["run_id"] for r in b.values()}
    assert len(run_ids) == 2 and all(r.endswith(("-w0of2", "-w1of2")) for r in run_ids)
    assert run(archs, tmp_path / "two", data_dir, workers=2).archs_skipped == len(archs)  # no worker started


def test_recovery_waits_for_a_writer_moving_its_journal(tmp_path):
    directory = tmp_path / "scores"
    directory.mkdir()
    recovered = threading.Event()
    with _directory_lock(directory, exclusive=False):
        worker = threading.Thread(target=lambda: (_recover_journals(directory), recovered.set()))
        worker.start()
        time.sleep(0.3)
        assert not recovered.is_set()  # blocked while a writer holds the directory lock
    worker.join(5)
    assert recovered.is_set()


def _children(pid: int) -> list[int]:
    """Worker processes of ``pid`` (spawned children; not multiprocessing's resource tracker)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid and "spawn_main" in cmdline and _state(int(entry.name)) != "Z":
            found.append(int(entry.name))
    return found


def _journaled(out: Path) -> int:
    """Journaled rows plus rolled parts: grows while any worker makes progress."""
    if not (out / "scores").is_dir():
        return 0
    return journal_lines(out) + len(list((out / "scores").glob("part-*.parquet")))


def _wait(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc to find the workers")
def test_killing_workers_mid_run_loses_and_doubles_nothing(tmp_path, data_dir):
    out = tmp_path / "out"
    archs = get_space("nb201").sample(24, seed=3)
    (tmp_path / "archs.txt").write_text("\n".join(archs) + "\n")
    cmd = [sys.executable, "-c", "from proxybench_cli.main import cli; cli()", "score",
           "--archs", str(tmp_path / "archs.txt"), "--proxies", PROXIES, "--batch-size", "8",
           "--data-dir", str(data_dir), "--out", str(out), "--workers", "2", "--threads", "2", "-q"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    # 1. One worker is killed: the parent stops the other and says so, exit code 1.
    parent = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert _wait(lambda: _journaled(out) > 0), "no worker wrote anything"
        workers = _children(parent.pid)
        assert len(workers) == 2
        os.kill(workers[0], signal.SIGKILL)
        output = parent.communicate(timeout=60)[0].decode()
    finally:
        if parent.poll() is None:
            os.killpg(parent.pid, signal.SIGKILL)
    assert parent.returncode == 1 and "Error: worker" in output and "died" in output, output

    # 2. Only the parent is killed: its workers die with it (no orphan keeps writing).
    parent = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        assert _wait(lambda: len(_children(parent.pid)) == 2)
        workers = _children(parent.pid)
        before = _journaled(out)
        _wait(lambda: _journaled(out) > before, timeout=30)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=30)
        assert _wait(lambda: not any(Path(f"/proc/{w}").exists() and "Z" not in _state(w) for w in workers),
                     timeout=15)
    finally:
        if parent.poll() is None:
            os.killpg(parent.pid, signal.SIGKILL)
    partial = read_scores(out).num_rows + sum(
        j.read_text().count("\n") for j in (out / "scores").glob("journal-*.jsonl"))
    assert 0 < partial < len(archs) * 3
    # `proxybench status` sees the kills: the SIGKILL-ed worker of step 1 (and any worker of
    # step 2 that had not finished its share) died holding its run lock, so it is reported
    # killed, never finished; and status counts exactly the partial rows.
    status = results_status(out)
    assert any(r.state == "killed" for r in status.runs)
    assert all(r.state in ("killed", "finished") or r.state.startswith("interrupted") for r in status.runs)
    assert sum(c.archs for c in status.coverage) == partial

    # 3. The same command again completes the run: every (arch, proxy) exactly once.
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    rows = read_scores(out).to_pylist()
    counts = Counter((r["arch"], r["proxy"]) for r in rows)
    assert len(counts) == len(archs) * 3 and set(counts.values()) == {1}
    assert not list((out / "scores").glob("journal-*"))
    status = results_status(out)
    assert {c.archs for c in status.coverage} == {len(archs)} and len(status.coverage) == 3
    assert [r.state for r in status.runs].count("finished") >= 1  # the workers of step 3


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return "Z"


def test_cli_shard_and_summary(tmp_path, data_dir):
    from click.testing import CliRunner
    from proxybench_cli.main import cli

    archs = tmp_path / "archs.txt"
    archs.write_text("\n".join(ISO + OTHERS[:1]) + "\n")
    base = ["score", "--archs", str(archs), "--proxies", PROXIES, "--batch-size", "8", "--data-dir", str(data_dir),
            "--out", str(tmp_path / "out"), "-q"]
    bad = CliRunner().invoke(cli, [*base, "--shard", "3/3"])
    assert bad.exit_code == 1 and bad.output.startswith("Error: --shard must be I/N") and bad.output.count("\n") == 1
    good = CliRunner().invoke(cli, base)
    assert good.exit_code == 0, good.output
    assert "scored 4 architectures (2 computed, 2 copied from an isomorph) x 3 proxies = 12 rows (6 copied)" in good.output
