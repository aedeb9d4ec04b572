"""``proxybench status``: runs whose work a later run completed, and coverage of what was requested."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from proxybench.scoring import score_architectures
from proxybench.spaces import get_space
from proxybench.store import ScoreWriter
from proxybench.store.status import results_status
from proxybench_cli.main import cli

PROXIES = "params,flops"  # no images: no data needed, fast


class _Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs in the scoring process."""


def _killed_after(monkeypatch, n: int):
    """A progress wrapper that 'kills' the run when it reaches its ``n``-th architecture, and a
    writer exit that does what the kernel does on a kill: drop the locks, write nothing."""

    def die(self, exc_type, *rest):
        self._journal.close()
        self._run_lock.close()

    monkeypatch.setattr(ScoreWriter, "__exit__", die)

    def progress(iterable, total):
        for k, arch in enumerate(iterable):
            if k == n:
                raise _Killed
            yield arch

    return progress


def _row(text: str, proxy: str) -> list[str]:
    return next(line.split() for line in text.splitlines() if line.startswith("nb201") and f" {proxy} " in line)


def test_status_says_a_killed_runs_work_was_completed_and_shows_coverage_of_the_request(tmp_path, monkeypatch):
    out = tmp_path / "out"
    archs = get_space("nb201").sample(6, seed=5)
    with pytest.raises(_Killed):
        score_architectures(archs, proxies=PROXIES, out=out, dedup=False, progress=_killed_after(monkeypatch, 3))
    monkeypatch.undo()

    status = results_status(out)
    (killed,) = status.runs
    assert killed.state == "killed" and killed.completed_by is None and killed.rows == 6
    assert {(c.proxy, c.requested, c.requested_scored, c.archs, c.space_size) for c in status.coverage} == {
        ("params", 6, 3, 3, 15625), ("flops", 6, 3, 3, 15625)}
    text = str(status)
    assert f"{killed.run_id}: killed, 6 rows" in text and "rerun its command to resume it" in text
    assert _row(text, "params")[6:8] == ["3/6", "3/15625"]

    # A run asked for part of the work does not complete the killed one ...
    partial = score_architectures(archs[:4], proxies=PROXIES, out=out, dedup=False, progress=False)
    assert {r.run_id: r.completed_by for r in results_status(out).runs}[killed.run_id] is None
    # ... the same command does, and status names the run that did.
    rerun = score_architectures(archs, proxies=PROXIES, out=out, dedup=False, progress=False)
    status = results_status(out)
    states = {r.run_id: (r.state, r.completed_by) for r in status.runs}
    assert states == {killed.run_id: ("killed", rerun.run_id), partial.run_id: ("finished", None),
                      rerun.run_id: ("finished", None)}
    assert {(c.proxy, c.requested, c.requested_scored) for c in status.coverage} == {
        ("params", 6, 6), ("flops", 6, 6)}

    result = CliRunner().invoke(cli, ["status", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "runs: 3 (2 finished, 1 killed, completed later)" in result.output
    assert f"  {killed.run_id}: killed (its work was completed by run {rerun.run_id}), 6 rows" in result.output
    assert "rerun its command to resume it" not in result.output
    header = next(line for line in result.output.splitlines() if line.startswith("space"))
    assert header.split() == ["space", "dataset", "preset", "weights", "seed", "proxy", "requested", "archs",
                              "classes", "ok", "nonfinite", "error", "hours"]
    assert _row(result.output, "flops")[6:8] == ["6/6", "6/15625"]
