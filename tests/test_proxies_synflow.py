"""SynFlow: closed forms on linear nets, the conservation law, sign restoration, NB201 magnitude."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from proxybench.batch import ProxyBatch
from proxybench.proxies import get_proxy
from proxybench.proxies.synflow import linearize, restore_signs, synflow
from proxybench.spaces import get_space
from proxybench.spaces.nb201_net import NB201Network

ALL_CONV3 = ("nor_conv_3x3",) * 6


def _batch(shape: tuple[int, ...] = (4, 3, 2, 2), dtype: torch.dtype = torch.float64) -> ProxyBatch:
    inputs = torch.randn(shape, dtype=dtype)
    return ProxyBatch(inputs, torch.zeros(shape[0], dtype=torch.long), 3)


def _mlp(*widths: int, bias: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Flatten()]
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        if i:
            layers.append(nn.ReLU())
        layers.append(nn.Linear(a, b, bias=bias))
    return nn.Sequential(*layers).double()


def test_registry_metadata() -> None:
    for name, needs in (("synflow", {"no_bn", "float64"}), ("synflow_bn", {"float64"})):
        spec = get_proxy(name)
        assert spec.higher_is_better is True
        assert "2006.05467" in spec.paper
        assert spec.needs == needs
        assert spec.passes == ("abs_ones",)
        assert spec.family == "synflow"
        assert spec.fn is synflow


def test_two_layer_closed_form_with_biases() -> None:
    """R = 1ᵀ(|W2|(|W1|1 + |b1|) + |b2|); W1⊙dR/dW1 sums to 1ᵀ|W2||W1|1, W2's to 1ᵀ|W2|(|W1|1+|b1|)."""
    torch.manual_seed(0)
    net = _mlp(12, 5, 3, bias=True)
    w1, b1 = net[1].weight.detach().abs().clone(), net[1].bias.detach().abs().clone()
    w2 = net[3].weight.detach().abs().clone()
    ones = torch.ones(12, dtype=torch.float64)
    hidden = w1 @ ones + b1
    expected = float(w2.sum(0) @ (w1 @ ones)) + float(w2.sum(0) @ hidden)
    assert synflow(net, _batch((4, 3, 2, 2))) == pytest.approx(expected, rel=1e-12)


def test_conservation_every_layer_carries_r() -> None:
    """Without biases R is 1-homogeneous in each layer, so each layer's sum equals R: score = L·R."""
    torch.manual_seed(1)
    net = _mlp(12, 7, 6, 5, 2, bias=False)
    weights = [m.weight.detach().abs() for m in net if isinstance(m, nn.Linear)]
    r = torch.ones(12, dtype=torch.float64)
    for w in weights:
        r = w @ r
    score = synflow(net, _batch())
    assert score == pytest.approx(len(weights) * float(r.sum()), rel=1e-12)


def test_scaling_one_layer_scales_score() -> None:
    """Scaling one layer's weights by c scales R, hence every bias-free layer's share, by |c|."""
    torch.manual_seed(2)
    net = _mlp(12, 6, 4, bias=False)
    base = synflow(net, _batch())
    with torch.no_grad():
        net[3].weight.mul_(-3.0)  # the sign is irrelevant: weights are made absolute
    assert synflow(net, _batch()) == pytest.approx(3.0 * base, rel=1e-12)


def test_signs_restored_and_buffers_made_absolute() -> None:
    torch.manual_seed(3)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)).double()
    with torch.no_grad():
        net[1].running_mean.copy_(torch.tensor([-1.0, 2.0, -3.0, 0.0]))
        net[1].weight.copy_(torch.tensor([-1.0, 0.5, -2.0, 1.0]))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    negative = linearize(net)
    assert all((v >= 0).all() for v in net.state_dict().values())
    assert set(negative) == set(before)
    restore_signs(net, negative)
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k
    net.eval()  # no running-stat update in eval mode: the whole state must come back exactly
    synflow(net, _batch((2, 3, 4, 4)))
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert all(p.grad is None for p in net.parameters())


def test_uses_abs_of_bn_buffers_in_eval_mode() -> None:
    """Eval-mode BN reads the running stats: only their absolute values must matter."""
    torch.manual_seed(4)
    net = nn.Sequential(nn.Conv2d(3, 2, 1, bias=False), nn.BatchNorm2d(2), nn.AdaptiveAvgPool2d(1),
                        nn.Flatten(), nn.Linear(2, 1, bias=False)).double().eval()
    with torch.no_grad():
        net[1].running_mean.copy_(torch.tensor([0.5, 0.25]))
    positive = synflow(net, _batch((1, 3, 2, 2)))
    with torch.no_grad():
        net[1].running_mean.copy_(torch.tensor([-0.5, -0.25]))
    assert synflow(net, _batch((1, 3, 2, 2))) == pytest.approx(positive, rel=1e-12)


def test_dead_layer_contributes_zero() -> None:
    class Dead(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.used = nn.Linear(12, 2, bias=False)
            self.unused = nn.Linear(12, 2, bias=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.used(x.flatten(1))

    torch.manual_seed(5)
    net = Dead().double()
    expected = float(net.used.weight.detach().abs().sum())  # R = 1ᵀ|W|1, one layer: score = R
    assert synflow(net, _batch()) == pytest.approx(expected, rel=1e-12)


def test_one_all_ones_sample_whatever_the_batch() -> None:
    torch.manual_seed(6)
    net = _mlp(12, 4, 2, bias=True)
    assert synflow(net, _batch((1, 3, 2, 2))) == synflow(net, _batch((9, 3, 2, 2)))


def test_no_layer_raises() -> None:
    with pytest.raises(ValueError, match="no Conv2d/Linear"):
        synflow(nn.Sequential(nn.Flatten()), _batch())


def test_nb201_all_conv3x3_without_bn_is_finite_in_float64() -> None:
    """The largest NB201 network: R ≈ 1e49-1e50, which float32 (max 3.4e38) could not hold."""
    torch.manual_seed(0)
    arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    net = get_space("nb201").build(arch, 10, bn="none").double().train()
    score = synflow(net, _batch((2, 3, 32, 32)))
    assert math.isfinite(score)
    assert 1e40 < score < 1e60


@pytest.mark.parametrize("bn", ["all", "foresight"])
def test_nb201_with_batchnorm_in_train_mode(bn: str) -> None:
    """Train-mode BN accepts the single all-ones sample (it normalises over H·W values)."""
    torch.manual_seed(0)
    net = NB201Network(ALL_CONV3, 10, bn=bn, channels=4, cells_per_stage=1).double().train()
    score = synflow(net, _batch((2, 3, 32, 32)))
    assert math.isfinite(score) and score > 0
