"""The OFA MobileNetV3 space: encoding, canonical genomes, sampling, subnets, padding, costs."""

from __future__ import annotations

import json
import pickle

import sys

import numpy as np
import pytest
import torch

from proxybench.errors import InvalidArchitectureError, InvalidSettingError, ProxybenchError
from proxybench.spaces import get_space, list_spaces
from proxybench.spaces.ofa import (
    DEFAULT_RESOLUTIONS,
    INACTIVE_FILL,
    MAX_DEPTH,
    NUM_STAGES,
    STAGE_GENES,
    OFASpace,
    recalibrate_bn,
    subnet_settings,
)

RES = (32, 64)  # small inputs keep CPU tests fast (total stride 32)


@pytest.fixture(scope="module")
def space() -> OFASpace:
    return OFASpace(resolutions=RES)


@pytest.fixture(scope="module")
def ofa_package():
    """Tests that build subnets need the ofa package (in the test extra); the rest do not."""
    return pytest.importorskip("ofa")


@pytest.fixture(scope="module")
def supernet(space, ofa_package):
    return space.load_supernet(random_init=True, seed=0)


def _arch(depths, kernel=3, expand=3, resolution=32) -> str:
    return json.dumps({"resolution": resolution,
                       "stages": [{"depth": d, "kernel": [kernel] * d, "expand": [expand] * d} for d in depths]})


def _same_params(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(sa[k].shape == sb[k].shape and torch.equal(sa[k], sb[k]) for k in sa)


# ----------------------------------------------------------------------------- encoding


def test_registered_with_default_bounds():
    assert "ofa" in list_spaces()
    space = get_space("ofa")
    assert isinstance(space, OFASpace) and space.n_var == 46 == NUM_STAGES * STAGE_GENES + 1
    assert space.resolutions == DEFAULT_RESOLUTIONS and len(DEFAULT_RESOLUTIONS) == 25
    assert DEFAULT_RESOLUTIONS[0] == 128 and DEFAULT_RESOLUTIONS[-1] == 224
    bounds = space.gene_bounds()
    assert bounds[-1] == 24 and set(bounds[:-1].tolist()) == {2}
    assert (space.xu == bounds).all() and (space.xl == 0).all()
    assert OFASpace(resolutions=RES).gene_bounds()[-1] == 1
    assert space.size == (81 + 729 + 6561) ** 5 * 25


def test_round_trips_and_inactive_slots_zero(space):
    for arch in space.sample(50, seed=1) + [space.smallest(), space.largest()]:
        genome = space.encode(arch)
        assert genome.dtype == np.int64 and genome.shape == (46,)
        assert space.decode(genome) == arch == space.parse(arch) == space.uid(arch)
        assert (space.canonical(genome) == genome).all()
        assert space.parse(space.to_dict(arch)) == arch
        assert space.decode_dict(genome) == json.loads(arch)
        for s, stage in enumerate(json.loads(arch)["stages"]):
            base = s * STAGE_GENES
            depth = stage["depth"]
            assert genome[base] == depth - 2
            assert (genome[base + 1 + depth: base + 1 + MAX_DEPTH] == 0).all()
            assert (genome[base + 1 + MAX_DEPTH + depth: base + STAGE_GENES] == 0).all()


def test_canonical_rounds_clips_and_zeroes_inactive(space):
    arch = _arch([2, 3, 4, 2, 3], kernel=5, expand=4, resolution=64)
    genome = space.encode(arch)
    noisy = genome.astype(float) + 0.3
    for s in range(NUM_STAGES):  # junk in every slot, including the inactive ones
        base = s * STAGE_GENES
        noisy[base + 1 + 3] = 2
        noisy[base + 1 + MAX_DEPTH + 3] = 9.0  # out of range: clipped, then zeroed if inactive
    noisy[-1] = 7.6  # clipped to the last resolution
    canon = space.canonical(noisy)
    expected = space.encode(space.decode(np.clip(np.rint(noisy), space.xl, space.xu)))
    assert (canon == expected).all()
    assert space.decode(space.canonical(genome + 0.4)) == space.parse(arch)
    # decode ignores inactive slots, so a non-canonical genome names the same network
    dirty = genome.copy()
    dirty[1 + 3] = 2  # stage 0 has depth 2: slot 3 inactive
    assert space.decode(dirty) == space.parse(arch) and (space.canonical(dirty) == genome).all()


@pytest.mark.parametrize(
    "genome, match",
    [
        ([0] * 45, "must have 46"),
        ("0" * 46, "must have 46"),
        ([0] * 45 + [0.5], "not an integer"),
        ([3] + [0] * 45, "out of range; valid range 0..2"),
        ([0] * 45 + [2], r"position 45 \(resolution\) is out of range; valid range 0..1"),
        ([0] * 45 + [float("nan")], "non-finite"),
    ],
)
def test_decode_errors_are_one_line(space, genome, match):
    with pytest.raises(InvalidArchitectureError, match=match) as info:
        space.decode(genome)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "arch, match",
    [
        ("", "empty"),
        ("{not json", "not JSON"),
        ("[1, 2]", "exactly the keys"),
        ('{"resolution": 32}', "exactly the keys"),
        ('{"resolution": 48, "stages": []}', "not in this space's resolutions"),
        ('{"resolution": 32, "stages": []}', "list of 5 stages"),
        (_arch([2, 2, 2, 2, 5]), "depth 5 is not one of"),
        (_arch([2, 2, 2, 2, 2], kernel=4), "kernel 4 is not one of"),
        (_arch([2, 2, 2, 2, 2], expand=5), "expand 5 is not one of"),
        (_arch([2, 2, 2, 2, 2]).replace('"kernel": [3, 3]', '"kernel": [3, 3, 3]', 1), "one value per active block"),
        (42, "must be a JSON string or a dict"),
    ],
)
def test_parse_errors_are_one_line(space, arch, match):
    with pytest.raises(InvalidArchitectureError, match=match) as info:
        space.parse(arch)
    assert "\n" not in str(info.value)


def test_canonical_string_is_compact_sorted_json(space):
    spaced = json.dumps({"stages": json.loads(space.smallest())["stages"], "resolution": 32}, indent=2)
    canon = space.parse(spaced)
    assert canon == space.smallest() and " " not in canon and canon.startswith('{"resolution":32,"stages":[{"depth":2,"expand"')
    assert space.input_resolution(canon) == 32 and space.input_resolution(space.largest()) == 64


def test_sampling_is_deterministic_distinct_and_in_bounds(space):
    a, b, c = space.sample(40, seed=3), space.sample(40, seed=3), space.sample(40, seed=4)
    assert a == b and a != c and len(set(a)) == 40
    genomes = np.stack([space.encode(x) for x in a])
    assert (genomes >= space.xl).all() and (genomes <= space.xu).all()
    assert all((space.canonical(g) == g).all() for g in genomes)
    by_gene = space.sample(40, seed=3, by="gene")
    assert by_gene == space.sample(40, seed=3, by="gene") and by_gene != a
    assert space.sample(0, seed=0) == []
    with pytest.raises(InvalidArchitectureError, match="n >= 0"):
        space.sample(-1, seed=0)


# ----------------------------------------------------------------------------- subnets


def test_subnet_settings_are_per_slot_and_padded(space):
    s = subnet_settings(_arch([2, 3, 4, 2, 3], kernel=7, expand=6), RES)
    assert s["d"] == [2, 3, 4, 2, 3] and len(s["ks"]) == len(s["e"]) == 20
    assert s["ks"][:4] == [7, 7, INACTIVE_FILL, INACTIVE_FILL] and s["e"][8:12] == [6, 6, 6, 6]


def test_same_genome_same_subnet_whatever_was_active_before(space, supernet):
    a = _arch([2, 3, 2, 4, 2], kernel=5, expand=4)
    b1, b2 = space.largest(32), space.smallest(32)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    first = space.build(a, 10, supernet=supernet)
    space.build(b1, 10, supernet=supernet)
    again = space.build(a, 10, supernet=supernet)
    space.build(b2, 10, supernet=supernet)
    third = space.build(a, 10, supernet=supernet)
    assert _same_params(first, again) and _same_params(first, third)
    with torch.no_grad():
        assert torch.equal(first.eval()(x), again.eval()(x)) and torch.equal(first(x), third.eval()(x))


def test_naive_compact_lists_depend_on_the_previous_candidate(space, supernet):
    """What CNAS/MSuNAS do: pass only the active values (length sum(depths)) to set_active_subnet."""

    def naive(arch):
        stages = json.loads(arch)["stages"]
        supernet.set_active_subnet(ks=[k for st in stages for k in st["kernel"]],
                                   e=[e for st in stages for e in st["expand"]],
                                   d=[st["depth"] for st in stages])
        return supernet.get_active_subnet(preserve_weight=True)

    a = _arch([2, 2, 2, 2, 2], kernel=5, expand=4)  # 10 values: blocks 11..20 keep the previous settings
    naive(space.largest(32))  # 20 values: every block k7 e6
    after_large = naive(a)
    naive(_arch([4, 4, 4, 4, 4], kernel=3, expand=3))  # every block k3 e3
    after_small = naive(a)
    assert not _same_params(after_large, after_small)
    padded = space.build(a, 10, supernet=supernet)
    padded.classifier, after_small.classifier = None, None
    assert not _same_params(padded, after_small)  # and values land on the wrong blocks anyway


def test_head_is_fresh_and_seeded(space, supernet):
    arch = space.smallest(32)
    net = space.build(arch, 7, supernet=supernet, seed=1)
    assert net.classifier.linear.out_features == 7 and not hasattr(net.classifier, "dropout")
    with torch.no_grad():
        assert net(torch.randn(2, 3, 32, 32)).shape == (2, 7)
    same = space.build(arch, 7, supernet=supernet, seed=1)
    other = space.build(arch, 7, supernet=supernet, seed=2)
    assert torch.equal(net.classifier.linear.weight, same.classifier.linear.weight)
    assert not torch.equal(net.classifier.linear.weight, other.classifier.linear.weight)
    assert torch.equal(net.first_conv.conv.weight, other.first_conv.conv.weight)  # only the head is seeded


def test_missing_ofa_package_says_how_to_install(space, monkeypatch):
    monkeypatch.setitem(sys.modules, "ofa.imagenet_classification.elastic_nn.networks", None)
    with pytest.raises(ProxybenchError, match=r"pip install ofa==0\.1\.0\.post202307202001"):
        space.build(space.smallest(), 10, random_init=True, seed=123)


def test_missing_weights_is_one_line_naming_the_flags(space, tmp_path, ofa_package):
    with pytest.raises(InvalidSettingError) as info:
        space.build(space.smallest(), 10)
    message = str(info.value)
    assert "\n" not in message and "--supernet-weights" in message and "--random-init" in message
    with pytest.raises(InvalidSettingError, match="does not exist"):
        space.build(space.smallest(), 10, supernet=tmp_path / "missing.pth")
    with pytest.raises(InvalidSettingError, match="--random-init"):
        space.weights_info()
    assert space.weights_info(random_init=True)["random_init"] is True
    configured = OFASpace(resolutions=RES, random_init=True)
    assert configured.build(configured.smallest(), 3).classifier.linear.out_features == 3


def test_weights_from_a_state_dict_file(space, supernet, tmp_path):
    path = tmp_path / "supernet.pth"
    torch.save({"state_dict": supernet.state_dict()}, path)  # the ofa model zoo's layout
    arch = _arch([3, 2, 4, 2, 3], kernel=7, expand=6)
    from_file = OFASpace(resolutions=RES, supernet_weights=path).build(arch, 10)
    assert _same_params(from_file, space.build(arch, 10, supernet=supernet))
    assert OFASpace(resolutions=RES).weights_info(path)["supernet_weights"] == str(path)
    bad = tmp_path / "bad.pth"
    torch.save({"something.else": torch.zeros(1)}, bad)
    with pytest.raises(InvalidSettingError, match="not a state dict of ofa_mbv3"):
        space.build(arch, 10, supernet=bad)


def test_bn_free_copy_loads_the_weights(space, supernet):
    arch = space.sample(1, seed=5)[0]
    base = space.build(arch, 10, supernet=supernet)
    bare = space.build(arch, 10, supernet=supernet, bn="none")
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in bare.modules())
    missing, _ = bare.load_state_dict(base.state_dict(), strict=False)
    assert missing == []
    with torch.no_grad():
        assert bare(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    restored = pickle.loads(pickle.dumps(base))  # picklable (process pools, Ray)
    assert type(restored) is type(base) and _same_params(restored, base)
    with pytest.raises(InvalidSettingError, match="unknown OFA bn mode"):
        space.build(arch, 10, supernet=supernet, bn="some")


def test_recalibrate_bn(space, supernet):
    net = space.build(space.smallest(32), 10, supernet=supernet).eval()
    bn = net.first_conv.bn
    batches = [torch.randn(4, 3, 32, 32) + 2 for _ in range(2)]
    assert recalibrate_bn(net, [(x, None) for x in batches]) is net
    assert not net.training and bn.momentum == 0.1
    with torch.no_grad():
        pre = [net.first_conv.conv(x) for x in batches]
    expected = torch.stack([p.mean(dim=(0, 2, 3)) for p in pre]).mean(0)
    assert torch.allclose(bn.running_mean, expected, atol=1e-5)
    with pytest.raises(InvalidSettingError, match="no batches"):
        recalibrate_bn(net, [])


# ----------------------------------------------------------------------------- cost


def test_cost_counts_and_cache(space, supernet, tmp_path):  # supernet: needs ofa
    cached = OFASpace(resolutions=RES, cost_cache=tmp_path / "cost.json")
    small, large = cached.cost(cached.smallest()), cached.cost(cached.largest())
    assert small[0] < large[0] and small[1] < large[1]
    for arch, (params_m, _) in ((cached.smallest(), small), (cached.largest(), large)):
        net = space.build(arch, 10, supernet=supernet)
        assert round(params_m * 1e6) == sum(p.numel() for p in net.parameters())
    assert cached.cost_cache_info().misses == 2
    assert cached.cost(cached.largest()) == large and cached.cost_cache_info().hits == 1
    assert cached.cost(cached.largest(), num_classes=100)[0] > large[0]  # the head is counted
    reopened = OFASpace(resolutions=RES, cost_cache=tmp_path / "cost.json")
    assert reopened.cost(reopened.smallest()) == small
    assert reopened.cost_cache_info() == (1, 0, 3)


def test_ofa_is_a_core_dependency_pinned_to_the_tested_release():
    import tomllib
    from pathlib import Path

    from proxybench.spaces.ofa import OFA_REQUIREMENT

    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
    assert OFA_REQUIREMENT in project["dependencies"]
    assert not any(dep.startswith("ofa") for dep in project["optional-dependencies"]["test"])
