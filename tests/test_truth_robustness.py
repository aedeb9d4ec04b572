"""Robustness-dataset importer: small directories in the real layout (meta.json + <dataset>/<key>_<measure>.json)."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from proxybench.spaces.nb201 import arch_uid
from proxybench.truth import TRUTH_SCHEMA, TruthImportError, detect_format, import_truth
from proxybench.truth.robustness import format_eps, read_robustness

A0 = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
A1 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
# X1 and X2 differ only on edge e01, whose node reaches the output through `none` edges only: isomorphs.
X1 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|+|none~0|none~1|skip_connect~2|"
X2 = "|avg_pool_3x3~0|+|nor_conv_3x3~0|none~1|+|none~0|none~1|skip_connect~2|"

META = {
    "ids": {
        "0": {"nb201-string": A0, "isomorph": "0"},
        "5": {"nb201-string": X1, "isomorph": "5"},
        "9": {"nb201-string": X2, "isomorph": "5"},  # not evaluated: takes id 5's values
        "12": {"nb201-string": A1, "isomorph": "12"},
    },
    "epsilons": {"fgsm@Linf": [0.5, 1.0, 8.0], "pgd@Linf": [0.1, 0.5], "aa_square@Linf": [1.0]},
}
CLEAN10 = {"0": 0.75, "5": 0.5, "12": 0.875}
FGSM10 = {"0": [0.5, 0.25, 0.125], "5": [0.25, 0.125, 0.0], "12": [0.625, 0.5, 0.25]}
NOISE10 = {"0": [0.7, 0.6, 0.5, 0.4, 0.3], "5": [0.45, 0.4, 0.35, 0.3, 0.25], "12": [0.8, 0.7, 0.6, 0.5, 0.4]}
CLEAN100 = {"0": 0.5, "5": 0.25, "12": 0.625}
PGD100 = {"0": [0.25, 0.125], "5": [0.125, 0.0625], "12": [0.375, 0.25]}


def write_result(root, dataset, key, values, measure="accuracy"):
    folder = root / dataset
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{key}_{measure}.json"
    path.write_text(json.dumps({dataset: {key: {measure: values}}}))
    return path


def make_dataset(tmp_path, name="robustness-data", meta=META):
    root = tmp_path / name
    root.mkdir()
    (root / "meta.json").write_text(json.dumps(meta))
    write_result(root, "cifar10", "clean", CLEAN10)
    write_result(root, "cifar10", "fgsm@Linf", FGSM10)
    write_result(root, "cifar10", "gaussian_noise", NOISE10)
    write_result(root, "cifar10", "clean", {"0": 0.9, "5": 0.8, "12": 0.95}, measure="confidence")
    write_result(root, "cifar100", "clean", CLEAN100)
    write_result(root, "cifar100", "pgd@Linf", PGD100)
    return root


def rows_by_key(path):
    return {(r["arch"], r["dataset"], r["metric"]): r for r in pq.read_table(path).to_pylist()}


def metadata(path):
    return {k.decode(): v.decode() for k, v in pq.read_schema(path).metadata.items()}


def test_eps_is_written_as_shortest_exact_decimal():
    assert [format_eps(e) for e in (0.1, 0.5, 1.0, 2, 8.0, 255.0)] == ["0.1", "0.5", "1", "2", "8", "255"]


def test_import_writes_percent_rows_with_metric_names_and_isomorph_expansion(tmp_path):
    root = make_dataset(tmp_path)
    result = import_truth(root, tmp_path / "out")
    assert result.format == "robustness"
    assert result.truth_path == tmp_path / "out" / "truth" / "robustness-data.parquet"
    table = pq.read_table(result.truth_path)
    assert table.schema.remove_metadata() == TRUTH_SCHEMA
    # 4 architectures x (cifar10: clean + 3 fgsm + 5 severities; cifar100: clean + 2 pgd)
    assert result.truth_rows == table.num_rows == 4 * (9 + 3)
    assert result.counts[("cifar10", "cc:gaussian_noise@3")] == 4
    metrics = {(r["dataset"], r["metric"]) for r in table.to_pylist()}
    assert metrics == {
        ("cifar10", "clean_acc"), ("cifar10", "fgsm@0.5"), ("cifar10", "fgsm@1"), ("cifar10", "fgsm@8"),
        *{("cifar10", f"cc:gaussian_noise@{s}") for s in range(1, 6)},
        ("cifar100", "clean_acc"), ("cifar100", "pgd@0.1"), ("cifar100", "pgd@0.5"),
    }
    rows = rows_by_key(result.truth_path)
    assert rows[(A1, "cifar10", "clean_acc")] == {
        "space": "nb201", "arch": A1, "arch_uid": arch_uid(A1), "arch_id": 12, "dataset": "cifar10",
        "metric": "clean_acc", "value": 87.5, "epochs": 200, "seed": "unknown", "source": "robustness:robustness-data"}
    assert rows[(A0, "cifar10", "fgsm@8")]["value"] == 12.5
    assert rows[(A0, "cifar10", "cc:gaussian_noise@1")]["value"] == pytest.approx(70.0)
    assert rows[(A0, "cifar10", "cc:gaussian_noise@5")]["value"] == pytest.approx(30.0)
    assert rows[(A1, "cifar100", "pgd@0.1")]["value"] == 37.5
    # the non-canonical isomorph X2 (id 9) has its own rows, with X1's (id 5) values
    for dataset, metric in metrics:
        x1, x2 = rows[(X1, dataset, metric)], rows[(X2, dataset, metric)]
        assert x2["value"] == x1["value"] and x2["arch_id"] == 9 and x1["arch_id"] == 5
        assert x2["arch_uid"] == x1["arch_uid"]
    assert rows[(X2, "cifar10", "clean_acc")]["value"] == 50.0
    meta = metadata(result.truth_path)
    assert meta["proxybench.truth.format"] == "robustness"
    assert meta["proxybench.truth.importer_version"] == "robustness/1"
    assert meta["proxybench.truth.inherited_rows"] == "12"
    assert meta["proxybench.truth.missing_rows"] == "0"
    assert meta["proxybench.truth.isomorph_uid_mismatches"] == "0"
    assert meta["proxybench.truth.canonical_ids"] == "3"
    assert "cifar10/clean_confidence.json (measure confidence: not an accuracy)" in meta["proxybench.truth.skipped"]
    assert "isomorph" in meta["proxybench.truth.isomorph_expansion"]


def test_unknown_keys_and_measures_are_skipped_and_listed(tmp_path):
    root = make_dataset(tmp_path)
    write_result(root, "cifar10", "clean", {"0": [[1, 0], [0, 1]]}, measure="cm")
    write_result(root, "cifar10", "cw@L2", {"0": [0.1]})
    write_result(root, "cifar10", "mystery", {"0": 0.1})
    _, meta = read_robustness(root, "robustness:x")
    skipped = meta["skipped"].split(";")
    assert "cifar10/clean_cm.json (measure cm: not an accuracy)" in skipped
    assert "cifar10/cw@L2_accuracy.json (unknown attack key 'cw@L2')" in skipped
    assert "cifar10/mystery_accuracy.json (unknown key 'mystery')" in skipped


def test_severities_from_meta_win_over_positions(tmp_path):
    meta = {**META, "severities": {"gaussian_noise": [2, 3, 4, 5, 6]}}
    root = make_dataset(tmp_path, meta=meta)
    table, info = read_robustness(root, "robustness:x")
    assert "cc:gaussian_noise@6" in table.column("metric").to_pylist()
    assert "cc:gaussian_noise@1" not in table.column("metric").to_pylist()
    assert info["severities_from"] == "meta.json severities"


def test_auto_detection_claims_the_directory(tmp_path):
    root = make_dataset(tmp_path)
    assert detect_format(root) == "robustness"
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "meta.json").write_text("{}")
    with pytest.raises(TruthImportError, match="cannot tell the format"):
        detect_format(bare)


def one_line_error(root, tmp_path, match):
    with pytest.raises(TruthImportError, match=match) as info:
        import_truth(root, tmp_path / "out", format="robustness")
    assert "\n" not in str(info.value)
    return str(info.value)


def test_missing_meta_json_is_one_line(tmp_path):
    root = make_dataset(tmp_path)
    (root / "meta.json").unlink()
    one_line_error(root, tmp_path, r"has no meta\.json; unpack meta\.zip")


def test_id_not_in_meta_is_one_line(tmp_path):
    root = make_dataset(tmp_path)
    write_result(root, "cifar10", "clean", {**CLEAN10, "77": 0.5})
    one_line_error(root, tmp_path, r"cifar10/clean_accuracy\.json: architecture id '77' is not in meta\.json")


def test_bad_json_is_one_line(tmp_path):
    root = make_dataset(tmp_path)
    (root / "cifar10" / "fgsm@Linf_accuracy.json").write_text('{"cifar10": {')
    one_line_error(root, tmp_path, r"cifar10/fgsm@Linf_accuracy\.json is not valid JSON")


def test_wrong_nesting_is_one_line(tmp_path):
    root = make_dataset(tmp_path)
    (root / "cifar10" / "clean_accuracy.json").write_text(json.dumps({"cifar100": {"clean": {"accuracy": {}}}}))
    one_line_error(root, tmp_path, r'does not hold \["cifar10"\]\["clean"\]\["accuracy"\]')


def test_list_length_must_match_epsilons(tmp_path):
    root = make_dataset(tmp_path)
    write_result(root, "cifar10", "fgsm@Linf", {**FGSM10, "0": [0.5, 0.25]})
    one_line_error(root, tmp_path, r"id 0: 2 values, but there are 3 epsilons")


def test_percent_values_are_refused(tmp_path):
    root = make_dataset(tmp_path)
    write_result(root, "cifar10", "clean", {**CLEAN10, "0": 75.0})
    one_line_error(root, tmp_path, r"outside 0\.\.1 \(the robustness dataset stores fractions\)")


def test_isomorph_must_name_a_known_canonical_id(tmp_path):
    ids = {**META["ids"], "9": {"nb201-string": X2, "isomorph": "42"}}
    root = make_dataset(tmp_path, meta={**META, "ids": ids})
    one_line_error(root, tmp_path, r"id 9: its isomorph '42' is not an id")


def test_malformed_string_in_meta_is_one_line(tmp_path):
    ids = {**META["ids"], "12": {"nb201-string": "|conv~0|", "isomorph": "12"}}
    root = make_dataset(tmp_path, meta={**META, "ids": ids})
    one_line_error(root, tmp_path, r"meta\.json, id 12: ")


def test_no_accuracy_files_is_an_error(tmp_path):
    root = tmp_path / "empty"
    (root / "cifar10").mkdir(parents=True)
    (root / "meta.json").write_text(json.dumps(META))
    one_line_error(root, tmp_path, r"no <dataset>/<key>_accuracy\.json file")


def test_cli_imports_the_directory(tmp_path):
    from proxybench_cli.main import cli

    root = make_dataset(tmp_path)
    out = tmp_path / "results"
    result = CliRunner().invoke(cli, ["truth", "import", str(root), "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "48 truth rows" in result.output and "cifar10/fgsm@8: 4" in result.output
    assert (out / "truth" / "robustness-data.parquet").exists()

    (root / "meta.json").unlink()
    failed = CliRunner().invoke(cli, ["truth", "import", str(root), "--format", "robustness", "--out", str(out)])
    assert failed.exit_code == 1
    assert failed.output.startswith("Error: ") and "no meta.json" in failed.output
    assert failed.output.count("\n") == 1
