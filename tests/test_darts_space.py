"""The DARTS cell space: spellings, parse errors, encoding, isomorphism key, sampler, registration."""

from __future__ import annotations

import itertools
import json
from collections import Counter, namedtuple

import numpy as np
import pytest

from proxybench.errors import InvalidArchitectureError, InvalidSettingError
from proxybench.spaces import get_space, list_spaces
from proxybench.spaces.darts import (
    DARTS_V1,
    DARTS_V2,
    OPS,
    Genotype,
    arch_uid,
    parse_arch,
    sample_archs,
    to_genotype,
    to_json,
)

# DARTS_V2 as quark0/darts prints it (lists, range(2, 6) as in some of its genotypes).
V2_REPR = ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
           "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], "
           "normal_concat=range(2, 6), reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
           "('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), "
           "('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])")
V2_CANONICAL = (
    "normal=|sep_conv_3x3~0|sep_conv_3x3~1|+|sep_conv_3x3~0|sep_conv_3x3~1|+|skip_connect~0|sep_conv_3x3~1|"
    "+|skip_connect~0|dil_conv_3x3~2|;reduce=|max_pool_3x3~0|max_pool_3x3~1|+|max_pool_3x3~1|skip_connect~2|"
    "+|max_pool_3x3~0|skip_connect~2|+|max_pool_3x3~1|skip_connect~2|"
)


def _relabel(cell, order):
    """``cell`` with its intermediate nodes renumbered (``order[new] = old``), module order kept per node."""
    new_of = {0: 0, 1: 1, **{2 + old: 2 + new for new, old in enumerate(order)}}
    out = []
    for old in order:
        out += [(op, new_of[j]) for op, j in cell[2 * old: 2 * old + 2]]
    return tuple(out)


def _valid(cell):
    return all(j < 2 + k // 2 for k, (_, j) in enumerate(cell))


def test_every_spelling_parses_to_the_same_canonical_string():
    ReferenceGenotype = namedtuple("Genotype", "normal normal_concat reduce reduce_concat")  # DARTS's own type
    reference = ReferenceGenotype([list(p) for p in DARTS_V2.normal], range(2, 6), list(DARTS_V2.reduce), [2, 3, 4, 5])
    spellings = [DARTS_V2, reference, V2_REPR, to_json(DARTS_V2), V2_CANONICAL, f"  {V2_CANONICAL}\n",
                 DARTS_V2._asdict(), json.dumps({"normal": DARTS_V2.normal, "reduce": DARTS_V2.reduce})]
    assert {parse_arch(s) for s in spellings} == {V2_CANONICAL}
    assert parse_arch(parse_arch(V2_CANONICAL)) == V2_CANONICAL
    data = json.loads(to_json(V2_REPR))
    assert data["normal_concat"] == [2, 3, 4, 5] and data["normal"][4:6] == [["skip_connect", 0], ["sep_conv_3x3", 1]]


@pytest.mark.parametrize(
    ("arch", "message"),
    [
        ("", "string is empty"),
        ("normal=|sep_conv_3x3~0|sep_conv_3x3~1|", "has 1 ';'-separated cell(s), needs 2"),
        (V2_CANONICAL.replace("dil_conv_3x3~2", "dil_conv_3x3~5"), "normal cell, node 5: input 5 is not an earlier node; valid inputs 0..4"),
        (V2_CANONICAL.replace("dil_conv_3x3", "conv_7x1_1x7"), "normal cell, node 5: unknown op 'conv_7x1_1x7'"),
        (V2_CANONICAL.replace("dil_conv_3x3", "none"), "op 'none' is not in the space"),
        (V2_CANONICAL.replace("skip_connect~0|dil_conv_3x3~2", "skip_connect~2|dil_conv_3x3~2"), "node 5: both inputs come from node 2"),
        (V2_CANONICAL.replace("+|skip_connect~0|dil_conv_3x3~2|", ""), "has 3 '+'-separated node(s), needs 4"),
        (V2_CANONICAL.replace("|skip_connect~0|dil_conv_3x3~2|", "|skip_connect~0|"), "node 5: '|skip_connect~0|' must be '|op~j|op~j|'"),
        (V2_CANONICAL.replace("reduce=", "reduction="), "must start with 'reduce='"),
        (V2_CANONICAL.replace("~2|;", "~x|;"), "edge 'dil_conv_3x3~x' must be 'op~j'"),
        (V2_REPR.replace("reduce_concat=[2, 3, 4, 5]", "reduce_concat=[4, 5]"), "reduce_concat of repr is [4, 5]"),
        (V2_REPR.replace("1)], reduce_concat", "1), ('skip_connect', 0)], reduce_concat"), "reduce cell of repr must list 8 (op, input) pairs"),
        ('{"normal": []', "not valid JSON"),
        ('{"normal": [], "reduce": [], "extra": 1}', "unknown field(s) ['extra']"),
        ('{"reduce": []}', "lacks the 'normal' cell"),
        (42, "must be a string, a mapping or a Genotype, got int"),
    ],
)
def test_parse_errors_are_one_line_and_name_the_problem(arch, message):
    with pytest.raises(InvalidArchitectureError) as info:
        parse_arch(arch)
    text = str(info.value)
    assert message in text and "\n" not in text


def test_encoding_is_a_bijection_onto_every_vector_in_bounds():
    space = get_space("darts")
    assert space.n_var == 22 and space.xl.tolist() == [0] * 22
    assert space.xu.tolist() == [6, 6, 2, 6, 6, 5, 6, 6, 9, 6, 6] * 2
    rng = np.random.default_rng(0)
    for _ in range(300):
        x = rng.integers(space.xl, space.xu + 1)
        arch = space.decode(x)
        assert space.encode(arch).tolist() == x.tolist()
        assert space.decode(x.astype(float)) == arch  # pymoo hands floats
    for arch in space.sample(50, seed=1) + [parse_arch(DARTS_V1), parse_arch(DARTS_V2)]:
        assert space.decode(space.encode(arch)) == arch
    # The number of vectors equals the number of canonical strings: (1 * 3 * 6 * 10 * 7**8) ** 2.
    assert int(np.prod(space.xu - space.xl + 1)) == (3 * 6 * 10 * 7**8) ** 2


@pytest.mark.parametrize(
    ("x", "message"),
    [
        ([0] * 21, "must have 22 integers"),
        ([0] * 8 + [10] + [0] * 13, "value 10 at position 8 (normal node 5 input pair) is out of range; valid range 0..9"),
        ([0] * 13 + [7] + [0] * 8, "value 7 at position 13 (reduce node 3 input pair) is out of range; valid range 0..2"),
        ([0] * 21 + [0.5], "value 0.5 at position 21 (reduce node 5 op of its higher input) is not an integer"),
    ],
)
def test_decode_errors_name_the_gene_and_its_range(x, message):
    with pytest.raises(InvalidArchitectureError) as info:
        get_space("darts").decode(x)
    assert message in str(info.value)


def test_uid_forgets_input_order_and_node_numbering_only():
    g = to_genotype(DARTS_V1)
    seen = set()
    for order in itertools.permutations(range(4)):
        normal, reduce = _relabel(g.normal, order), _relabel(g.reduce, order)
        if _valid(normal) and _valid(reduce):
            swapped = tuple(p for k in range(4) for p in reversed(normal[2 * k: 2 * k + 2]))
            relabeled = Genotype(swapped, (2, 3, 4, 5), reduce, (2, 3, 4, 5))
            assert arch_uid(relabeled) == arch_uid(DARTS_V1)
            seen.add(parse_arch(relabeled))
    assert len(seen) > 1  # DARTS_V1 has several valid numberings: the test compared different strings
    uid = arch_uid(DARTS_V1)
    assert parse_arch(uid) == uid and arch_uid(uid) == uid  # the key is itself a canonical architecture
    # A different op, or a different wiring, gives a different key.
    assert arch_uid(DARTS_V1) != arch_uid(DARTS_V2)
    other = g._replace(normal=g.normal[:7] + (("skip_connect", 1),))
    assert arch_uid(other) != arch_uid(DARTS_V1)


def test_uid_does_not_merge_a_shared_node_with_two_copies():
    # X: nodes 4 and 5 both read node 2; node 3 computes the same as node 2 but feeds nobody.
    # Y: node 4 reads node 2, node 5 reads node 3. Inlined expression trees agree, networks do not.
    base = [("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1)]
    x = base + [("max_pool_3x3", 0), ("dil_conv_3x3", 2), ("avg_pool_3x3", 1), ("sep_conv_5x5", 2)]
    y = base + [("max_pool_3x3", 0), ("dil_conv_3x3", 2), ("avg_pool_3x3", 1), ("sep_conv_5x5", 3)]
    reduce = list(DARTS_V2.reduce)
    assert arch_uid({"normal": x, "reduce": reduce}) != arch_uid({"normal": y, "reduce": reduce})


def test_random_relabelings_keep_the_key():
    rng = np.random.default_rng(3)
    for arch in sample_archs(40, seed=2):
        g = to_genotype(arch)
        orders = [o for o in itertools.permutations(range(4)) if _valid(_relabel(g.normal, o))]
        order = orders[rng.integers(len(orders))]
        assert arch_uid(g._replace(normal=_relabel(g.normal, order))) == arch_uid(arch)


def test_sampler_is_seeded_distinct_and_uniform():
    assert sample_archs(5, seed=7) == sample_archs(5, seed=7) != sample_archs(5, seed=8)
    archs = sample_archs(3000, seed=0)
    assert len(set(archs)) == 3000
    genes = np.array([get_space("darts").encode(a) for a in archs])
    # Node 5's input pair: 10 pairs, each 1/10 (300 expected); ops: 7 values, each 1/7 (~429 expected).
    pair_counts = Counter(genes[:, 8].tolist())
    assert sorted(pair_counts) == list(range(10)) and all(230 < c < 370 for c in pair_counts.values())
    for column in (0, 1, 9, 10, 11, 21):
        counts = Counter(genes[:, column].tolist())
        assert sorted(counts) == list(range(7)) and all(340 < c < 520 for c in counts.values()), (column, counts)
    with pytest.raises(InvalidArchitectureError, match="cannot sample -1 DARTS architectures"):
        sample_archs(-1, seed=0)


def test_registered_with_its_options():
    assert "darts" in list_spaces()
    assert get_space("darts").settings() == {"channels": 32, "layers": 8, "auxiliary": False}
    assert get_space("darts", preset="darts").settings() == {"channels": 36, "layers": 20, "auxiliary": True}
    assert get_space("darts", preset="darts", auxiliary=False).settings()["auxiliary"] is False
    with pytest.raises(InvalidSettingError, match="no option \\['resolutions'\\]"):
        get_space("darts", resolutions=[32])
    with pytest.raises(InvalidSettingError, match="unknown DARTS network preset 'nb201'"):
        get_space("darts", preset="nb201")
    with pytest.raises(InvalidSettingError, match="layers must be >= 2"):
        get_space("darts", layers=1)
    assert len(OPS) == 7 and "none" not in OPS
