"""NAS-Bench-x11 importer, against a stand-in ``nas_bench_x11`` module (the real one is not on PyPI).

The stand-in mimics the real API's call shapes: ``nas_bench_x11.api.load_ensemble(directory)``
(which prints the directory, as the real one does) returns an object with
``predict(config, representation, with_noise=False, search_space='darts', components=False)``
returning a numpy learning curve.
"""

from __future__ import annotations

import json
import sys
import types

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from proxybench.spaces.nb201 import NUM_ARCHS, OPS, arch_uid, parse_arch
from proxybench.truth import TRUTH_SCHEMA, TruthImportError, detect_format, import_truth
from proxybench.truth.x11 import claims, read_x11

A0 = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
A1 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def final_acc(arch):
    """The stand-in's deterministic 'prediction': 50 + the sum of the op indices."""
    return 50.0 + sum(OPS.index(op) for op in parse_arch(arch))


class FakeSurrogateAPI:
    def __init__(self, directory, scale=1.0, fail_on=None):
        self.directory, self.scale, self.fail_on, self.calls = directory, scale, fail_on, []

    def predict(self, config, representation, with_noise=False, search_space="darts", components=False):
        assert representation == "arch_str" and "nb201" in search_space and not with_noise and not components
        self.calls.append(config)
        if config == self.fail_on:
            raise ValueError("The number of features of data (6) does not match the model\nsecond line")
        final = final_acc(config)
        return np.linspace(10.0, final, 200) * self.scale  # like x11: a 1-D array, one entry per epoch


@pytest.fixture
def fake_x11(monkeypatch):
    state = {"scale": 1.0, "fail_on": None, "loaded": []}
    package = types.ModuleType("nas_bench_x11")
    api = types.ModuleType("nas_bench_x11.api")

    def load_ensemble(ensemble_parent_directory):
        print(ensemble_parent_directory)  # the real load_ensemble prints it too
        surrogate = FakeSurrogateAPI(ensemble_parent_directory, state["scale"], state["fail_on"])
        state["loaded"].append(surrogate)
        return surrogate

    api.load_ensemble = load_ensemble
    package.api = api
    monkeypatch.setitem(sys.modules, "nas_bench_x11", package)
    monkeypatch.setitem(sys.modules, "nas_bench_x11.api", api)
    return state


def make_surrogate(tmp_path, name="nb211-v0.5", members=2):
    root = tmp_path / name
    for k in range(members):
        member = root / f"ensemble_member_{k}"
        member.mkdir(parents=True)
        (member / "surrogate_model.model").write_bytes(b"joblib stand-in")
        (member / "model_config.json").write_text(json.dumps({"model": "svd_lgb"}))
        (member / "data_config.json").write_text("{}")
    return root


def test_read_predicts_final_valid_acc_for_given_archs(tmp_path, fake_x11):
    root = make_surrogate(tmp_path)
    table, meta = read_x11(root, "x11:nb211-v0.5", archs=[A0, A1])
    assert table.schema == TRUTH_SCHEMA
    assert table.to_pylist() == [
        {"space": "nb201", "arch": arch, "arch_uid": arch_uid(arch), "arch_id": None, "dataset": "cifar10",
         "metric": "valid_acc", "value": final_acc(arch), "epochs": 200, "seed": "surrogate",
         "source": "x11:nb211-v0.5"}
        for arch in (A0, A1)
    ]
    assert fake_x11["loaded"][0].directory == str(root) and fake_x11["loaded"][0].calls == [A0, A1]
    assert meta["surrogate"] == str(root.resolve())
    assert meta["surrogate_members"] == "2" and meta["surrogate_model"] == "svd_lgb"
    assert "with_noise=False" in meta["predict"] and meta["curve_length"] == "200"


def test_import_covers_all_15625_strings_and_records_the_surrogate(tmp_path, fake_x11, capsys):
    root = make_surrogate(tmp_path)
    result = import_truth(root, tmp_path / "out")
    assert result.format == "x11" and result.truth_rows == NUM_ARCHS
    assert result.counts == {("cifar10", "valid_acc"): NUM_ARCHS}
    table = pq.read_table(result.truth_path)
    assert table.num_rows == NUM_ARCHS == len(set(table.column("arch").to_pylist()))
    assert set(table.column("source").to_pylist()) == {"x11:nb211-v0.5"}
    meta = {k.decode(): v.decode() for k, v in table.schema.metadata.items()}
    assert meta["proxybench.truth.surrogate"] == str(root.resolve())
    assert meta["proxybench.truth.importer_version"] == "x11/1"
    assert str(root) not in capsys.readouterr().out  # load_ensemble's print is swallowed


def test_missing_package_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "nas_bench_x11", None)  # import fails even if it is installed
    root = make_surrogate(tmp_path)
    with pytest.raises(TruthImportError) as info:
        import_truth(root, tmp_path / "out", format="x11")
    message = str(info.value)
    assert message.startswith("reading nas-bench-x11 surrogates needs the nas_bench_x11 package (not on PyPI): "
                              "pip install git+https://github.com/automl/nas-bench-x11")
    assert "\n" not in message


def test_claims_surrogate_directories_only(tmp_path):
    root = make_surrogate(tmp_path)
    assert claims(root) and detect_format(root) == "x11"
    assert claims(root / "ensemble_member_0")  # a single member is a surrogate too
    assert not claims(make_surrogate(tmp_path, name="nb311-v0.5"))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert not claims(empty)


def test_directory_without_members_is_one_line(tmp_path, fake_x11):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(TruthImportError, match=r"empty holds no surrogate_model\.model; expected") as info:
        import_truth(empty, tmp_path / "out", format="x11")
    assert "\n" not in str(info.value)


def test_failing_prediction_is_one_line(tmp_path, fake_x11):
    fake_x11["fail_on"] = A1
    with pytest.raises(TruthImportError, match=r"failed on .*ValueError: The number of features") as info:
        read_x11(make_surrogate(tmp_path), "x11:s", archs=[A0, A1])
    assert "\n" not in str(info.value) and "second line" not in str(info.value)


def test_fraction_predictions_are_refused(tmp_path, fake_x11):
    fake_x11["scale"] = 0.01
    with pytest.raises(TruthImportError, match="look like fractions"):
        read_x11(make_surrogate(tmp_path), "x11:s", archs=[A0, A1])


def test_malformed_arch_is_refused_before_loading(tmp_path, fake_x11):
    with pytest.raises(TruthImportError, match="unknown op"):
        read_x11(make_surrogate(tmp_path), "x11:s", archs=["|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|"])
    assert fake_x11["loaded"] == []


def test_cli_imports_the_surrogate(tmp_path, fake_x11):
    from proxybench_cli.main import cli

    root = make_surrogate(tmp_path)
    out = tmp_path / "results"
    result = CliRunner().invoke(cli, ["truth", "import", str(root), "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"{NUM_ARCHS} truth rows (cifar10/valid_acc: {NUM_ARCHS})")
    assert (out / "truth" / "nb211-v0.parquet").exists()  # stem: the name up to its first dot
