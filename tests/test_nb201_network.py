"""The NB201 network: parameter counts against the benchmark and NAS-Bench-Suite-Zero, shapes,
BatchNorm modes, weight copying into BN-free copies, determinism, degenerate cells."""

from __future__ import annotations

import json
import random
import sys
from collections import defaultdict

import pytest
import torch
import torch.nn as nn

from proxybench.spaces import get_space
from proxybench.spaces.nb201 import all_archs, arch_uid, format_arch, from_naslib_tuple, live_edges, parse_arch
from proxybench.spaces.nb201_net import BN_MODES, NB201Network

ALL_CONV3 = format_arch(["nor_conv_3x3"] * 6)
DEAD_OUTPUT = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|none~0|none~1|none~2|"
MIXED = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
CLASSES = {"cifar10": 10, "cifar100": 100, "ImageNet16-120": 120}


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def meta_params(arch: str, num_classes: int = 10) -> int:
    """Parameter count of the real network, built shape-only (no memory, no initialisation)."""
    return n_params(NB201Network(parse_arch(arch), num_classes, device="meta"))


def n_bn(net: nn.Module) -> int:
    return sum(isinstance(m, nn.BatchNorm2d) for m in net.modules())


@pytest.fixture(scope="module")
def space():
    return get_space("nb201")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny CPU forwards: with several OpenMP threads on a busy machine they run ~50x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ----------------------------------------------------------------------------- parameter counts


def test_benchmark_parameter_count(space):
    net = space.build(ALL_CONV3)  # a real build, not a meta one
    assert isinstance(net, NB201Network)
    assert n_params(net) == 1_531_546


@pytest.mark.shared
def test_reference_parameter_counts(reference_json):
    """Every entry of NAS-Bench-Suite-Zero's sample, for all three datasets: our count in millions,
    rounded to 6 decimals, equals its ``params`` score (keys decoded with NASLib's mapping, see
    test_nb201_space.py).

    A cell's parameters depend only on how many nor_conv_3x3 and nor_conv_1x1 edges it has (every
    edge works at the stage's width), so one real build per (#3x3, #1x1, classes) group, of an
    architecture of that group, gives the count of every entry in it; a second build of another
    member checks the placement really does not matter.
    """
    with open(reference_json) as f:
        reference = json.load(f)
    groups: dict[tuple[int, int, int], list[tuple[str, float]]] = defaultdict(list)
    for dataset, num_classes in CLASSES.items():
        assert len(reference[dataset]) >= 720
        for key, entry in reference[dataset].items():
            ops = parse_arch(from_naslib_tuple(key))
            groups[ops.count("nor_conv_3x3"), ops.count("nor_conv_1x1"), num_classes].append(
                (format_arch(ops), entry["params"]["score"])
            )
    checked = 0
    for (_, _, num_classes), members in groups.items():
        built = {round(meta_params(arch, num_classes) / 1e6, 6) for arch, _ in {members[0], members[-1]}}
        assert len(built) == 1
        for arch, score in members:
            assert built == {score}, (arch, num_classes)
            checked += 1
    assert checked == sum(len(reference[d]) for d in CLASSES)


def test_meta_and_real_builds_count_the_same(space):
    for arch in (ALL_CONV3, MIXED, DEAD_OUTPUT):
        for num_classes in (10, 120):
            assert meta_params(arch, num_classes) == n_params(space.build(arch, num_classes))


def test_isomorphic_architectures_have_equal_parameter_counts():
    """Random pairs with equal uid have equal parameter counts, among cells whose conv modules
    each appear exactly once in the key. The benchmark's classes are expression trees, so they
    also join cells whose counts differ: dead edges keep their modules (as in the benchmark)
    without appearing in the key, and a node feeding two edges is one module but two subtrees,
    e.g. x->c->{n1}, x->c->{n2} vs. x->c->{n1 = n2}, both ``(#+(0)@c)@...``."""
    rng = random.Random(0)
    classes: dict[str, list[str]] = defaultdict(list)
    for arch in all_archs():
        ops, key = parse_arch(arch), arch_uid(arch)
        if all(key.count(f"@{op}") == ops.count(op) for op in ("nor_conv_1x1", "nor_conv_3x3")):
            classes[key].append(arch)
    multi = [members for members in classes.values() if len(members) > 1]
    assert len(multi) > 100
    for members in rng.sample(multi, 25):
        a, b = rng.sample(members, 2)
        assert meta_params(a) == meta_params(b), (a, b)
    # The counter-example from the docstring.
    a = "|nor_conv_1x1~0|+|nor_conv_1x1~0|none~1|+|nor_conv_1x1~0|nor_conv_1x1~1|avg_pool_3x3~2|"
    b = "|nor_conv_1x1~0|+|none~0|skip_connect~1|+|nor_conv_1x1~0|nor_conv_1x1~1|avg_pool_3x3~2|"
    assert arch_uid(a) == arch_uid(b) and meta_params(a) != meta_params(b)


# ----------------------------------------------------------------------------- forward


@pytest.mark.parametrize("num_classes", [10, 100])
def test_output_shape(space, num_classes):
    net = space.build(MIXED, num_classes)
    out = net(torch.randn(2, 3, 32, 32))
    assert isinstance(out, torch.Tensor) and out.shape == (2, num_classes)
    assert net.forward_features(torch.randn(2, 3, 32, 32)).shape == (2, 64, 8, 8)


def test_output_node_unreachable_gives_constant_output(space):
    torch.manual_seed(0)
    net = space.build(DEAD_OUTPUT)
    assert live_edges(DEAD_OUTPUT) == (False,) * 6
    out = net(torch.randn(3, 3, 32, 32))
    assert torch.equal(out, net(torch.randn(3, 3, 32, 32)))
    assert torch.allclose(out, net.classifier.bias.expand(3, -1))
    out.sum().backward()  # works; the cells' convs get no gradient
    assert net.cells[0].edges["e01"].conv.weight.grad is None
    assert net.stem.conv.weight.grad is None and net.classifier.weight.grad is not None


def test_all_none_cell_is_skipped_not_multiplied(space):
    net = space.build(format_arch(["none"] * 6))
    assert len(net.cells[0].edges) == 0
    x = torch.randn(2, 16, 8, 8)
    assert torch.equal(net.cells[0](x), torch.zeros_like(x))


def test_normal_output_depends_on_input(space):
    net = space.build(MIXED)
    assert not torch.allclose(net(torch.randn(2, 3, 32, 32)), net(torch.randn(2, 3, 32, 32)))


def test_skip_edge_does_not_alias_the_input():
    cell = NB201Network(("skip_connect",) * 6).cells[0]
    x = torch.randn(1, 16, 4, 4)
    before = x.clone()
    assert torch.allclose(cell(x), 4 * before)  # x + x + (x + x)
    assert torch.equal(x, before)


# ----------------------------------------------------------------------------- BatchNorm modes


def test_bn_counts_per_mode(space):
    # all-conv3x3: stem 1 + 6 edges x 15 cells + 2 per reduction block x 2 + head 1
    counts = {mode: n_bn(space.build(ALL_CONV3, bn=mode)) for mode in BN_MODES}
    assert counts == {"all": 96, "none": 0, "foresight": 4}
    mixed = space.build(MIXED, bn="foresight")
    assert n_bn(mixed) == 4
    for block in (mixed.cells[5], mixed.cells[11]):
        assert isinstance(block.conv_a.bn, nn.BatchNorm2d) and isinstance(block.conv_b.bn, nn.BatchNorm2d)
    assert mixed.stem.bn is None and mixed.head_bn is None
    assert n_bn(space.build(MIXED)) == 1 + 3 * 15 + 4 + 1  # three conv edges per cell


def test_bn_settings_are_the_benchmarks(space):
    for m in space.build(MIXED).modules():
        if isinstance(m, nn.BatchNorm2d):
            assert m.affine and m.track_running_stats and m.eps == 1e-5 and m.momentum == 0.1


@pytest.mark.parametrize("mode", ["none", "foresight"])
def test_bn_free_copy_takes_every_conv_and_linear_weight(space, mode):
    torch.manual_seed(1)
    full = space.build(MIXED)
    torch.manual_seed(2)
    copy = space.build(MIXED, bn=mode)
    missing, unexpected = copy.load_state_dict(full.state_dict(), strict=False)
    assert missing == []
    assert unexpected and all(".bn." in k or k.startswith("head_bn.") for k in unexpected)
    weights = {name: m for name, m in full.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
    copied = dict(copy.named_modules())
    assert len(weights) == 1 + 3 * 15 + 3 * 2 + 1  # stem, 3 convs x 15 cells, 3 per reduction, head
    for name, module in weights.items():
        assert torch.equal(copied[name].weight, module.weight), name
    assert torch.equal(copy.classifier.bias, full.classifier.bias)


def test_unknown_bn_mode(space):
    with pytest.raises(ValueError, match="unknown NB201 bn mode 'some'; valid: all, none, foresight"):
        space.build(MIXED, bn="some")


# ----------------------------------------------------------------------------- determinism, provenance


def test_seeded_builds_are_identical(space):
    torch.manual_seed(7)
    a = space.build(MIXED).state_dict()
    torch.manual_seed(7)
    b = space.build(MIXED).state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    torch.manual_seed(7)
    no_bn = space.build(MIXED, bn="none").state_dict()  # BNs draw no random numbers
    assert all(torch.equal(no_bn[k], a[k]) for k in no_bn)
    torch.manual_seed(8)
    c = space.build(MIXED).state_dict()
    assert not torch.equal(a["stem.conv.weight"], c["stem.conv.weight"])


def test_only_chosen_ops_exist_and_no_xautodl(space):
    net = space.build(MIXED)
    assert sorted(net.cells[0].edges.keys()) == ["e01", "e02", "e03", "e12", "e23"]
    assert "xautodl" not in sys.modules
