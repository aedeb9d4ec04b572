"""``nb201-pth``: NAS-Bench-201 ``.pth`` benchmark files, built small in the real layout.

The builders here (:func:`arch_results`, :func:`acc`, :func:`expected_rows`) are shared with
``test_truth_nats.py``: NATS-Bench's per-architecture files hold the same ArchResults states.
"""

from __future__ import annotations

import io
import pickle
import zipfile

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from proxybench.spaces.nb201 import arch_uid, format_arch
from proxybench.truth import (
    TRUTH_SCHEMA,
    TruthImportError,
    detect_format,
    import_truth,
    nb201_pth,
)

# meta_archs in a deliberately non-canonical order: arch_id must come from the index
ARCHS = [
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
    format_arch(["none"] * 6),
    "|skip_connect~0|+|none~0|none~1|+|none~0|none~1|nor_conv_1x1~2|",  # index 3: never evaluated
]
EVALUATED = (0, 1, 2)

#: (NB201 training set, eval set) -> (dataset, metric): written out here, independent of the module
EXPECTED_SPLITS = {
    ("cifar10-valid", "x-valid"): ("cifar10", "valid_acc"),
    ("cifar10", "ori-test"): ("cifar10", "test_acc"),
    ("cifar10", "train"): ("cifar10", "train_acc"),
    ("cifar100", "x-valid"): ("cifar100", "valid_acc"),
    ("cifar100", "x-test"): ("cifar100", "test_acc"),
    ("cifar100", "train"): ("cifar100", "train_acc"),
    ("ImageNet16-120", "x-valid"): ("ImageNet16-120", "valid_acc"),
    ("ImageNet16-120", "x-test"): ("ImageNet16-120", "test_acc"),
    ("ImageNet16-120", "train"): ("ImageNet16-120", "train_acc"),
}
#: eval sets each training set carries in the real files (ori-test of cifar100/ImageNet is valid+test)
EVAL_SETS = {"cifar10-valid": ("x-valid", "ori-test"), "cifar10": ("ori-test",),
             "cifar100": ("ori-test", "x-valid", "x-test"), "ImageNet16-120": ("ori-test", "x-valid", "x-test")}
#: seeds per schedule and training set (several, and different counts, so a wrong mean shows)
SEEDS = {200: {"cifar10-valid": [777, 888, 999], "cifar10": [777, 888, 999], "cifar100": [777, 888],
               "ImageNet16-120": [777, 888, 999]},
         12: {"cifar10-valid": [111, 777], "cifar10": [777], "cifar100": [777], "ImageNet16-120": [777]}}

_SET = {"train": 9.0, "x-valid": 1.0, "ori-test": 2.0, "x-test": 3.0}
_TRAIN_SET = {"cifar10-valid": 0.0, "cifar10": 0.5, "cifar100": -20.0, "ImageNet16-120": -30.0}
_SEED = {111: 0.5, 777: 0.25, 888: 1.75, 999: -0.5}


def acc(index, epochs, train_set, eval_set, seed, epoch):
    """A distinct accuracy per architecture, schedule, split, seed; earlier epochs are 7 points lower."""
    value = 45.0 + 10 * index + _SET[eval_set] + _TRAIN_SET[train_set] + _SEED[seed] - (5.0 if epochs == 12 else 0.0)
    return value if epoch == epochs - 1 else value - 7.0


def results_count(index, epochs, train_set, seed):
    """A ResultsCount state (``ResultsCount.__dict__``) with the last epochs and one early one."""
    recorded = sorted({0, 11, epochs - 2, epochs - 1})
    evals = {}
    for eval_set in EVAL_SETS[train_set]:
        # like update_OLD_eval, some sets were evaluated at the last epoch only
        at = recorded if eval_set in ("x-valid",) or train_set == "cifar10" else [epochs - 1]
        evals.update({f"{eval_set}@{e}": acc(index, epochs, train_set, eval_set, seed, e) for e in at})
    return {
        "name": train_set, "net_state_dict": None,
        "train_acc1es": {e: acc(index, epochs, train_set, "train", seed, e) for e in recorded},
        "train_acc5es": None, "train_losses": {e: 1.0 / (e + 1) for e in recorded}, "train_times": None,
        "arch_config": {"channel": 16, "num_cells": 5, "arch_str": ARCHS[index], "class_num": 10},
        "params": np.float64(0.5 + index / 10),  # a numpy scalar, as AutoDL's count_parameters produced
        "flop": 80.0 + index, "seed": seed, "epochs": epochs, "latency": [0.01 + index / 1000],
        "eval_names": list(EVAL_SETS[train_set]), "eval_acc1es": evals, "eval_times": {},
        "eval_losses": {key: 0.5 for key in evals},
    }


def arch_results(index, epochs, train_sets=None):
    """An ArchResults state (``ArchResults.state_dict()``) for one schedule."""
    seeds = SEEDS[epochs]
    train_sets = train_sets or list(seeds)
    return {
        "arch_index": index, "arch_str": ARCHS[index],
        "all_results": {(t, s): results_count(index, epochs, t, s) for t in train_sets for s in seeds[t]},
        "dataset_seed": {t: list(seeds[t]) for t in train_sets},
        "clear_net_done": True,
    }


def benchmark(less_sets=None):
    """The ``.pth`` top-level dict; ``less_sets=["cifar10-valid"]`` gives v1.0's 12-epoch coverage."""
    return {
        "meta_archs": list(ARCHS), "total_archs": len(ARCHS),
        "arch2infos": {i: {"less": arch_results(i, 12, less_sets), "full": arch_results(i, 200)} for i in EVALUATED},
        "evaluated_indexes": list(EVALUATED),
    }


def expected_rows(source, schedules=((12, None), (200, None))):
    rows = []
    for index in EVALUATED:
        for epochs, train_sets in schedules:
            for (train_set, eval_set), (dataset, metric) in EXPECTED_SPLITS.items():
                if train_sets is not None and train_set not in train_sets:
                    continue
                values = [acc(index, epochs, train_set, eval_set, s, epochs - 1) for s in SEEDS[epochs][train_set]]
                rows.append({"space": "nb201", "arch": ARCHS[index], "arch_uid": arch_uid(ARCHS[index]),
                             "arch_id": index, "dataset": dataset, "metric": metric,
                             "value": sum(values) / len(values), "epochs": epochs, "seed": "mean",
                             "source": source})
    return rows


def key(row):
    return row["arch_id"], row["epochs"], row["dataset"], row["metric"]


def save_legacy(obj, path):
    """``torch.save`` as the released files were written: legacy (non-zip) format, numpy 1.x names."""
    buffer = io.BytesIO()
    torch.save(obj, buffer, _use_new_zipfile_serialization=False)
    raw = buffer.getvalue().replace(b"cnumpy._core.multiarray\nscalar\n", b"cnumpy.core.multiarray\nscalar\n")
    path.write_bytes(raw)
    return path


@pytest.fixture
def v11(tmp_path):
    return save_legacy(benchmark(), tmp_path / "NAS-Bench-201-v1_1-test.pth")


def read_rows(path):
    table = pq.read_table(path)
    assert table.schema.remove_metadata() == TRUTH_SCHEMA
    return table


# ----------------------------------------------------------------------------- rows


def test_v11_rows_are_seed_means_of_the_last_epoch_per_split(v11, tmp_path):
    result = import_truth(v11, tmp_path / "out")
    assert result.format == "nb201-pth" and result.truth_path.name == "NAS-Bench-201-v1_1-test.parquet"
    table = read_rows(result.truth_path)
    rows = sorted(table.to_pylist(), key=key)
    assert rows == sorted(expected_rows("nb201-pth:NAS-Bench-201-v1_1-test.pth"), key=key)
    assert result.truth_rows == len(rows) == 3 * 2 * 9
    by_key = {key(r): r["value"] for r in rows}
    # spelled out: arch 1, cifar100 x-test, 200 epochs, seeds 777/888: 55+3-20+(0.25|1.75)
    assert by_key[(1, 200, "cifar100", "test_acc")] == 39.0
    # cifar10 valid_acc is cifar10-valid's x-valid; arch 0, 12 epochs, seeds 111/777: 45+1-5+(0.5|0.25)
    assert by_key[(0, 12, "cifar10", "valid_acc")] == 41.375
    # cifar10 test_acc is the full-train-set run's ori-test, not cifar10-valid's ori-test
    assert by_key[(2, 200, "cifar10", "test_acc")] == 65.0 + 2.0 + 0.5 + (0.25 + 1.75 - 0.5) / 3
    assert {r["seed"] for r in rows} == {"mean"} and {r["epochs"] for r in rows} == {12, 200}
    assert 3 not in {r["arch_id"] for r in rows}  # not evaluated, no rows
    meta = {k.decode(): v.decode() for k, v in table.schema.metadata.items()}
    assert meta["proxybench.truth.format"] == "nb201-pth"
    assert meta["proxybench.truth.importer_version"] == "nb201-pth/1"
    assert meta["proxybench.truth.schedules"] == "hp=12:12 epochs;hp=200:200 epochs"
    assert meta["proxybench.truth.skipped_metrics"] == ""


def test_v10_less_schedule_has_only_cifar10_valid(tmp_path):
    path = save_legacy(benchmark(less_sets=["cifar10-valid"]), tmp_path / "NAS-Bench-201-v1_0-test.pth")
    rows = read_rows(import_truth(path, tmp_path / "out").truth_path).to_pylist()
    expected = expected_rows("nb201-pth:NAS-Bench-201-v1_0-test.pth", ((12, ["cifar10-valid"]), (200, None)))
    assert sorted(rows, key=key) == sorted(expected, key=key)
    assert {(r["dataset"], r["metric"]) for r in rows if r["epochs"] == 12} == {("cifar10", "valid_acc")}


def test_zip_format_written_by_current_torch_loads_too(tmp_path):
    path = tmp_path / "bench.pth"
    torch.save(benchmark(), path)  # zip format, numpy 2.x names
    assert zipfile.is_zipfile(path)
    rows = read_rows(import_truth(path, tmp_path / "out").truth_path).to_pylist()
    assert sorted(rows, key=key) == sorted(expected_rows("nb201-pth:bench.pth"), key=key)


def test_metric_missing_from_every_seed_is_skipped_and_counted(tmp_path):
    data = benchmark()
    for result in data["arch2infos"][1]["full"]["all_results"].values():
        for k in [k for k in result["eval_acc1es"] if k.startswith("x-test@")]:
            del result["eval_acc1es"][k]
    result = import_truth(save_legacy(data, tmp_path / "b.pth"), tmp_path / "out")
    rows = read_rows(result.truth_path).to_pylist()
    assert (1, 200, "cifar100", "test_acc") not in {key(r) for r in rows}
    assert result.truth_rows == 3 * 2 * 9 - 2
    meta = pq.read_schema(result.truth_path).metadata
    assert meta[b"proxybench.truth.skipped_metrics"] == b"ImageNet16-120/x-test:1;cifar100/x-test:1"


# ----------------------------------------------------------------------------- safe loading


def test_load_goes_through_weights_only_with_a_scoped_allow_list(v11, monkeypatch):
    before = list(torch.serialization.get_safe_globals())
    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append((kwargs.get("weights_only"), list(torch.serialization.get_safe_globals())))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    data = nb201_pth.load_benchmark(v11)
    assert set(data) == {"meta_archs", "total_archs", "arch2infos", "evaluated_indexes"}
    [(weights_only, allowed)] = calls
    assert weights_only is True
    names = {entry[1] if isinstance(entry, tuple) else f"{entry.__module__}.{entry.__qualname__}" for entry in allowed}
    assert {"numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar", "numpy.dtype"} <= names
    # nothing of the allow-list is left behind (torch itself may register its own classes when a
    # lazily imported module loads during the call, so compare our entries, not the whole list)
    left = [e for e in torch.serialization.get_safe_globals() if e not in before]
    left_names = {e[1] if isinstance(e, tuple) else f"{e.__module__}.{e.__qualname__}" for e in left}
    assert not {n for n in left_names if n.startswith("numpy")}, left_names
    assert type(data["arch2infos"][0]["full"]["all_results"][("cifar10", 777)]["params"]) is np.float64


def test_file_needing_another_class_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    data = benchmark()
    data["arch2infos"][0]["full"]["clear_net_done"] = Payload()
    path = save_legacy(data, tmp_path / "evil.pth")
    with pytest.raises(TruthImportError) as info:
        import_truth(path, tmp_path / "out")
    message = str(info.value)
    assert "\n" not in message and message.startswith("evil.pth needs ") and "open" in message
    assert "weights_only=True" in message
    assert not marker.exists()


def test_numpy_scalars_of_object_dtype_and_numpy_arrays_are_refused(tmp_path):
    with pytest.raises(pickle.UnpicklingError, match="not allowed"):
        nb201_pth.numpy_scalar(np.dtype(object), b"")
    assert nb201_pth.numpy_scalar(np.dtype("f8"), np.float64(2.5).tobytes()) == 2.5
    data = benchmark()
    data["arch2infos"][0]["full"]["latency"] = np.array([1, "a"], dtype=object)  # needs numpy's _reconstruct
    with pytest.raises(TruthImportError, match=r"^obj\.pth needs numpy\.(_)?core\.multiarray\._reconstruct, "):
        import_truth(save_legacy(data, tmp_path / "obj.pth"), tmp_path / "out")


def test_old_torch_is_told_to_upgrade(v11, tmp_path, monkeypatch):
    monkeypatch.setattr(nb201_pth, "_torch_version", lambda: (2, 4))
    with pytest.raises(TruthImportError, match=r"needs torch >= 2\.6.*--format nats"):
        import_truth(v11, tmp_path / "out")


# ----------------------------------------------------------------------------- malformed input


@pytest.mark.parametrize("content, message", [
    (b"this is not a torch file at all", r"^junk\.pth is not a (readable|loadable) torch file"),
    (b"junk", r"^junk\.pth is not a readable torch file \(error: unpack requires a buffer of 4 bytes\); expected "),
    (b"", r"^junk\.pth is not a (readable|loadable) torch file"),
])
def test_non_torch_bytes_give_one_line(tmp_path, content, message):
    path = tmp_path / "junk.pth"
    path.write_bytes(content)
    with pytest.raises(TruthImportError, match=message) as info:
        import_truth(path, tmp_path / "out")
    assert "\n" not in str(info.value)


def test_truncated_file_gives_one_line(v11, tmp_path):
    path = tmp_path / "cut.pth"
    path.write_bytes(v11.read_bytes()[: v11.stat().st_size // 2])
    with pytest.raises(TruthImportError, match=r"^cut\.pth is not a (readable|loadable) torch file") as info:
        import_truth(path, tmp_path / "out")
    assert "\n" not in str(info.value)


def test_torch_file_of_another_layout_is_named(tmp_path):
    path = tmp_path / "weights.pth"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, path)
    with pytest.raises(TruthImportError, match=r"^weights\.pth is not a NAS-Bench-201 benchmark file: expected a dict "
                                               r"with meta_archs, arch2infos, evaluated_indexes, got 'state_dict'$"):
        import_truth(path, tmp_path / "out")


@pytest.mark.parametrize("damage, message", [
    (lambda d: d["arch2infos"][1]["full"]["all_results"][("cifar100", 888)]["eval_acc1es"].pop("x-test@199"),
     (r"^b\.pth, arch 1, hp 200, cifar100: x-test accuracy after the last epoch is missing for seed\(s\) 888 "
      r"but present for the others$")),
    (lambda d: d["arch2infos"][0]["less"]["all_results"][("cifar10", 777)]["train_acc1es"].update({11: 101.0}),
     r"^b\.pth, arch 0, hp 12, cifar10 seed 777: train_acc1es\[11\] = 101\.0 is not an accuracy in percent"),
    (lambda d: d["arch2infos"][2]["full"]["all_results"][("cifar10", 999)].update(epochs=100),
     r"^b\.pth, arch 2, hp 200, cifar10: the seeds ran different schedules \(\[100, 200\] epochs\)$"),
    (lambda d: d["arch2infos"][2]["full"].update(arch_str=ARCHS[0]),
     r"^b\.pth, arch 2, hp 200: its arch_str .* is not \|none~0\|"),
    (lambda d: d["meta_archs"].__setitem__(1, "|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|"),
     r"^b\.pth, arch 1, meta_archs: "),
    (lambda d: d["arch2infos"].update({7: d["arch2infos"][0]}),
     r"^b\.pth: arch2infos key 7 is not an index in 0\.\.3 \(meta_archs\)$"),
    (lambda d: d["arch2infos"][0].update(full=[1, 2]),
     r"^b\.pth, arch 0, hp 200: expected an ArchResults state with all_results and dataset_seed, got list"),
])
def test_malformed_entries_name_the_architecture(tmp_path, damage, message):
    data = benchmark()
    damage(data)
    with pytest.raises(TruthImportError, match=message) as info:
        import_truth(save_legacy(data, tmp_path / "b.pth"), tmp_path / "out")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "out" / "truth").exists()


# ----------------------------------------------------------------------------- detection, registry


def test_auto_detection_claims_pth_files_only(v11, tmp_path):
    assert detect_format(v11) == "nb201-pth"
    assert nb201_pth.claims(v11) and not nb201_pth.claims(tmp_path / "x.csv")
    assert not nb201_pth.claims(tmp_path)


# ----------------------------------------------------------------------------- the reference API


def test_rows_equal_nas_201_api_get_more_info(v11, tmp_path):
    api_module = pytest.importorskip("nas_201_api")
    api = api_module.NASBench201API(nb201_pth.load_benchmark(v11), verbose=False)  # from a dict: no unsafe load
    rows = {key(r): r["value"] for r in read_rows(import_truth(v11, tmp_path / "out").truth_path).to_pylist()}
    fields = {"valid_acc": "valid-accuracy", "test_acc": "test-accuracy", "train_acc": "train-accuracy"}
    checked = 0
    for index in EVALUATED:
        for hp in ("12", "200"):
            for (train_set, _), (dataset, metric) in EXPECTED_SPLITS.items():
                info = api.get_more_info(index, train_set, hp=hp, is_random=False)
                assert rows[(index, int(hp), dataset, metric)] == float(info[fields[metric]])
                checked += 1
    assert checked == len(rows) == 54
