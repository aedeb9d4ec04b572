"""Space options (OFA resolutions, supernet weights, random init) through the engine, the search
and the command line; the FlatNAS evaluator's training settings."""

from __future__ import annotations

import json

import pytest
import torch

from proxybench.batch import ProxyBatch, input_resolution
from proxybench.errors import InvalidSettingError
from proxybench.spaces import get_space
from proxybench.weights import get_weights_provider
from proxybench_cli._options import parse_resolutions, space_options_from
from proxybench_cli.search_commands import trained_spec

STAGES = [{"depth": 2, "expand": [3, 3], "kernel": [3, 3]}] * 5


def _ofa_arch(resolution: int) -> str:
    return json.dumps({"resolution": resolution, "stages": STAGES}, separators=(",", ":"))  # the canonical form


def test_get_space_passes_options_and_names_unknown_ones():
    space = get_space("ofa", resolutions=[32, 48], random_init=True, supernet_weights=None)
    assert space.settings() == {"resolutions": [32, 48], "supernet_weights": None, "random_init": True}
    assert get_space("nb201").settings() == {}
    with pytest.raises(InvalidSettingError, match="no option \\['resolutions'\\]"):
        get_space("nb201", resolutions=[32])


def test_resolution_flag_parsing():
    assert parse_resolutions("128:224:4") == list(range(128, 225, 4)) and len(parse_resolutions("128:224:4")) == 25
    assert parse_resolutions("32,48") == [32, 48]
    import click

    for bad in ("32:16:4", "a:b:c", "32:64:0"):
        with pytest.raises(click.BadParameter, match="MIN:MAX:STEP"):
            parse_resolutions(bad)
    assert space_options_from(None, None, False) == {}
    assert space_options_from("32:48:16", "zoo", True) == {"resolutions": [32, 48], "supernet_weights": "zoo",
                                                             "random_init": True}


def test_batches_are_resized_to_the_architectures_resolution():
    batch = ProxyBatch(inputs=torch.randn(2, 3, 32, 32), targets=torch.tensor([0, 1]), num_classes=10)
    assert batch.resized(None) is batch and batch.resized(32) is batch
    assert batch.resized(48).inputs.shape == (2, 3, 48, 48)
    assert input_resolution(get_space("nb201"), "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|") is None
    assert input_resolution(get_space("ofa", resolutions=[32, 48]), _ofa_arch(48)) == 48


def test_ofa_scores_record_the_space_settings_and_see_the_resolution(tmp_path, data_dir):
    pytest.importorskip("ofa")
    from proxybench.scoring import score_architectures
    from proxybench.store import read_scores

    kwargs = dict(space="ofa", proxies="flops", batch_size=2, data_dir=data_dir, out=tmp_path, progress=False,
                  threads=1)
    score_architectures([_ofa_arch(32), _ofa_arch(48)], space_options={"resolutions": [32, 48], "random_init": True},
                        **kwargs)
    # the same architecture string under another configuration is another setting, not a resume
    score_architectures([_ofa_arch(32)], space_options={"resolutions": [32, 64], "random_init": True}, **kwargs)
    rows = read_scores(tmp_path).to_pylist()
    assert len(rows) == 3 and all(r["status"] == "ok" for r in rows)
    settings = [json.loads(r["settings"])["space_settings"] for r in rows]
    assert {tuple(s["resolutions"]) for s in settings} == {(32, 48), (32, 64)}
    assert all(s["random_init"] is True for s in settings)
    flops = {(r["arch"], tuple(json.loads(r["settings"])["space_settings"]["resolutions"])): r["score"] for r in rows}
    at_32, at_48 = flops[(_ofa_arch(32), (32, 48))], flops[(_ofa_arch(48), (32, 48))]
    assert at_48 / at_32 == pytest.approx((48 / 32) ** 2, rel=0.15)  # the network saw 48 px images


def test_flatnas_evaluator_spec_from_the_flags():
    spec = trained_spec(epochs=1, train_size=256, val_size=128)
    assert spec == "train:asam,epochs=1,rho=2,train_images=256,holdout=128"
    provider = get_weights_provider(spec)
    assert provider.settings["train_images"] == 256 and provider.settings["holdout"] == 128
    assert trained_spec(optimizer="sgd", epochs=0.5) == "train:sgd,epochs=0.5"
    # without train_images the settings (hence cache keys and hashes) are those of earlier releases
    assert "train_images" not in get_weights_provider("train:sgd,epochs=1").settings
    with pytest.raises(InvalidSettingError, match="train_images"):
        get_weights_provider("train:sgd,train_images=0")


def test_nb201_smallest_and_largest_bound_the_costs_of_the_space():
    from proxybench.search.loop import initial_architectures
    from proxybench.search.measures import CostMeasure

    space = get_space("nb201")
    sample = space.sample(30, seed=0)
    costs = CostMeasure(space).measure([space.smallest(), space.largest(), *sample])
    params = {a: v["params_m"] for a, v in costs.items()}
    connected = [a for a in sample if "none" not in a]  # disconnected cells can cost less; see smallest()
    assert all(params[space.smallest()] <= params[a] <= params[space.largest()] for a in connected)
    assert params[space.largest()] == pytest.approx(1.531546)  # the 1.53 M maximum NAS-Bench-201 reports (CIFAR-10)
    start = initial_architectures(space, 5, seed=0)
    assert start[:2] == [space.smallest(), space.largest()] and len(set(map(space.uid, start))) == 5


def test_an_ofa_picks_training_command_rebuilds_the_same_network(data_dir):
    """The command in a pick's training recipe runs as written (with a tiny training swapped in)."""
    pytest.importorskip("ofa")
    import shlex

    from click.testing import CliRunner
    from proxybench_cli.main import cli

    from proxybench.search.loop import train_recipe

    space = get_space("ofa", resolutions=[32, 48], random_init=True)
    arch = space.parse(_ofa_arch(48))
    words = shlex.split(train_recipe(space, arch, "cifar10")["command"])
    assert words[:2] == ["proxybench", "evaluate"] and "--random-init" in words
    assert words[words.index("--resolution") + 1] == "48"
    words[words.index("--weights") + 1] = "train:sgd,steps=1,batch_size=8,holdout=16"
    args = words[1:] + ["--n-images", "8", "--corruptions", "gaussian_noise", "--severities", "1",
                        "--data-dir", str(data_dir)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "| 48px |" in result.output
