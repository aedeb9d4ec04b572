"""The NB201 one-shot supernet: weight inheritance, BN recalibration, resumable training, the provider, the CLI."""

from __future__ import annotations

import json
import math

import pytest
import torch
from click.testing import CliRunner
from proxybench_cli.supernet_commands import supernet as supernet_group

from proxybench.errors import InvalidSettingError
from proxybench.spaces import get_space
from proxybench.spaces.nb201 import OPS, format_arch
from proxybench.spaces.nb201_supernet import (
    NB201Supernet,
    inherit,
    recalibrate_bn,
    recalibration_batches,
    sample_path,
    supernet_key,
)
from proxybench.weights import get_weights_provider, list_weights_providers
from proxybench.weights.supernet import (
    CHECKPOINT_KIND,
    SupernetWeights,
    file_sha256,
    load_supernet_checkpoint,
    train_supernet,
)

SPACE = get_space("nb201")
ARCHS = [
    "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|",
    "|none~0|+|nor_conv_3x3~0|none~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|",
    "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
    format_arch(["nor_conv_3x3"] * 6),
    format_arch(["skip_connect"] * 6),
]
TINY = dict(steps=4, batch_size=8, holdout=64)


def _shuffled_bn_supernet(seed: int = 0) -> NB201Supernet:
    """A supernet whose BN running statistics and affine parameters are not the defaults."""
    torch.manual_seed(seed)
    net = NB201Supernet(10)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
    return net.eval()


# ----------------------------------------------------------------------------- the network


@pytest.mark.parametrize("arch", ARCHS)
def test_inherited_network_equals_the_supernet_path_bit_for_bit(arch):
    supernet = _shuffled_bn_supernet()
    net = SPACE.build(arch, 10)
    net.load_state_dict(inherit(supernet.state_dict(), arch), strict=True)
    net.eval()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(net(x), supernet(x, arch))


def test_inherit_gives_exactly_the_standalone_tensors():
    supernet = _shuffled_bn_supernet()
    state = supernet.state_dict()
    for arch in ARCHS:
        ops = SPACE.encode(arch)
        inherited = inherit(state, arch)
        assert set(inherited) == set(SPACE.build(arch, 10).state_dict())
        for key, value in inherited.items():
            assert value is state[supernet_key(key, [OPS[i] for i in ops])]


def test_supernet_key_inserts_the_op_of_the_edge():
    ops = ("nor_conv_3x3", "none", "skip_connect", "avg_pool_3x3", "nor_conv_1x1", "nor_conv_3x3")
    assert supernet_key("cells.0.edges.e01.conv.weight", ops) == "cells.0.edges.e01.nor_conv_3x3.conv.weight"
    assert supernet_key("cells.7.edges.e13.bn.running_var", ops) == "cells.7.edges.e13.nor_conv_1x1.bn.running_var"
    assert supernet_key("cells.5.conv_a.conv.weight", ops) == "cells.5.conv_a.conv.weight"
    assert supernet_key("stem.bn.weight", ops) == "stem.bn.weight"
    with pytest.raises(KeyError, match="e02 is 'none'"):
        supernet_key("cells.0.edges.e02.conv.weight", ops)


def test_supernet_holds_every_op_once_per_edge():
    net = NB201Supernet(10)
    cell = net.cells[0]
    for edge in cell.edges.values():
        assert list(edge) == ["skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]
    # standalone all-3x3 (1,531,546) + per cell edge a 1x1 ReLU-Conv-BN (C*C + 2C)
    extra = sum(6 * 5 * (c * c + 2 * c) for c in (16, 32, 64))
    assert sum(p.numel() for p in net.parameters()) == 1_531_546 + extra
    with pytest.raises(ValueError, match="needs ops"):
        net(torch.zeros(1, 3, 32, 32))


def test_sampled_paths_depend_on_seed_and_step_only_and_are_uniform():
    assert sample_path(0, 5) == sample_path(0, 5)
    assert sample_path(0, 5) != sample_path(1, 5) or sample_path(0, 6) != sample_path(1, 6)
    counts = {op: 0 for op in OPS}
    for step in range(2000):
        for op in sample_path(3, step):
            counts[op] += 1
    for op, count in counts.items():  # 12,000 draws, 2,400 expected each; 5 sigma is about 220
        assert abs(count - 2400) < 220, counts


def test_recalibration_count_is_genas_850_images():
    assert recalibration_batches(None, 64) == 14 == math.ceil(850 / 64)
    assert recalibration_batches(None, 8) == 107
    assert recalibration_batches(3, 64) == 3


def test_recalibrate_bn_ema_and_cumulative():
    torch.manual_seed(0)
    bn = torch.nn.Sequential(torch.nn.BatchNorm2d(3))
    xs = [torch.randn(8, 3, 4, 4) * 2 + 1 for _ in range(3)]
    assert recalibrate_bn(bn, xs, average="cumulative") == 3
    means = torch.stack([x.mean(dim=(0, 2, 3)) for x in xs])
    torch.testing.assert_close(bn[0].running_mean, means.mean(0))
    assert bn[0].momentum == 0.1 and bn.training  # momentum and training flag restored
    recalibrate_bn(bn, xs[:1], average="ema")  # reset to 0, one step of momentum 0.1
    torch.testing.assert_close(bn[0].running_mean, 0.1 * means[0])
    with pytest.raises(ValueError, match="'ema' or 'cumulative'"):
        recalibrate_bn(bn, xs, average="mean")


def test_recalibrating_the_standalone_equals_recalibrating_the_supernet_path():
    arch = ARCHS[0]
    supernet = _shuffled_bn_supernet()
    net = SPACE.build(arch, 10)
    net.load_state_dict(inherit(supernet.state_dict(), arch), strict=True)
    xs = [torch.randn(8, 3, 32, 32) for _ in range(2)]
    recalibrate_bn(supernet, xs, path=arch)
    recalibrate_bn(net, xs)
    for key, value in inherit(supernet.state_dict(), arch).items():
        assert torch.equal(net.state_dict()[key], value), key


# ----------------------------------------------------------------------------- training


def test_training_two_plus_two_steps_equals_four_bit_for_bit(tmp_path, data_dir):
    train_supernet(tmp_path / "straight.pt", data_dir=data_dir, **TINY)
    first = train_supernet(tmp_path / "resumed.pt", data_dir=data_dir, stop_at=2, **TINY)
    assert (first.step, first.total_steps, first.finished) == (2, 4, False)
    second = train_supernet(tmp_path / "resumed.pt", data_dir=data_dir)  # settings come from the checkpoint
    assert (second.step, second.resumed_from, second.finished) == (4, 2, True)
    a = load_supernet_checkpoint(tmp_path / "straight.pt")
    b = load_supernet_checkpoint(tmp_path / "resumed.pt")
    assert a["kind"] == CHECKPOINT_KIND and a["step"] == b["step"] == 4
    assert a["losses"] == b["losses"] and len(a["losses"]) == 4
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for key in a["state_dict"]:
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key
    for i, state in a["optimizer"]["state"].items():
        assert torch.equal(state["momentum_buffer"], b["optimizer"]["state"][i]["momentum_buffer"])
    assert a["settings"] == b["settings"] == {**a["settings"], "lr": 0.025, "lr_min": 0.001, "momentum": 0.9,
                                              "weight_decay": 3e-4, "grad_clip": 5.0, "steps": 4, "batch_size": 8}
    assert torch.equal(a["rng"]["torch"], b["rng"]["torch"])
    assert a["scheduler"]["kind"] == "cosine_per_step" and a["meta"]["split"].endswith("held out: last 64")


def test_a_finished_run_is_not_trained_again_and_settings_must_agree(tmp_path, data_dir):
    path = tmp_path / "s.pt"
    train_supernet(path, data_dir=data_dir, steps=1, batch_size=8, holdout=64)
    before = path.stat().st_mtime_ns
    again = train_supernet(path, data_dir=data_dir, steps=1)
    assert (again.step, again.resumed_from) == (1, 1) and path.stat().st_mtime_ns == before
    with pytest.raises(InvalidSettingError, match=r"other settings: lr 0.1 \(checkpoint: 0.025\)"):
        train_supernet(path, data_dir=data_dir, lr=0.1)
    with pytest.raises(InvalidSettingError, match="give the training length"):
        train_supernet(tmp_path / "new.pt", data_dir=data_dir)
    with pytest.raises(InvalidSettingError, match="no setting"):
        train_supernet(tmp_path / "new.pt", data_dir=data_dir, steps=1, learning_rate=0.1)


# ----------------------------------------------------------------------------- the provider


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory, data_dir):
    path = tmp_path_factory.mktemp("supernet") / "tiny.pt"
    train_supernet(path, data_dir=data_dir, steps=2, batch_size=8, holdout=64)
    return path


def test_provider_describes_the_checkpoint(tiny_checkpoint):
    assert "supernet" in list_weights_providers()
    provider = get_weights_provider(f"supernet:{tiny_checkpoint},recalibrate=2")
    assert isinstance(provider, SupernetWeights)
    sha = file_sha256(tiny_checkpoint)
    assert provider.describe() == f"supernet:tiny.pt@{sha[:12]},recalibrate=2,batch_size=8"
    assert provider.settings["sha256"] == sha and provider.settings["step"] == 2
    assert provider.settings["supernet"]["holdout"] == 64
    json.dumps(provider.settings)  # recorded with every score
    default = get_weights_provider(f"supernet:{tiny_checkpoint}")
    assert default.settings["recalibrate"] == math.ceil(850 / 8)


def test_provider_prepares_the_path_with_recalibrated_bn(tiny_checkpoint, data_dir):
    arch = ARCHS[0]
    provider = get_weights_provider(f"supernet:{tiny_checkpoint},recalibrate=2")
    net = provider.prepare(SPACE.build(arch, 10), arch, SPACE, "cifar10", data_dir=data_dir, seed=0)
    assert provider.last["recalibrated_batches"] == 2
    state = load_supernet_checkpoint(tiny_checkpoint)["state_dict"]
    supernet = NB201Supernet(10)
    supernet.load_state_dict(state)
    recalibrate_bn(supernet, provider.recalibration_batches("cifar10", data_dir, 0), path=arch)
    supernet.eval()
    net.eval()
    batch = provider.held_out_batch("cifar10", data_dir, 16)
    with torch.no_grad():
        assert torch.equal(net(batch.inputs), supernet(batch.inputs, arch))
    # recalibrate=0 keeps the supernet's running statistics
    kept = get_weights_provider(f"supernet:{tiny_checkpoint},recalibrate=0")
    net0 = kept.prepare(SPACE.build(arch, 10), arch, SPACE, "cifar10", data_dir=data_dir, seed=0)
    for key, value in inherit(state, arch).items():
        assert torch.equal(net0.state_dict()[key], value), key


def test_held_out_batch_is_the_train_provider_convention(tiny_checkpoint, data_dir):
    provider = get_weights_provider(f"supernet:{tiny_checkpoint},recalibrate=1")
    train = get_weights_provider("train:steps=1,holdout=64,augment=true")
    mine, theirs = provider.held_out_batch("cifar10", data_dir, 16), train.held_out_batch("cifar10", data_dir, 16)
    assert torch.equal(mine.inputs, theirs.inputs) and torch.equal(mine.targets, theirs.targets)


def test_provider_errors_say_what_to_fix(tiny_checkpoint, tmp_path, data_dir):
    with pytest.raises(InvalidSettingError, match="does not exist; train one with: proxybench supernet train"):
        get_weights_provider(f"supernet:{tmp_path / 'missing.pt'}")
    with pytest.raises(InvalidSettingError, match="exactly one checkpoint path"):
        get_weights_provider("supernet:recalibrate=2")
    with pytest.raises(InvalidSettingError, match="no setting"):
        get_weights_provider(f"supernet:{tiny_checkpoint},recalibrat=2")
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {}}, other)
    with pytest.raises(InvalidSettingError, match="not a proxybench supernet checkpoint"):
        get_weights_provider(f"supernet:{other}")
    provider = get_weights_provider(f"supernet:{tiny_checkpoint},recalibrate=1")
    with pytest.raises(InvalidSettingError, match="trained on cifar10, not cifar100"):
        provider.held_out_batch("cifar100", data_dir, 4)


# ----------------------------------------------------------------------------- the CLI


def test_cli_trains_and_resumes(tmp_path, data_dir):
    out = tmp_path / "cli.pt"
    base = ["train", "--data-dir", str(data_dir), "--batch-size", "8", "--holdout", "64", "--no-progress",
            "--threads", "1", "--out", str(out)]
    result = CliRunner().invoke(supernet_group, base + ["--epochs", "0", "--steps", "3", "--stop-at", "1"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "step 1/3 (stopped at step 1; run again to continue)" in result.output
    result = CliRunner().invoke(supernet_group, ["train", "--data-dir", str(data_dir), "--no-progress", "--out",
                                                 str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "step 3/3 (finished), started at step 1" in result.output
    result = CliRunner().invoke(supernet_group, ["train", "--out", str(out), "--data-dir", str(data_dir),
                                                 "--lr", "0.5"])
    assert result.exit_code == 1 and result.output.startswith("Error: ") and "lr 0.5 (checkpoint: 0.025)" in \
        result.output


def test_cli_needs_a_length(tmp_path):
    result = CliRunner().invoke(supernet_group, ["train", "--out", str(tmp_path / "x.pt")])
    assert result.exit_code == 2 and "give the training length: --epochs E" in result.output
    result = CliRunner().invoke(supernet_group, ["train", "--out", str(tmp_path / "x.pt"), "--epochs", "2",
                                                 "--steps", "3"])
    assert result.exit_code == 2 and "not both" in result.output
    assert CliRunner().invoke(supernet_group, ["train", "-h"]).exit_code == 0
