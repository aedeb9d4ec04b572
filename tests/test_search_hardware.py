"""Hardware-aware search: latency:<device>/energy:<device> objectives looked up in the truth."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from proxybench.errors import InvalidSettingError
from proxybench.search.archive import Archive
from proxybench.search.loop import run_search
from proxybench.search.measures import TruthMeasure
from proxybench.search.problem import resolve_objectives
from proxybench.spaces import get_space
from proxybench.spaces.nb201 import all_archs
from proxybench.truth import TRUTH_SCHEMA

FAST = dict(pop_size=8, generations=2)
SPACE = get_space("nb201")


def fake_latency(arch: str) -> float:
    """A deterministic 'latency' in ms: grows with the genome (conv ops are 2, 3)."""
    g = SPACE.encode(arch)
    return 1.0 + float(np.sum(g == 3)) * 0.7 + float(np.sum(g == 2)) * 0.2 + 0.01 * float(g[0])


def unmeasured(arch: str) -> bool:
    """Like HW-NAS-Bench's edgetpu: some cells have no value (here: first edge avg_pool)."""
    return SPACE.encode(arch)[0] == 4


@pytest.fixture(scope="module")
def hw_truth(tmp_path_factory):
    """A truth Parquet with cifar10 latency:dev for every cell but the 'unmeasured' ones, and test_acc for all."""
    rows = []
    for i, arch in enumerate(all_archs()):
        base = {"space": "nb201", "arch": arch, "arch_uid": arch, "arch_id": i, "dataset": "cifar10", "epochs": 200,
                "seed": "mean", "source": "table:hw_fake.csv"}
        if not unmeasured(arch):
            rows.append({**base, "metric": "latency:dev", "value": fake_latency(arch)})
        rows.append({**base, "metric": "test_acc", "value": 50.0 + float(i % 40)})
    path = tmp_path_factory.mktemp("hw") / "hw_fake.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=TRUTH_SCHEMA), path)
    return path


def test_hardware_objectives_resolve_as_cheap_costs():
    objs = {o.name: o for o in resolve_objectives("synflow,latency:edgegpu,energy:fpga")}
    for name in ("latency:edgegpu", "energy:fpga"):
        assert objs[name].kind == "truth" and not objs[name].expensive and not objs[name].higher_is_better
        assert objs[name].quantities == (name,)
        assert objs[name].value({name: 3.5}) == 3.5  # a cost: minimised as stored
    assert resolve_objectives("params,latency:edgegpu", expensive=["latency:edgegpu"])[1].expensive
    with pytest.raises(InvalidSettingError) as info:
        resolve_objectives("params,latency:")
    assert str(info.value) == ("objective 'latency:' needs a device: latency:DEVICE, e.g. latency:edgegpu "
                               "(HW-NAS-Bench, --truth hw_cifar10.csv)")


def test_truth_measure_looks_up_hardware_and_accuracy_together(hw_truth):
    measure = TruthMeasure([str(hw_truth)], "cifar10", quantities=("top1_error", "latency:dev"))
    fine = next(a for a in all_archs() if not unmeasured(a))
    missing = next(a for a in all_archs() if unmeasured(a))
    got = measure.measure([fine, missing])
    i = all_archs().index(fine)
    assert got[fine] == {"top1_error": 100.0 - (50.0 + i % 40), "latency:dev": fake_latency(fine)}
    assert got[missing] == (f"truth: no cifar10 latency:dev value for {missing} (not in the benchmark's table: "
                            "unmeasured there)")
    assert measure.describe()["quantities"] == ["top1_error", "latency:dev"]
    assert "quantities" not in TruthMeasure([str(hw_truth)], "cifar10").describe()  # old runs still resume
    with pytest.raises(InvalidSettingError) as info:
        TruthMeasure([str(hw_truth)], "cifar10", quantities=("latency:edgetpu",))
    assert str(info.value) == (
        "the truth (hw_fake.parquet) has no cifar10 values of latency:edgetpu for objective latency:edgetpu (its "
        "cifar10 metrics: latency:dev, test_acc); pass the hardware table with --truth (HW-NAS-Bench: "
        "hw_cifar10.csv) or choose a metric the truth has")


def test_search_minimises_latency_exactly_and_fails_unmeasured_candidates(tmp_path, hw_truth):
    res = run_search("nb201", "params,latency:dev", n_start=30, iterations=2, per_iteration=4, seed=3,
                     out=tmp_path, truth=hw_truth, top_k=2, **FAST)
    rows = Archive(tmp_path, ["params", "latency:dev"]).rows()
    assert res.archive_size == len(rows) == 30 + 2 * 4
    ok = [r for r in rows if r["status"] == "ok"]
    failed = [r for r in rows if r["status"] != "ok"]
    assert failed and all(unmeasured(r["arch"]) for r in failed)  # 1 in 5 of a random sample
    assert all(r["error"] == f"truth: no cifar10 latency:dev value for {r['arch']} (not in the benchmark's table: "
               "unmeasured there)" and r["obj_latency:dev"] is None for r in failed)
    assert all(r["obj_latency:dev"] == fake_latency(r["arch"]) and r["pred_latency:dev"] is None for r in ok)
    # NSGA-II only ever proposes measured cells after the initial sample (an unmeasured offspring has no F)
    assert all(not unmeasured(r["arch"]) for r in rows if r["iteration"] > 0)


def test_missing_metric_fails_before_the_first_candidate(tmp_path, hw_truth):
    with pytest.raises(InvalidSettingError, match=r"^the truth \(hw_fake.parquet\) has no cifar10 values of "
                                                  r"energy:dev for objective energy:dev"):
        run_search("nb201", "params,energy:dev", n_start=4, iterations=0, out=tmp_path / "a", truth=hw_truth,
                   **FAST)
    assert not (tmp_path / "a" / "archive").exists()
    with pytest.raises(InvalidSettingError) as info:
        run_search("nb201", "params,latency:dev", n_start=4, iterations=0, out=tmp_path / "b", **FAST)
    assert str(info.value) == ("objective latency:dev is looked up in the benchmark's ground truth: pass --truth "
                               "(HW-NAS-Bench's hw_cifar10.csv for latency/energy)")


def test_cli_error_is_one_line(tmp_path, hw_truth):
    from proxybench_cli.search_commands import search

    result = CliRunner().invoke(search, ["--objectives", "params,latency:edgegpu", "--truth", str(hw_truth),
                                         "--out", str(tmp_path / "run"), "--n-start", "4", "--iterations", "0",
                                         "-q"], catch_exceptions=False)
    assert result.exit_code == 1
    assert result.output == (
        "Error: the truth (hw_fake.parquet) has no cifar10 values of latency:edgegpu for objective latency:edgegpu "
        "(its cifar10 metrics: latency:dev, test_acc); pass the hardware table with --truth (HW-NAS-Bench: "
        "hw_cifar10.csv) or choose a metric the truth has\n")


@pytest.mark.shared
def test_search_with_hw_nas_bench_edgetpu(tmp_path, shared_dir, nb201_csv):
    """The real table: edgetpu leaves 4,699 cells unmeasured; accuracy and latency from two --truth files."""
    from proxybench_cli.search_commands import search

    hw = shared_dir / "data" / "nb201" / "extra" / "hw_cifar10.csv"
    result = CliRunner().invoke(search, ["--objectives", "params,latency:edgetpu", "--truth", str(hw),
                                         "--truth", str(nb201_csv), "--out", str(tmp_path / "run"),
                                         "--n-start", "40", "--iterations", "1", "--per-iteration", "4",
                                         "--pop-size", "8", "--generations", "2", "-q"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = Archive(tmp_path / "run", ["params", "latency:edgetpu"]).rows()
    failed = [r for r in rows if r["status"] != "ok"]
    assert failed and all("truth: no cifar10 latency:edgetpu value for" in r["error"] for r in failed)
    import csv

    from proxybench.spaces.nb201 import from_naslib_tuple

    with open(hw, newline="") as handle:
        table = {from_naslib_tuple(r["net"]): float(r["edgetpu_latency"]) for r in csv.DictReader(handle)}
    for r in rows:
        assert (table[r["arch"]] == -1) == (r["status"] != "ok")
        if r["status"] == "ok":
            assert r["obj_latency:edgetpu"] == pytest.approx(table[r["arch"]])
    from proxybench.search.loop import search_report

    assert all(50 < p["true_test_acc"] < 100 for p in search_report(tmp_path / "run"))


# ----------------------------------------------------------------------------- hypervolume


def test_hypervolume_of_a_hand_made_front():
    from proxybench.search.indicators import hypervolume

    staircase = [[1, 3], [2, 2], [3, 1]]
    assert hypervolume(staircase, [4, 4]) == pytest.approx(6.0)  # 3 + (4 - 2) + 1 by hand
    assert hypervolume(staircase + [[3, 3], [2.5, 2.5]], [4, 4]) == pytest.approx(6.0)  # dominated: nothing
    assert hypervolume([[1, 3], [5, 0]], [4, 4]) == pytest.approx(3.0)  # beyond the reference: nothing
    assert hypervolume(np.empty((0, 2)), [4, 4]) == 0.0
    cube = hypervolume([[0, 0, 0]], [2, 3, 4])
    assert cube == pytest.approx(24.0)


def test_hypervolume_ratio_normalises_by_the_true_front():
    from proxybench.search.indicators import hypervolume_ratio

    # true points (error %, latency ms): front (10, 9), (20, 5), (90, 1); (50, 8) is dominated
    truth = np.array([[10.0, 9.0], [20.0, 5.0], [90.0, 1.0], [50.0, 8.0]])
    assert hypervolume_ratio(truth, truth) == pytest.approx(1.0)
    assert hypervolume_ratio(truth[:3], truth) == pytest.approx(1.0)
    # normalised front: (0, 1), (0.125, 0.5), (1, 0); reference (1.1, 1.1)
    # HV(front) = 1.1*0.1 + (1.1 - 0.125)*0.5 + 0.1*0.5 ... computed as the union of rectangles:
    front = np.array([[0.0, 1.0], [0.125, 0.5], [1.0, 0.0]])
    xs = sorted(front.tolist())
    hv_front = sum((1.1 - x) * (prev_y - y) for (x, y), prev_y in zip(xs, [1.1] + [p[1] for p in xs[:-1]]))
    only_knee = (1.1 - 0.125) * (1.1 - 0.5)
    assert hypervolume_ratio([[20.0, 5.0]], truth) == pytest.approx(only_knee / hv_front)
    assert hypervolume_ratio([[20.0, 5.0], [50.0, 8.0]], truth) == pytest.approx(only_knee / hv_front)
    assert hypervolume_ratio(np.empty((0, 2)), truth) == 0.0
    with pytest.raises(InvalidSettingError, match="found has 3 objectives, true_points 2"):
        hypervolume_ratio([[1.0, 2.0, 3.0]], truth)
