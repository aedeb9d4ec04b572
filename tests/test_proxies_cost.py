"""Cost proxies: params, flops, l2_norm.

Hand-counted tiny networks pin every counting rule; the NAS-Bench-Suite-Zero reference sample
pins the NASLib convention on real NB201 networks (params and flops must match exactly).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from proxybench.batch import ProxyBatch
from proxybench.proxies import get_proxy, list_proxies
from proxybench.proxies._layers import prunable_layers, sum_layer_values
from proxybench.proxies.cost import count_flops, flops, l2_norm, params
from proxybench.spaces import get_space
from proxybench.spaces.nb201 import from_naslib_tuple

COST = ("params", "flops", "l2_norm")


class HandNet(nn.Module):
    """Every counting rule once, on a 1x3x8x8 input (counts worked out in the tests)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1, bias=True)  # 64*4*27 MACs + 4*64 bias = 7168
        self.bn1 = nn.BatchNorm2d(4)  # 256 elements, affine: x2 = 512
        self.relu = nn.ReLU()  # 256
        self.pool = nn.AvgPool2d(2, 2)  # out 4x4x4: 64 * 2*2 = 256
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1, groups=2, bias=False)  # 16 pos * 9*2*4 = 1152
        self.bn2 = nn.BatchNorm2d(4, affine=False)  # 64
        self.maxpool = nn.MaxPool2d(3, stride=1, padding=1)  # 64 * 9 = 576
        self.act = nn.Hardswish()  # not counted by tensorwatch: 0
        self.gap = nn.AdaptiveAvgPool2d(1)  # torchstat window (4+1)*(4+1) per channel: 4*25 = 100
        self.head = nn.Linear(4, 3)  # 4*3 = 12, bias not counted

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.relu(self.bn1(self.conv1(x))))
        x = self.gap(self.act(self.maxpool(self.bn2(self.conv2(x)))))
        return self.head(torch.flatten(x, 1))


HAND_FLOPS = 7168 + 512 + 256 + 256 + 1152 + 64 + 576 + 0 + 100 + 12  # 10096
HAND_PARAMS = (3 * 4 * 9 + 4) + 8 + (4 * 2 * 9) + 0 + (4 * 3 + 3)  # 207


def _batch(n: int = 5, shape: tuple[int, int, int] = (3, 8, 8), num_classes: int = 3) -> ProxyBatch:
    g = torch.Generator().manual_seed(0)
    inputs = torch.randn(n, *shape, generator=g)
    return ProxyBatch(inputs, torch.randint(0, num_classes, (n,), generator=g), num_classes)


# ----------------------------------------------------------------------------- params


def test_params_counts_trainable_parameters_once_in_millions() -> None:
    net = HandNet()
    net.frozen = nn.Parameter(torch.zeros(1000), requires_grad=False)  # not trainable: excluded
    net.head_again = net.head  # shared module: its parameters count once
    assert params(net, _batch()) == HAND_PARAMS / 1e6


def test_params_ignores_buffers_and_the_batch() -> None:
    net = HandNet()
    assert sum(b.numel() for b in net.buffers()) > 0  # BN running stats exist but do not count
    assert params(net, _batch(1)) == params(net, _batch(7, (3, 16, 16))) == HAND_PARAMS / 1e6


# ----------------------------------------------------------------------------- flops


def test_flops_applies_every_tensorwatch_rule() -> None:
    assert count_flops(HandNet(), (1, 3, 8, 8)) == HAND_FLOPS
    assert flops(HandNet(), _batch()) == HAND_FLOPS / 1e6


def test_flops_counts_one_image_whatever_the_batch_size() -> None:
    net = HandNet()
    assert flops(net, _batch(1)) == flops(net, _batch(9)) == HAND_FLOPS / 1e6
    assert count_flops(net, (2, 3, 8, 8)) == 2 * HAND_FLOPS  # every rule is linear in N


def test_flops_follows_the_input_resolution() -> None:
    # Only conv1, bn1, relu, pool (x4 for a 16x16 image) and the later layers change.
    net = HandNet()
    expected = 4 * (7168 + 512 + 256 + 256) + 4 * (1152 + 64 + 576) + 4 * 9 * 9 + 12
    assert count_flops(net, (1, 3, 16, 16)) == expected


@pytest.mark.parametrize(
    ("module", "shape", "expected"),
    [
        (nn.Conv2d(2, 6, (1, 3), stride=2, padding=(0, 1), bias=False), (1, 2, 6, 6), 3 * 3 * 6 * (1 * 3 * 2)),
        (nn.Conv2d(4, 4, 3, padding=1, groups=4), (1, 4, 5, 5), 25 * 4 * 9 + 25 * 4),  # depthwise + bias
        (nn.AdaptiveAvgPool2d(2), (1, 3, 4, 4), 3 * 4 * (3 * 3)),  # each 2x2 window counts as 3x3
        (nn.AdaptiveMaxPool2d(1), (1, 2, 7, 7), 2 * 8 * 8),
        (nn.Linear(5, 7, bias=False), (3, 5), 3 * 35),
        (nn.ReLU6(), (1, 2, 3, 3), 18),
        (nn.LeakyReLU(), (1, 2, 3, 3), 18),
        (nn.Identity(), (1, 2, 3, 3), 0),
        (nn.Sigmoid(), (1, 2, 3, 3), 0),
    ],
)
def test_flops_single_module_rules(module: nn.Module, shape: tuple[int, ...], expected: int) -> None:
    assert count_flops(module, shape, device="cpu", dtype=torch.float32) == expected


def test_flops_counts_a_module_each_time_it_runs() -> None:
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(2, 2, 1, bias=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(self.conv(x))

    assert count_flops(Twice(), (1, 2, 3, 3)) == 2 * (9 * 2 * 2)


def test_flops_leaves_the_network_as_it_was() -> None:
    net = HandNet().train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    flops(net, _batch())
    assert net.training and all(m.training for m in net.modules())
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BN statistics untouched
    assert not any(m._forward_hooks for m in net.modules())  # hooks removed


# ----------------------------------------------------------------------------- l2_norm


def test_l2_norm_is_the_sum_of_layer_frobenius_norms_of_weights_only() -> None:
    net = HandNet()
    with torch.no_grad():
        net.conv1.weight.fill_(1.0)  # ||.|| = sqrt(108)
        net.conv2.weight.fill_(-2.0)  # 2 sqrt(72)
        net.head.weight.fill_(3.0)  # 3 sqrt(12)
        for p in (net.conv1.bias, net.head.bias, net.bn1.weight, net.bn1.bias):
            p.fill_(100.0)  # biases and BN are not scored
    expected = math.sqrt(108) + 2 * math.sqrt(72) + 3 * math.sqrt(12)
    assert l2_norm(net, _batch()) == pytest.approx(expected, rel=1e-6)
    # A sum of norms, not the norm of everything nor the sum of squares.
    assert expected > math.sqrt(108 + 4 * 72 + 9 * 12)


def test_l2_norm_of_default_init_concentrates_on_sqrt_fan_out_over_3() -> None:
    # PyTorch's default init draws U(-1/sqrt(fan_in), 1/sqrt(fan_in)): E||W||^2 = fan_out / 3.
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(64, 256, 3), nn.Linear(512, 128))
    expected = math.sqrt(256 / 3) + math.sqrt(128 / 3)
    assert l2_norm(net, _batch()) == pytest.approx(expected, rel=0.01)


# ----------------------------------------------------------------------------- shared helpers


def test_prunable_layers_are_conv_and_linear_in_module_order() -> None:
    net = HandNet()
    net.again = net.conv1
    assert prunable_layers(net) == [net.conv1, net.conv2, net.head]


def test_sum_layer_values_sums_elements_and_floats_in_float64() -> None:
    values = [torch.ones(2, 3, dtype=torch.float16), torch.tensor([1e8], dtype=torch.float32), 0.5]
    assert sum_layer_values(values) == 6 + 1e8 + 0.5
    assert sum_layer_values([]) == 0.0


# ----------------------------------------------------------------------------- registry


def test_cost_proxies_are_registered_data_free_and_higher_is_better() -> None:
    assert set(COST) <= set(list_proxies(family="cost"))
    assert set(COST) <= set(list_proxies(needs=()))
    expected_pass = {"params": ("weights",), "l2_norm": ("weights",), "flops": ("shape_forward",)}
    for name in COST:
        spec = get_proxy(name)
        assert spec.higher_is_better is True
        assert spec.needs == frozenset()
        assert spec.passes == expected_pass[name]
        assert "arXiv:" in spec.paper
        assert spec.description and spec.defaults == {}


# ----------------------------------------------------------------------------- NB201 reference

# (dataset, classes, image side) as NAS-Bench-Suite-Zero scored them.
DATASETS = [("cifar10", 10, 32), ("cifar100", 100, 32), ("ImageNet16-120", 120, 16)]


@pytest.fixture(scope="module")
def reference(reference_json: Path) -> dict:
    return json.loads(reference_json.read_text())


def _nb201():
    return get_space("nb201"), from_naslib_tuple


def test_params_of_the_benchmark_network() -> None:
    space, _ = _nb201()
    arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    assert params(space.build(arch, num_classes=10), _batch(2, (3, 32, 32), 10)) == 1.531546


@pytest.mark.parametrize(("dataset", "num_classes", "side"), DATASETS)
def test_params_and_flops_equal_the_suite_zero_reference(reference: dict, dataset: str, num_classes: int,
                                                         side: int) -> None:
    space, from_naslib = _nb201()
    entries = reference[dataset]
    keys = sorted(entries)[::60]  # ~12 archs per dataset, spread over the key order
    batch = _batch(2, (3, side, side), num_classes)
    for key in keys:
        net = space.build(from_naslib(key), num_classes=num_classes)
        assert params(net, batch) == entries[key]["params"]["score"], key
        assert flops(net, batch) == entries[key]["flops"]["score"], key


def test_flops_of_the_documented_reference_arch(reference: dict) -> None:
    space, from_naslib = _nb201()
    net = space.build(from_naslib("(0, 2, 3, 2, 3, 1)"), num_classes=10)
    assert reference["cifar10"]["(0, 2, 3, 2, 3, 1)"]["flops"]["score"] == 88.307392
    assert flops(net, _batch(2, (3, 32, 32), 10)) == 88.307392


def test_l2_norm_matches_the_reference_up_to_initialisation_noise(reference: dict) -> None:
    # The reference used another random initialisation, so only closeness is expected.
    space, from_naslib = _nb201()
    entries = reference["cifar10"]
    torch.manual_seed(0)
    for key in sorted(entries)[::90]:
        net = space.build(from_naslib(key), num_classes=10)
        expected = entries[key]["l2_norm"]["score"]
        assert l2_norm(net, _batch(2, (3, 32, 32), 10)) == pytest.approx(expected, rel=0.02), key
