"""Truth importers: small files in the real formats, then the shared CSV and JSON."""

from __future__ import annotations

import csv
import json
import math

import pyarrow.parquet as pq
import pytest

from proxybench.spaces.nb201 import arch_uid, format_arch, from_naslib_tuple, to_naslib_tuple
from proxybench.store import SCORES_SCHEMA
from proxybench.truth import FORMATS, TRUTH_SCHEMA, TruthImportError, detect_format, import_truth
from proxybench.truth.nb201_csv import parse_metric_column

A0 = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
A1 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
A2 = format_arch(["none"] * 6)
HEADER = ["CIFAR10TestAccuracy200Epochs", "CIFAR100TestAccuracy200Epochs", "ImageNetTestAccuracy200Epochs",
          "ArchitectureString", "UniqueString"]


def write_csv(path, rows, header=HEADER):
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def small_csv(tmp_path, name="tss.csv"):
    return write_csv(tmp_path / name, [
        [85.86, 52.91, 26.63, A0, arch_uid(A0)],
        [93.66, 70.29, 44.03, A1, arch_uid(A1)],
        [10.0, 1.0, 0.83, A2, arch_uid(A2)],
    ])


def read(path):
    return pq.read_table(path)


# ----------------------------------------------------------------------------- CSV


def test_metric_columns_map_to_dataset_metric_epochs():
    assert parse_metric_column("CIFAR10TestAccuracy200Epochs") == ("cifar10", "test_acc", 200)
    assert parse_metric_column("CIFAR100ValidAccuracy12Epochs") == ("cifar100", "valid_acc", 12)
    assert parse_metric_column("ImageNetTestAccuracy200Epochs") == ("ImageNet16-120", "test_acc", 200)
    assert parse_metric_column("ArchitectureString") is None


def test_csv_import_writes_long_truth_rows(tmp_path):
    result = import_truth(small_csv(tmp_path), tmp_path / "out")
    assert result.format == "csv" and result.truth_rows == 9 and result.scores_path is None
    assert result.truth_path == tmp_path / "out" / "truth" / "tss.parquet"
    table = read(result.truth_path)
    assert table.schema.remove_metadata() == TRUTH_SCHEMA
    rows = {(r["arch"], r["dataset"]): r for r in table.to_pylist()}
    assert rows[(A1, "cifar10")] == {
        "space": "nb201", "arch": A1, "arch_uid": arch_uid(A1), "arch_id": 1, "dataset": "cifar10",
        "metric": "test_acc", "value": 93.66, "epochs": 200, "seed": "mean", "source": "csv:tss.csv"}
    assert rows[(A2, "ImageNet16-120")]["value"] == 0.83 and rows[(A2, "ImageNet16-120")]["arch_id"] == 2
    assert {r["dataset"] for r in rows.values()} == {"cifar10", "cifar100", "ImageNet16-120"}
    meta = {k.decode(): v.decode() for k, v in table.schema.metadata.items()}
    assert meta["proxybench.truth.format"] == "csv"
    assert meta["proxybench.truth.importer_version"] == "csv/1"
    assert meta["proxybench.truth.source"] == str((tmp_path / "tss.csv").resolve())
    assert meta["proxybench.truth.ignored_columns"] == "UniqueString"
    assert len(meta["proxybench.truth.sha256"]) == 64


def test_csv_explicit_index_column_wins_over_row_number(tmp_path):
    path = write_csv(tmp_path / "idx.csv", [[7, 90.0, A0], [3, 80.0, A1]],
                     header=["index", "CIFAR10TestAccuracy200Epochs", "ArchitectureString"])
    table = read(import_truth(path, tmp_path / "out").truth_path)
    assert {r["arch"]: r["arch_id"] for r in table.to_pylist()} == {A0: 7, A1: 3}


def test_csv_arch_strings_are_canonicalised(tmp_path):
    path = write_csv(tmp_path / "ws.csv", [[90.0, f"  {A0} "]], header=["CIFAR10TestAccuracy200Epochs",
                                                                        "ArchitectureString"])
    assert read(import_truth(path, tmp_path / "out").truth_path).column("arch").to_pylist() == [A0]


BAD = "|nor_conv_3x3~0|+|bogus~0|skip_connect~1|+|none~0|none~1|avg_pool_3x3~2|"


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ([93.0, 70.0, 44.0, BAD, "x"],
         ("bad.csv line 3 (row 1), column ArchitectureString: unknown op 'bogus' in edge 'bogus~0' (node 2, "
         f"position 0) of '{BAD}'; valid ops: none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3")),
        ([93.0, "n/a", 44.0, A1, "x"],
         "bad.csv line 3 (row 1), column CIFAR100TestAccuracy200Epochs: 'n/a' is not a number"),
        ([93.0, "nan", 44.0, A1, "x"],
         "bad.csv line 3 (row 1), column CIFAR100TestAccuracy200Epochs: 'nan' is not a finite accuracy"),
        ([193.0, 70.0, 44.0, A1, "x"],
         "bad.csv line 3 (row 1), column CIFAR10TestAccuracy200Epochs: 193 is outside 0..100 (percent expected)"),
        ([93.0, 70.0, 44.0, A0, "x"],
         (f"bad.csv line 3 (row 1), column ArchitectureString: {A0} already appears in row 0; "
         "each architecture must appear once per file")),
        ([93.0, 70.0, A1], "bad.csv line 3 (row 1): 3 fields, the header has 5"),
    ],
)
def test_csv_bad_row_names_row_and_column(tmp_path, row, message):
    path = write_csv(tmp_path / "bad.csv", [[85.0, 52.0, 26.0, A0, "x"], row])
    with pytest.raises(TruthImportError) as info:
        import_truth(path, tmp_path / "out")
    assert str(info.value) == message
    assert not (tmp_path / "out" / "truth").exists()  # nothing half-written


def test_csv_without_architecture_or_accuracy_columns(tmp_path):
    # (auto would read an `arch` column as the table format's key: see test_truth_tables.py)
    with pytest.raises(TruthImportError, match=r"^a.csv has no ArchitectureString column \(columns: arch, acc\)"):
        import_truth(write_csv(tmp_path / "a.csv", [[A0, 1]], header=["arch", "acc"]), tmp_path / "out", format="csv")
    with pytest.raises(TruthImportError, match=r"^b.csv has no accuracy column such as CIFAR10TestAccuracy200Epochs"):
        import_truth(write_csv(tmp_path / "b.csv", [[A0]], header=["ArchitectureString"]), tmp_path / "out")


def test_csv_fractions_are_refused(tmp_path):
    path = write_csv(tmp_path / "f.csv", [[0.93, A0], [0.85, A1]],
                     header=["CIFAR10TestAccuracy200Epochs", "ArchitectureString"])
    with pytest.raises(TruthImportError) as info:
        import_truth(path, tmp_path / "out")
    assert str(info.value) == ("f.csv, column CIFAR10TestAccuracy200Epochs: every value is <= 1 (largest 0.93); "
                               "these look like fractions, but the importer expects percent (0-100)")


def test_reimport_replaces_and_foreign_name_is_refused(tmp_path):
    out = tmp_path / "out"
    first = import_truth(small_csv(tmp_path), out)
    again = import_truth(small_csv(tmp_path), out)
    assert again.truth_path == first.truth_path and read(again.truth_path).num_rows == 9
    (tmp_path / "other").mkdir()
    other = small_csv(tmp_path / "other")
    with pytest.raises(TruthImportError, match="already holds rows imported from .*; pass --name"):
        import_truth(other, out)
    renamed = import_truth(other, out, name="other")
    assert renamed.truth_path.name == "other.parquet"
    assert sorted(p.name for p in (out / "truth").iterdir()) == ["other.parquet", "tss.parquet"]


# ----------------------------------------------------------------------------- formats


def test_detect_format(tmp_path):
    assert detect_format(tmp_path / "x.csv") == "csv"
    assert detect_format(tmp_path / "x.JSON") == "suite-zero"
    (tmp_path / "noext").write_text('\n  {"cifar10": {}}')
    assert detect_format(tmp_path / "noext") == "suite-zero"
    (tmp_path / "table.txt").write_text("CIFAR10TestAccuracy200Epochs,ArchitectureString\n")
    assert detect_format(tmp_path / "table.txt") == "csv"
    (tmp_path / "junk.bin").write_bytes(b"\x00\x01garbage")
    with pytest.raises(TruthImportError) as info:
        detect_format(tmp_path / "junk.bin")
    assert str(info.value) == ("cannot tell the format of the file junk.bin from its name or content; "
                               f"pass --format ({', '.join(FORMATS)})")


def test_unknown_format_name(tmp_path):
    with pytest.raises(TruthImportError) as info:
        import_truth(small_csv(tmp_path), tmp_path / "out", format="bogus")
    assert str(info.value) == f"unknown truth format 'bogus'; formats: auto, {', '.join(FORMATS)}"


def test_format_of_the_wrong_kind_of_source(tmp_path):
    with pytest.raises(TruthImportError, match=r"^format csv reads a file, but .* is not one$"):
        import_truth(tmp_path, tmp_path / "out", format="csv")


# ----------------------------------------------------------------------------- NAS-Bench-Suite-Zero


def suite_zero_entry(arch, accuracy, **scores):
    key = str(to_naslib_tuple(arch))
    entry = {"idx": "534", "arch": key, "val_accuracy": accuracy}
    entry.update({proxy: {"score": value, "time": 0.5} for proxy, value in scores.items()})
    return key, entry


def small_suite_zero(tmp_path, name="zc_nasbench201.json"):
    data = {}
    for dataset in ("cifar10", "cifar100"):
        data[dataset] = dict([
            suite_zero_entry(A0, 86.06, synflow=41.9, jacov=-32.3, nwot=406.5, myproxy=1.0),
            suite_zero_entry(A1, 91.0, synflow=44.2, jacov=-1e8, nwot=410.0, myproxy=2.0),
            suite_zero_entry(A2, 10.0, synflow=-math.log(1e8), jacov=-1e8, nwot=-math.inf, myproxy=3.0),
        ])
    path = tmp_path / name
    path.write_text(json.dumps(data))  # writes -Infinity, as NASLib's file does
    return path


def test_suite_zero_import_splits_truth_and_published_scores(tmp_path):
    result = import_truth(small_suite_zero(tmp_path), tmp_path / "out")
    assert result.format == "suite-zero"
    assert result.counts == {("cifar10", "valid_acc"): 3, ("cifar100", "valid_acc"): 3}
    assert result.scores_path == tmp_path / "out" / "scores" / "published-suite-zero-zc_nasbench201.parquet"
    assert result.score_statuses == {"ok": 16, "nonfinite": 8}

    truth = read(result.truth_path).to_pylist()
    row = next(r for r in truth if r["arch"] == A1 and r["dataset"] == "cifar10")
    assert row == {"space": "nb201", "arch": A1, "arch_uid": arch_uid(A1), "arch_id": None, "dataset": "cifar10",
                   "metric": "valid_acc", "value": 91.0, "epochs": 200, "seed": "unknown",
                   "source": "suite-zero:zc_nasbench201.json"}

    table = read(result.scores_path)
    assert table.schema.remove_metadata() == SCORES_SCHEMA
    scores = {(r["arch"], r["dataset"], r["proxy"]): r for r in table.to_pylist()}
    ok = scores[(A0, "cifar10", "synflow")]
    assert ok["score"] == 41.9 and ok["status"] == "ok" and ok["error"] is None
    assert ok["preset"] == "suite-zero-published" and ok["weights"] == "published:nas-bench-suite-zero"
    assert ok["run_id"].startswith("published-suite-zero-") and ok["device"] == "published"
    assert ok["seed"] == 9000 and ok["batch_size"] == 32 and ok["seconds"] == 0.5 and ok["higher_is_better"]
    settings = json.loads(ok["settings"])
    assert settings["published_by"] == "NAS-Bench-Suite-Zero" and "score_transform" in settings
    # NASLib's -1e8 stand-in (and its log for synflow) is not a score: NaN, nonfinite, named
    for key, shown in (((A1, "cifar10", "jacov"), "-100000000"), ((A2, "cifar100", "synflow"), "-18.42068074")):
        placeholder = scores[key]
        assert placeholder["status"] == "nonfinite" and math.isnan(placeholder["score"])
        assert placeholder["error"] == (f"NAS-Bench-Suite-Zero placeholder {shown}: NASLib stores a NaN/inf score "
                                        "as -1e8")
    real_inf = scores[(A2, "cifar10", "nwot")]
    assert real_inf["status"] == "nonfinite" and real_inf["score"] == -math.inf and real_inf["error"] is None
    # a proxy the registry does not know gets NASLib's convention (raw score, higher is better)
    assert scores[(A0, "cifar10", "myproxy")]["higher_is_better"] is True
    assert json.loads(scores[(A0, "cifar10", "myproxy")]["settings"])["orientation_from"].startswith("NASLib")
    # each proxy's published settings hash differs from every other proxy's and is stable per proxy
    hashes = {(r["proxy"], r["settings_hash"]) for r in scores.values()}
    assert len(hashes) == 4


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"cifar10": {"(0, 2, 3": ', "z.json is not valid JSON: Expecting value at line 1 column 26"),
        ('["not", "a", "dict"]', "z.json is not in the NAS-Bench-Suite-Zero layout"),
        ('{"cifar10": {"(0, 2, 3, 2, 3)": {"val_accuracy": 80.0}}}',
         ("z.json, dataset cifar10, key (0, 2, 3, 2, 3): NASLib op-index tuple '(0, 2, 3, 2, 3)' has 5 entries, "
         "needs 6")),
        ('{"cifar10": {"(0, 2, 3, 2, 3, 1)": {"arch": "(1, 2, 3, 2, 3, 1)", "val_accuracy": 80.0}}}',
         ("z.json, dataset cifar10, key (0, 2, 3, 2, 3, 1): its 'arch' field '(1, 2, 3, 2, 3, 1)' disagrees with "
         "the key")),
        ('{"cifar10": {"(0, 2, 3, 2, 3, 1)": {"val_accuracy": "high"}}}',
         "z.json, dataset cifar10, key (0, 2, 3, 2, 3, 1), field val_accuracy: 'high' is not a number"),
        ('{"cifar10": {"(0, 2, 3, 2, 3, 1)": {"val_accuracy": 80.0, "snip": {"score": null}}}}',
         "z.json, dataset cifar10, key (0, 2, 3, 2, 3, 1), proxy snip, field score: None is not a number"),
    ],
)
def test_suite_zero_bad_files(tmp_path, content, message):
    path = tmp_path / "z.json"
    path.write_text(content)
    with pytest.raises(TruthImportError) as info:
        import_truth(path, tmp_path / "out")
    assert str(info.value).startswith(message)


# ----------------------------------------------------------------------------- the shared files


def test_shared_csv_imports_every_architecture(nb201_csv, tmp_path):
    result = import_truth(nb201_csv, tmp_path)
    assert result.counts == {("cifar10", "test_acc"): 15625, ("cifar100", "test_acc"): 15625,
                             ("ImageNet16-120", "test_acc"): 15625}
    table = read(result.truth_path)
    with open(nb201_csv, newline="") as fh:
        source = list(csv.DictReader(fh))
    c10 = {r["arch_id"]: r for r in table.to_pylist() if r["dataset"] == "cifar10"}
    assert sorted(c10) == list(range(15625))
    for i in (0, 1, 7777, 15624):
        assert c10[i]["arch"] == source[i]["ArchitectureString"]
        assert c10[i]["value"] == float(source[i]["CIFAR10TestAccuracy200Epochs"])
    # the join key's isomorphism column is the benchmark's own UniqueString, row for row
    assert all(c10[i]["arch_uid"] == row["UniqueString"] for i, row in enumerate(source))


def test_suite_zero_idx_is_not_the_benchmark_index(reference_json, nb201_csv):
    """Why the importer leaves arch_id null: the JSON's idx does not point at the same cell in NB201."""
    with open(nb201_csv, newline="") as fh:
        by_index = [row["ArchitectureString"] for row in csv.DictReader(fh)]
    entries = json.loads(reference_json.read_text())["cifar10"]
    same = sum(by_index[int(e["idx"])] == from_naslib_tuple(k) for k, e in entries.items())
    assert same < len(entries) * 0.01


def test_shared_suite_zero_json_imports(reference_json, tmp_path):
    result = import_truth(reference_json, tmp_path)
    assert result.counts == {("cifar10", "valid_acc"): 724, ("cifar100", "valid_acc"): 725,
                             ("ImageNet16-120", "valid_acc"): 724}
    assert result.score_statuses == {"ok": 26059, "nonfinite": 17}
    data = json.loads(reference_json.read_text())
    truth = {(r["dataset"], r["arch"]): r for r in read(result.truth_path).to_pylist()}
    for dataset, entries in data.items():
        for key, entry in list(entries.items())[:20]:
            row = truth[(dataset, from_naslib_tuple(key))]
            assert row["value"] == entry["val_accuracy"] and row["arch_id"] is None
    scores = read(result.scores_path)
    assert set(scores.column("proxy").to_pylist()) == {
        "flops", "params", "synflow", "grasp", "fisher", "grad_norm", "l2_norm", "plain", "nwot", "epe_nas",
        "jacov", "snip"}
