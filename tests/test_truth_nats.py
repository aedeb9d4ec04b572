"""``nats``: NATS-Bench topology directories (fast mode), built small in the real layout."""

from __future__ import annotations

import bz2
import collections
import io
import pickle

import duckdb
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from proxybench_cli.main import cli
from test_truth_nb201_pth import (  # shared builders
    ARCHS,
    EVALUATED,
    EXPECTED_SPLITS,
    arch_results,
    expected_rows,
    key,
)

from proxybench.truth import TruthImportError, detect_format, import_truth, nats_dir


def write_pbz2(path, obj, protocol=4):
    """``nats_bench.pickle_save``: bz2-compressed pickle (protocol 4)."""
    raw = pickle.dumps(obj, protocol=protocol)
    if protocol == 2:  # as numpy 1.x wrote it
        raw = raw.replace(b"cnumpy._core.multiarray\nscalar\n", b"cnumpy.core.multiarray\nscalar\n")
    path.write_bytes(bz2.compress(raw))
    return path


def per_arch(index, weights=False):
    data = collections.OrderedDict([("12", arch_results(index, 12)), ("200", arch_results(index, 200))])
    if weights:  # -full: trained weights in every ResultsCount
        for state in data.values():
            for result in state["all_results"].values():
                net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 1), torch.nn.BatchNorm2d(2))
                result["net_state_dict"] = net.state_dict()  # an OrderedDict with _metadata, as saved
    return data


def nats_dir_(tmp_path, name="NATS-tss-v1_0-test-simple", weights=False, meta=True):
    directory = tmp_path / name
    directory.mkdir()
    if meta:
        write_pbz2(directory / "meta.pickle.pbz2",
                   {"meta_archs": list(ARCHS), "total_archs": len(ARCHS), "arch2infos": None,
                    "evaluated_indexes": set()})
    for index in EVALUATED:
        # one file as an older writer would have produced it (protocol 2, numpy 1.x names)
        write_pbz2(directory / f"{index:06d}.pickle.pbz2", per_arch(index, weights), protocol=2 if index == 1 else 4)
    return directory


@pytest.fixture
def simple(tmp_path):
    return nats_dir_(tmp_path)


def rows_of(result):
    cursor = duckdb.connect().execute("select * from read_parquet(?)", [str(result.truth_path)])
    names = [column[0] for column in cursor.description]
    return sorted((dict(zip(names, row)) for row in cursor.fetchall()), key=key)


# ----------------------------------------------------------------------------- rows


def test_directory_rows_match_the_nb201_mapping(simple, tmp_path):
    result = import_truth(simple, tmp_path / "out")
    assert result.format == "nats" and result.truth_path.name == "NATS-tss-v1_0-test-simple.parquet"
    expected = sorted(expected_rows("nats:NATS-tss-v1_0-test-simple"), key=key)
    assert rows_of(result) == expected and result.truth_rows == 54
    by_key = {key(r): r["value"] for r in expected}
    assert by_key[(1, 200, "cifar100", "test_acc")] == 39.0  # the spelled-out value of the pth test
    meta = {k.decode(): v.decode() for k, v in duckdb.connect().execute(
        f"select key, value from parquet_kv_metadata('{result.truth_path}')").fetchall()}
    assert meta["proxybench.truth.format"] == "nats"
    assert meta["proxybench.truth.importer_version"] == "nats/1"
    assert meta["proxybench.truth.architectures"] == "3"
    assert meta["proxybench.truth.schedules"] == "12;200"


def test_full_directory_drops_the_weights_without_loading_them(tmp_path, monkeypatch):
    full = nats_dir_(tmp_path, "NATS-tss-v1_0-test-full", weights=True)
    assert b"_load_from_bytes" in bz2.decompress((full / "000000.pickle.pbz2").read_bytes())

    def no_torch_load(*args, **kwargs):
        raise AssertionError("torch.load must not run")

    monkeypatch.setattr(torch, "load", no_torch_load)
    result = import_truth(full, tmp_path / "out")
    assert rows_of(result) == sorted(expected_rows("nats:NATS-tss-v1_0-test-full"), key=key)
    data = nats_dir.load_pickle_bz2(full / "000002.pickle.pbz2")
    weights = data["200"]["all_results"][("cifar10", 777)]["net_state_dict"]
    assert list(weights) == ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
                             "1.num_batches_tracked"]
    assert {repr(v) for v in weights.values()} == {"<dropped tensor>"}


def test_without_meta_the_files_own_arch_str_is_used(tmp_path):
    directory = nats_dir_(tmp_path, "nometa", meta=False)
    assert detect_format(directory) == "nats"
    assert rows_of(import_truth(directory, tmp_path / "out")) == sorted(expected_rows("nats:nometa"), key=key)


def test_unpadded_file_names_are_accepted(tmp_path, simple):
    (simple / "000002.pickle.pbz2").rename(simple / "2.pickle.pbz2")
    assert len(rows_of(import_truth(simple, tmp_path / "out"))) == 54


def test_rows_equal_nats_bench_api(simple, tmp_path):
    nats_bench = pytest.importorskip("nats_bench")
    api = nats_bench.create(str(simple), "tss", fast_mode=True, verbose=False)  # our own test files: safe to unpickle
    rows = {key(r): r["value"] for r in rows_of(import_truth(simple, tmp_path / "out"))}
    fields = {"valid_acc": "valid-accuracy", "test_acc": "test-accuracy", "train_acc": "train-accuracy"}
    for index in EVALUATED:
        for hp in ("12", "200"):
            for (train_set, _), (dataset, metric) in EXPECTED_SPLITS.items():
                info = api.get_more_info(index, train_set, hp=hp, is_random=False)
                assert rows[(index, int(hp), dataset, metric)] == info[fields[metric]]


# ----------------------------------------------------------------------------- safe unpickling


def test_file_naming_another_class_is_refused_without_running_it(simple, tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    data = per_arch(0)
    data["200"]["clear_net_done"] = Payload()
    write_pbz2(simple / "000000.pickle.pbz2", data)
    with pytest.raises(TruthImportError) as info:
        import_truth(simple, tmp_path / "out")
    assert str(info.value).startswith("000000.pickle.pbz2: refused to unpickle it: global io.open is not allowed")
    assert "\n" not in str(info.value)
    assert not marker.exists()


def test_allow_list_is_exactly_containers_numbers_and_dropped_weights(simple):
    allowed = {f"{module}.{name}" for module, name in nats_dir._ALLOWED}
    assert allowed == {
        "collections.OrderedDict", "builtins.set", "_codecs.encode",
        "numpy.dtype", "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar",
        "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter",
        "torch.storage._load_from_bytes",
    }
    with pytest.raises(pickle.UnpicklingError, match="global os.system is not allowed"):
        nats_dir.SafeUnpickler(io.BytesIO(b"cos\nsystem\n(S'true'\ntR.")).load()
    with pytest.raises(TruthImportError, match=r"^obj\.pickle\.pbz2: refused to unpickle it: global numpy\..*_reconstruct"):
        nats_dir.load_pickle_bz2(write_pbz2(simple / "obj.pickle.pbz2", {"a": np.array([1, "x"], dtype=object)}))


# ----------------------------------------------------------------------------- malformed input


@pytest.mark.parametrize("content, message", [
    (b"not bz2 at all", r"^000001\.pickle\.pbz2 is not a readable bz2-compressed pickle \(OSError: Invalid data stream\)$"),
    (bz2.compress(b"\x80\x04not a pickle"), r"^000001\.pickle\.pbz2 is not a readable (bz2-compressed )?pickle"),
    (bz2.compress(pickle.dumps(per_arch(1), protocol=4)[:500]), r"^000001\.pickle\.pbz2 is not a readable"),
    (bz2.compress(pickle.dumps(per_arch(1), protocol=4))[:300], r"^000001\.pickle\.pbz2 is not a readable"),
])
def test_corrupt_file_gives_one_line_naming_it(simple, tmp_path, content, message):
    (simple / "000001.pickle.pbz2").write_bytes(content)
    with pytest.raises(TruthImportError, match=message) as info:
        import_truth(simple, tmp_path / "out")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("damage, message", [
    (lambda d: d / "notes.pickle.pbz2",
     (r"^NATS-tss-v1_0-test-simple/notes\.pickle\.pbz2: unexpected file; a NATS-Bench directory holds "
      r"meta\.pickle\.pbz2 and <index>\.pickle\.pbz2 files only$")),
    (lambda d: d / "2.pickle.pbz2",
     r"^NATS-tss-v1_0-test-simple: 000002\.pickle\.pbz2 and 2\.pickle\.pbz2 are both index 2$"),
    (lambda d: d / "000009.pickle.pbz2",
     r"^NATS-tss-v1_0-test-simple/000009\.pickle\.pbz2: index 9 is beyond meta_archs \(4 architectures\)$"),
])
def test_unexpected_files_are_named(simple, tmp_path, damage, message):
    write_pbz2(damage(simple), per_arch(2))
    with pytest.raises(TruthImportError, match=message):
        import_truth(simple, tmp_path / "out")


def test_arch_index_must_match_the_file_name(simple, tmp_path):
    write_pbz2(simple / "000000.pickle.pbz2", per_arch(2))
    with pytest.raises(TruthImportError, match=r"^NATS-tss-v1_0-test-simple/000000\.pickle\.pbz2, hp 12: arch_index is "
                                               r"2, but the file name says 0$"):
        import_truth(simple, tmp_path / "out")


def test_size_search_space_directory_is_refused(tmp_path):
    directory = tmp_path / "NATS-sss-v1_0-test-simple"
    directory.mkdir()
    write_pbz2(directory / "meta.pickle.pbz2", {"meta_archs": ["64:32:64:64:8"], "total_archs": 1})
    write_pbz2(directory / "000000.pickle.pbz2", {"90": {"arch_index": 0, "all_results": {}, "dataset_seed": {}}})
    with pytest.raises(TruthImportError, match=r"^NATS-sss-v1_0-test-simple/meta\.pickle\.pbz2, meta_archs\[0\]: .*; "
                                               r"the nats format reads NATS-Bench's topology search space \(NATS-tss-\*\)$"):
        import_truth(directory, tmp_path / "out")


def test_directory_without_architecture_files(tmp_path):
    directory = tmp_path / "empty"
    directory.mkdir()
    write_pbz2(directory / "meta.pickle.pbz2", {"meta_archs": list(ARCHS)})
    assert detect_format(directory) == "nats"
    with pytest.raises(TruthImportError, match=r"^empty holds no <index>\.pickle\.pbz2 files"):
        import_truth(directory, tmp_path / "out")


def test_claims_only_directories_with_pickle_pbz2(simple, tmp_path):
    assert nats_dir.claims(simple)
    other = tmp_path / "other"
    other.mkdir()
    (other / "x.json").write_text("{}")
    assert not nats_dir.claims(other)
    assert not nats_dir.claims(simple / "meta.pickle.pbz2")


# ----------------------------------------------------------------------------- CLI


def test_cli_truth_import_directory(simple, tmp_path):
    out = tmp_path / "results"
    result = CliRunner().invoke(cli, ["truth", "import", str(simple), "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("54 truth rows (ImageNet16-120/test_acc: 6, ")
    assert result.output.strip().endswith(str(out / "truth" / "NATS-tss-v1_0-test-simple.parquet"))
    count, = duckdb.connect().execute(
        "select count(*) from read_parquet(?) where seed = 'mean' and source = 'nats:NATS-tss-v1_0-test-simple'",
        [str(out / "truth" / "NATS-tss-v1_0-test-simple.parquet")]).fetchone()
    assert count == 54


def test_cli_error_is_one_line(simple, tmp_path):
    (simple / "000001.pickle.pbz2").write_bytes(b"garbage")
    result = CliRunner().invoke(cli, ["truth", "import", str(simple), "--format", "nats", "--out", str(tmp_path / "r")])
    assert result.exit_code == 1
    assert result.output == ("Error: 000001.pickle.pbz2 is not a readable bz2-compressed pickle "
                             "(OSError: Invalid data stream)\n")
