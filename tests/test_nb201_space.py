"""NB201 strings, enumeration, sampling, isomorphism keys, NASLib indices and the space API."""

from __future__ import annotations

import ast
import itertools
import json
import time

import numpy as np
import pandas as pd
import pytest

from proxybench.errors import InvalidArchitectureError, ProxybenchError
from proxybench.spaces import get_space, list_spaces
from proxybench.spaces import nb201
from proxybench.spaces.nb201 import (
    EDGES,
    NASLIB_EDGES,
    NASLIB_OPS,
    NUM_ARCHS,
    OPS,
    NB201Space,
    all_archs,
    arch_uid,
    format_arch,
    from_naslib_tuple,
    live_edges,
    parse_arch,
    sample_archs,
    to_naslib_tuple,
)

EXAMPLE = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
EXAMPLE_OPS = ("nor_conv_3x3", "nor_conv_3x3", "avg_pool_3x3", "skip_connect", "nor_conv_3x3", "skip_connect")
ACC_COLUMNS = {
    "cifar10": "CIFAR10TestAccuracy200Epochs",
    "cifar100": "CIFAR100TestAccuracy200Epochs",
    "ImageNet16-120": "ImageNetTestAccuracy200Epochs",
}


@pytest.fixture(scope="module")
def csv(nb201_csv) -> pd.DataFrame:
    return pd.read_csv(nb201_csv)


@pytest.fixture(scope="module")
def reference(reference_json) -> dict:
    with open(reference_json) as f:
        return json.load(f)


# ----------------------------------------------------------------------------- strings


def test_parse_and_format_are_inverse():
    assert parse_arch(EXAMPLE) == EXAMPLE_OPS
    assert format_arch(EXAMPLE_OPS) == EXAMPLE
    assert format_arch(list(EXAMPLE_OPS)) == EXAMPLE


def test_parse_tolerates_surrounding_whitespace_only():
    assert parse_arch(f"  {EXAMPLE}\n") == EXAMPLE_OPS
    with pytest.raises(InvalidArchitectureError):
        parse_arch(EXAMPLE.replace("|+|", "| + |", 1))


@pytest.mark.parametrize(
    "arch, fragment",
    [
        ("", "empty"),
        ("|nor_conv_3x3~0|+|none~0|none~1|", "has 2 '+'-separated node(s), needs 3"),
        (EXAMPLE + "+|none~0|", "has 4 '+'-separated node(s), needs 3"),
        ("nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|", "node 1 'nor_conv_3x3~0|' of"),
        ("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2", "must start and end with '|'"),
        ("|nor_conv_3x3~0|+|none~0|+|none~0|none~1|none~2|", "node 2 '|none~0|' of"),
        ("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|none~3|", "has 4 edge(s), needs 3"),
        ("|conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown op 'conv_3x3'"),
        ("|nor_conv_3x3~0|+|none~0|none~2|+|none~0|none~1|none~2|", "must come from node 1"),
        ("|nor_conv_3x3~0|+|none~1|none~0|+|none~0|none~1|none~2|", "(node 2, position 0)"),
        ("|nor_conv_3x3|+|none~0|none~1|+|none~0|none~1|none~2|", "must be 'op~0'"),
        ("|nor_conv_3x3~0~0|+|none~0|none~1|+|none~0|none~1|none~2|", "must be 'op~0'"),
        ("|nor_conv_3x3~x|+|none~0|none~1|+|none~0|none~1|none~2|", "got node index 'x'"),
        ("|nor_conv_3x3~0|+|none~0||+|none~0|none~1|none~2|", "edge '' (node 2, position 1)"),
        (42, "must be a string, got int"),
    ],
)
def test_parse_errors_say_what_is_wrong(arch, fragment):
    with pytest.raises(InvalidArchitectureError) as info:
        parse_arch(arch)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message
    assert "expected '|op~0|+|op~0|op~1|+|op~0|op~1|op~2|'" in message or "valid ops: none, skip_connect" in message
    assert isinstance(info.value, ProxybenchError)


def test_unknown_op_lists_valid_ops():
    valid = "valid ops: none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3"
    with pytest.raises(InvalidArchitectureError, match=valid):
        parse_arch(EXAMPLE.replace("avg_pool_3x3", "max_pool_3x3"))


@pytest.mark.parametrize("ops", [EXAMPLE_OPS[:5], EXAMPLE_OPS + ("none",), "none" * 6, ("none",) * 5 + ("conv",)])
def test_format_rejects_bad_ops(ops):
    with pytest.raises(InvalidArchitectureError):
        format_arch(ops)


# ----------------------------------------------------------------------------- enumeration, sampling


def test_all_archs_order_is_the_base5_encoding():
    archs = all_archs()
    assert len(archs) == NUM_ARCHS == 15_625 == len(set(archs))
    assert archs[0] == format_arch(["none"] * 6)
    assert archs[1] == format_arch(["none"] * 5 + ["skip_connect"])
    assert archs[-1] == format_arch(["avg_pool_3x3"] * 6)
    space = NB201Space()
    for i in (0, 1, 7, 624, 3125, 9999, 15_624):
        digits = [int(d) for d in np.base_repr(i, 5).zfill(6)]
        assert space.encode(archs[i]).tolist() == digits


@pytest.mark.shared
def test_all_archs_are_the_benchmarks(csv):
    assert set(all_archs()) == set(csv["ArchitectureString"])


def test_sample_is_deterministic_distinct_and_checked():
    first = sample_archs(200, seed=3)
    assert first == sample_archs(200, seed=3)
    assert len(set(first)) == 200 and set(first) <= set(all_archs())
    assert first != sample_archs(200, seed=4)
    assert sample_archs(0, seed=0) == []
    assert sorted(sample_archs(NUM_ARCHS, seed=1)) == sorted(all_archs())
    with pytest.raises(InvalidArchitectureError, match="cannot sample 15626 distinct NB201 architectures: the space "
                       "has 15625; ask for at most 15625, or take all of them"):
        sample_archs(NUM_ARCHS + 1, seed=0)
    for bad in (-1, 2.5):
        with pytest.raises(InvalidArchitectureError, match="must be an integer >= 0, got"):
            sample_archs(bad, seed=0)


def test_sample_is_roughly_uniform():
    counts = np.bincount([NB201Space().encode(a)[0] for a in sample_archs(5000, seed=0)], minlength=5)
    assert counts.min() > 900 and counts.max() < 1100  # expected 1000 per first-edge op


# ----------------------------------------------------------------------------- isomorphism


@pytest.mark.shared
def test_uid_partition_equals_the_benchmarks(csv):
    """Same partition of the 15,625 cells as the benchmark's ``UniqueString`` (row i = index i)."""
    nb201._uid.cache_clear()
    start = time.perf_counter()
    ours = [arch_uid(a) for a in csv["ArchitectureString"]]
    assert time.perf_counter() - start < 2.0
    theirs = csv["UniqueString"].tolist()
    assert len(set(ours)) == len(set(theirs)) == 6466
    # Equal partitions: the pairing of our key with theirs is a bijection.
    pairs = set(zip(ours, theirs))
    assert len(pairs) == len(set(ours)) == len(set(theirs))
    # Stronger and true for this reference: the keys are the benchmark's own strings.
    assert ours == theirs


def test_uid_examples():
    # The CSV's own example: skip connections are transparent, terms sorted.
    assert arch_uid(EXAMPLE) == "((0)@nor_conv_3x3)@avg_pool_3x3+(0)@nor_conv_3x3+((0)@nor_conv_3x3)@nor_conv_3x3+0"
    # An op applied to a `#` node is `#`: e13 = conv1x1 of the zero node 1 drops out.
    a = "|nor_conv_1x1~0|+|skip_connect~0|none~1|+|nor_conv_1x1~0|none~1|skip_connect~2|"
    b = "|none~0|+|skip_connect~0|none~1|+|nor_conv_1x1~0|nor_conv_1x1~1|skip_connect~2|"
    assert arch_uid(a) == arch_uid(b) == "#+#+0+(0)@nor_conv_1x1"
    # Terms of one node commute (sorted), whichever edge carries them.
    e = "|nor_conv_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|none~0|none~1|skip_connect~2|"
    f = "|nor_conv_3x3~0|+|avg_pool_3x3~0|skip_connect~1|+|none~0|none~1|skip_connect~2|"
    assert arch_uid(e) != arch_uid(f)  # node 2 = x + pool(conv(x)) vs. pool(x) + conv(x)
    g = "|avg_pool_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|none~0|none~1|skip_connect~2|"
    assert arch_uid(f) == arch_uid(g) == "#+#+(0)@avg_pool_3x3+(0)@nor_conv_3x3"
    # A node reached only through `none` edges does not matter (e01 differs, node 1 is dead).
    c = "|nor_conv_3x3~0|+|avg_pool_3x3~0|none~1|+|skip_connect~0|none~1|nor_conv_1x1~2|"
    d = "|avg_pool_3x3~0|+|avg_pool_3x3~0|none~1|+|skip_connect~0|none~1|nor_conv_1x1~2|"
    assert arch_uid(c) == arch_uid(d) == "#+(#+(0)@avg_pool_3x3)@nor_conv_1x1+0"
    assert arch_uid(c) != arch_uid(c.replace("nor_conv_1x1~2", "nor_conv_3x3~2"))


def test_uid_keeps_the_benchmarks_grouping_of_sums():
    """Both cells compute x + conv1x1(x), but the benchmark inserts node 2's sum into node 3
    as one sorted string, so the two groupings stay separate classes; so do we."""
    a = "|nor_conv_1x1~0|+|skip_connect~0|none~1|+|none~0|skip_connect~1|skip_connect~2|"
    b = "|nor_conv_1x1~0|+|none~0|skip_connect~1|+|skip_connect~0|none~1|skip_connect~2|"
    assert arch_uid(a) == "#+#+0+(0)@nor_conv_1x1"
    assert arch_uid(b) == "#+#+(0)@nor_conv_1x1+0"


def test_uid_keeps_the_benchmarks_zero_term_convention():
    """All three are the zero function, but the benchmark keeps them as separate classes."""
    keys = {
        arch_uid("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"),
        arch_uid("|none~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|"),
        arch_uid("|none~0|+|none~0|none~1|+|none~0|none~1|avg_pool_3x3~2|"),
    }
    assert keys == {"#+#+#", "#+#+#+#", "#+#+(#+#)@avg_pool_3x3"}


def test_live_edges():
    assert live_edges(format_arch(["nor_conv_3x3"] * 6)) == (True,) * 6
    assert live_edges("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|none~0|none~1|none~2|") == (False,) * 6
    # e01 feeds node 1, which reaches node 3 only through `none`: dead.
    assert live_edges("|nor_conv_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|nor_conv_1x1~2|") == (
        False, True, False, False, False, True,
    )
    # node 1 is zero (its only input is `none`), so e13 is dead although it is not `none`.
    assert live_edges("|none~0|+|skip_connect~0|none~1|+|none~0|nor_conv_3x3~1|skip_connect~2|") == (
        False, True, False, False, False, True,
    )


# ----------------------------------------------------------------------------- NASLib


def test_naslib_round_trip_over_the_whole_space():
    for arch in all_archs():
        t = to_naslib_tuple(arch)
        assert from_naslib_tuple(t) == arch and from_naslib_tuple(str(t)) == arch


def test_naslib_mapping_documented():
    """NASLib (nasbench201 conversions.py): ops 0 skip_connect, 1 none, 2 nor_conv_3x3, 3 nor_conv_1x1,
    4 avg_pool_3x3; EDGE_LIST (1,2),(1,3),(1,4),(2,3),(2,4),(3,4) with 1-based nodes = e01 e02 e03 e12 e13 e23.
    So NASLib position k holds canonical edge [0, 1, 3, 2, 4, 5][k]."""
    assert NASLIB_OPS == ("skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3")
    assert NASLIB_EDGES == ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3))
    assert [EDGES.index(e) for e in NASLIB_EDGES] == [0, 1, 3, 2, 4, 5]
    assert from_naslib_tuple("(0, 2, 3, 2, 3, 1)") == (
        "|skip_connect~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_1x1~0|nor_conv_1x1~1|none~2|"
    )
    assert to_naslib_tuple(EXAMPLE) == (2, 2, 0, 4, 2, 0)


@pytest.mark.parametrize(
    "bad, fragment",
    [
        ("0, 2, 3, 2, 3, 1", "must look like"),
        ("(0, 2, x, 2, 3, 1)", "six integers"),
        ("(0, 2, 3, 2, 3)", "has 5 entries, needs 6"),
        ((0, 2, 3, 2, 3, 5), "op index 5 at position 5"),
        ((0, 2, 3, 2, -1, 0), "valid: 0..4"),
        ((0, 2, 3, 2, 1.5, 0), "out of range"),
    ],
)
def test_naslib_errors(bad, fragment):
    with pytest.raises(InvalidArchitectureError) as info:
        from_naslib_tuple(bad)
    assert fragment in str(info.value)


@pytest.mark.shared
def test_naslib_reference_keys(reference, csv):
    """Every entry of the NAS-Bench-Suite-Zero sample decodes to the architecture whose accuracy it reports.

    Its ``idx`` is the entry's position in the suite's sample (0..724), *not* the NB201
    benchmark index: the CSV row ``idx`` is unrelated (correlation ≈ 0), while the row of the
    decoded string matches ``val_accuracy`` (cifar10: cifar10-valid vs. cifar10 test, ρ > .98;
    cifar100 / ImageNet16-120: the same split, mean |Δ| < 0.5 points). Parameter counts of the
    decoded strings are checked in test_nb201_network.py.
    """
    row_of = {a: i for i, a in enumerate(csv["ArchitectureString"])}
    for dataset, entries in reference.items():
        assert len(entries) >= 720
        decoded_acc, idx_acc, val = [], [], []
        for key, entry in entries.items():
            assert entry["arch"] == key
            arch = from_naslib_tuple(key)
            assert str(to_naslib_tuple(arch)) == key
            assert 0 <= int(entry["idx"]) < 730
            decoded_acc.append(csv[ACC_COLUMNS[dataset]][row_of[arch]])
            idx_acc.append(csv[ACC_COLUMNS[dataset]][int(entry["idx"])])
            val.append(entry["val_accuracy"])
        assert np.corrcoef(decoded_acc, val)[0, 1] > 0.98
        assert abs(np.corrcoef(idx_acc, val)[0, 1]) < 0.1
        if dataset != "cifar10":
            assert np.mean(np.abs(np.subtract(decoded_acc, val))) < 0.5


@pytest.mark.shared
def test_naslib_mapping_is_the_unique_best_fit(reference, csv):
    """Of all 5! op numberings × 6! edge orders, NASLib's fits CIFAR-100 accuracies best, by far."""
    codes = np.array([NB201Space().encode(a) @ 5 ** np.arange(5, -1, -1) for a in csv["ArchitectureString"]])
    acc = np.empty(NUM_ARCHS)
    acc[codes] = csv[ACC_COLUMNS["cifar100"]].to_numpy()
    entries = reference["cifar100"]
    tuples = np.array([ast.literal_eval(k) for k in entries])
    val = np.array([e["val_accuracy"] for e in entries.values()])
    fits = []
    for numbering in itertools.permutations(range(5)):  # NASLib op index -> index in OPS
        ops = np.array(numbering)[tuples]
        for order in itertools.permutations(range(6)):  # NASLib position -> canonical position
            fits.append((np.abs(acc[ops @ 5 ** (5 - np.array(order))] - val).mean(), numbering, order))
    fits.sort()
    (best, numbering, order), (runner_up, *_) = fits[0], fits[1]
    assert numbering == tuple(OPS.index(op) for op in NASLIB_OPS)
    assert order == tuple(EDGES.index(e) for e in NASLIB_EDGES)
    assert best < 0.5 < 1.0 < runner_up


# ----------------------------------------------------------------------------- the space


def test_space_is_registered():
    assert "nb201" in list_spaces()
    space = get_space("nb201")
    assert isinstance(space, NB201Space)
    assert space.name == "nb201" and space.n_var == 6 and len(space) == 15_625
    assert space.xl.tolist() == [0] * 6 and space.xu.tolist() == [4] * 6


def test_encode_decode_round_trip():
    space = get_space("nb201")
    archs = list(space)
    assert archs == list(all_archs())
    for arch in archs[::7]:
        x = space.encode(arch)
        assert x.dtype == np.int64 and ((space.xl <= x) & (x <= space.xu)).all()
        assert space.decode(x) == arch
    assert space.encode(EXAMPLE).tolist() == [OPS.index(op) for op in EXAMPLE_OPS] == [3, 3, 4, 1, 3, 1]
    assert space.decode(np.array([3.0, 3.0, 4.0, 1.0, 3.0, 1.0])) == EXAMPLE
    assert space.decode([3, 3, 4, 1, 3, 1]) == EXAMPLE


@pytest.mark.parametrize(
    "x, fragment",
    [
        ([0, 1, 2, 3, 4, 5], "value 5 at position 5 (edge e23) is out of range; valid range 0..4"),
        ([-1, 0, 0, 0, 0, 0], "value -1 at position 0 (edge e01) is out of range; valid range 0..4"),
        ([0, 0, 0, 0, 0], "must have 6 integers in 0..4"),
        ([0, 0, 0.5, 0, 0, 0], "not an integer; valid range 0..4"),
        ([0, 0, float("nan"), 0, 0, 0], "not an integer"),
        ("333333", "must have 6 integers"),
    ],
)
def test_decode_errors_name_the_valid_range(x, fragment):
    with pytest.raises(InvalidArchitectureError) as info:
        get_space("nb201").decode(x)
    assert fragment in str(info.value)


def test_space_methods_delegate():
    space = get_space("nb201")
    assert space.parse(f" {EXAMPLE} ") == EXAMPLE
    assert space.uid(EXAMPLE) == arch_uid(EXAMPLE)
    assert space.sample(5, seed=2) == sample_archs(5, seed=2)
    with pytest.raises(InvalidArchitectureError):
        space.parse("|none~0|")
