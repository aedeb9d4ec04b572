"""benchmarks/reference_agreement.py reads every NAS-Bench-Suite-Zero reference through the importers."""

from __future__ import annotations

import csv
import importlib.util
import json
import math
from pathlib import Path

import pytest

from proxybench.spaces.nb201 import format_arch, to_naslib_tuple
from proxybench.truth import TruthImportError, import_truth

REPO = Path(__file__).resolve().parents[1]
A0 = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
A1 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
A2 = format_arch(["none"] * 6)


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("reference_agreement", REPO / "benchmarks" / "reference_agreement.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def small_csv(tmp_path):
    path = tmp_path / "nb201_zc_proxies.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["net", "net_str", "nwot", "synflow", "jacov"])
        writer.writerow([str(to_naslib_tuple(A0)), A0, 406.5, 41.9, -32.3])
        writer.writerow([str(to_naslib_tuple(A1)), A1, 410.0, 44.2, -1e8])
        writer.writerow([str(to_naslib_tuple(A2)), A2, -1e8, -math.log(1e8), -1e8])
    return path


def test_reference_from_csv_json_and_imported_parquet_agree(script, tmp_path):
    path = small_csv(tmp_path)
    expected = {"nwot": {A0: 406.5, A1: 410.0}, "synflow": {A0: 41.9, A1: 44.2}, "jacov": {A0: -32.3}}
    assert script.load_reference(path, "cifar10") == expected  # placeholders are never compared
    imported = import_truth(path, tmp_path / "out").scores_path
    assert script.load_reference(imported, "cifar10") == expected
    entries = {str(to_naslib_tuple(A0)): {"val_accuracy": 80.0, "nwot": {"score": 406.5, "time": 1.0}}}
    (tmp_path / "z.json").write_text(json.dumps({"cifar10": entries}))
    assert script.load_reference(tmp_path / "z.json", "cifar10") == {"nwot": {A0: 406.5}}
    with pytest.raises(TruthImportError, match=r"^z.json holds no published cifar100 scores$"):
        script.load_reference(tmp_path / "z.json", "cifar100")


def test_reference_refuses_a_truth_file(script, tmp_path):
    path = tmp_path / "tss.csv"
    path.write_text(f"ArchitectureString,CIFAR10TestAccuracy200Epochs\n{A0},90\n")
    with pytest.raises(TruthImportError, match=r"^tss.csv is a csv file, not a NAS-Bench-Suite-Zero reference"):
        script.load_reference(path, "cifar10")


def test_seeded_sample_is_stable_and_seed_dependent(script):
    reference = {"p": {f"a{i:03d}": float(i) for i in range(200)}, "q": {"zzz": 1.0}}
    first = script.pick_architectures(reference, 30, 0, None)
    assert len(first) == 30 and first == sorted(set(first))
    assert script.pick_architectures(reference, 30, 0, None) == first
    assert script.pick_architectures(reference, 30, 1, None) != first
    assert script.pick_architectures(reference, None, 0, 3) == ["a000", "a001", "a002"]
    assert len(script.pick_architectures(reference, None, 0, None)) == 201


def test_agreement_per_proxy(script):
    reference = {"p": {"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0}, "r": {"a": 1.0}}
    ours = {"p": {"a": 10.0, "b": 20.0, "c": 30.0, "d": math.nan}, "q": {"a": 1.0}}
    rows = {r["proxy"]: r for r in script.agreement(reference, ours)}
    assert rows["p"]["n"] == 3 and rows["p"]["spearman"] == pytest.approx(1.0)
    assert rows["q"]["note"] == "not in the reference"
    assert rows["r"]["note"].startswith("not scored")


@pytest.mark.shared
def test_sample_of_the_full_table_scores_cost_proxies_exactly(script, shared_dir, tmp_path, capsys):
    reference = shared_dir / "data" / "nb201" / "extra" / "nb201_zc_proxies.csv"
    args = ["--reference", str(reference), "--data-dir", str(shared_dir / "data"), "--out", str(tmp_path),
            "--sample", "5", "--seed", "3", "--threads", "1", "--proxies", "params,flops"]
    assert script.main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    table = {line.split()[0]: line.split() for line in lines if line.startswith(("params", "flops"))}
    # data-free proxies: proxybench's values are NASLib's, so the ranks agree exactly
    assert table["params"][1:] == ["5", "1.000", "1.000"] and table["flops"][1:] == ["5", "1.000", "1.000"]
    assert script.main(args) == 0  # resumed: nothing left to score
    assert capsys.readouterr().out.startswith("scored 0 architectures (5 already done)")
