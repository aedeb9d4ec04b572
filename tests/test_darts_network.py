"""The DARTS network: parameter counts against the reference, names, isomorphisms as weight
mappings, BN modes, auxiliary head, and scoring every zero-cost proxy on it."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from proxybench.errors import InvalidSettingError
from proxybench.spaces import get_space
from proxybench.spaces.darts import DARTS_V1, DARTS_V2, Genotype, sample_archs, to_genotype
from proxybench.spaces.darts_net import DartsNetwork


# Printed as in the authors' genotypes.py (yuhuixu1993/PC-DARTS 283b086, chenxin061/pdarts b1575e1).
PC_DARTS = ("Genotype(normal=[('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 0), ('dil_conv_3x3', 1), "
            "('sep_conv_5x5', 0), ('sep_conv_3x3', 1), ('avg_pool_3x3', 0), ('dil_conv_3x3', 1)], "
            "normal_concat=range(2, 6), reduce=[('sep_conv_5x5', 1), ('max_pool_3x3', 0), ('sep_conv_5x5', 1), "
            "('sep_conv_5x5', 2), ('sep_conv_3x3', 0), ('sep_conv_3x3', 3), ('sep_conv_3x3', 1), "
            "('sep_conv_3x3', 2)], reduce_concat=range(2, 6))")
P_DARTS = ("Genotype(normal=[('skip_connect', 0), ('dil_conv_3x3', 1), ('skip_connect', 0),('sep_conv_3x3', 1), "
           "('sep_conv_3x3', 1), ('sep_conv_3x3', 3), ('sep_conv_3x3',0), ('dil_conv_5x5', 4)], "
           "normal_concat=range(2, 6), reduce=[('avg_pool_3x3', 0), ('sep_conv_5x5', 1), ('sep_conv_3x3', 0), "
           "('dil_conv_5x5', 2), ('max_pool_3x3', 0), ('dil_conv_3x3', 1), ('dil_conv_3x3', 1), "
           "('dil_conv_5x5', 3)], reduce_concat=range(2, 6))")


def _params(net: torch.nn.Module, auxiliary: bool = False) -> int:
    """What quark0/darts ``utils.count_parameters_in_MB`` counts (x 1e6): every parameter whose
    name does not contain 'auxiliary'; with ``auxiliary=True`` every parameter."""
    return sum(p.numel() for name, p in net.named_parameters() if auxiliary or "auxiliary" not in name)


def _expected_params(genotype: Genotype, channels: int, layers: int, classes: int = 10, auxiliary: bool = False) -> int:
    """The parameter count derived by hand from the reference's definitions (no module built).

    Per op on C channels: sep_conv_k 2(k²C + C² + 2C) (twice depthwise k x k, pointwise C x C,
    BN γ/β); dil_conv_k k²C + C² + 2C; skip_connect 0, or at stride 2 FactorizedReduce(C, C)
    2·C·C/2 + 2C; pools 0. Preprocessing: ReLUConvBN(Cin, C, 1) and FactorizedReduce(Cin, C)
    both Cin·C + 2C. Stem 27·3C + 2·3C. Classifier C_last·classes + classes. Auxiliary head on
    C_aux channels: 128·C_aux + 256 + 128·768·2·2 + 1536 + 768·classes + classes.
    """

    def op(name: str, c: int, stride: int) -> int:
        if name.startswith("sep_conv"):
            k = int(name[-1])
            return 2 * (k * k * c + c * c + 2 * c)
        if name.startswith("dil_conv"):
            k = int(name[-1])
            return k * k * c + c * c + 2 * c
        if name == "skip_connect":
            return 0 if stride == 1 else c * c + 2 * c
        return 0

    total = 27 * 3 * channels + 2 * 3 * channels
    c_pp = c_p = 3 * channels
    c = channels
    c_aux = 0
    for i in range(layers):
        reduction = i in (layers // 3, 2 * layers // 3)
        c = 2 * c if reduction else c
        total += c_pp * c + 2 * c + c_p * c + 2 * c
        cell = genotype.reduce if reduction else genotype.normal
        total += sum(op(name, c, 2 if reduction and j < 2 else 1) for name, j in cell)
        c_pp, c_p = c_p, 4 * c
        if i == 2 * layers // 3:
            c_aux = c_p
    total += c_p * classes + classes
    if auxiliary:
        total += 128 * c_aux + 256 + 128 * 768 * 4 + 1536 + 768 * classes + classes
    return total


def test_published_parameter_counts():
    space = get_space("darts", preset="darts")  # C=36, 20 cells, auxiliary head: the paper's evaluation network
    v2 = space.build(DARTS_V2)
    # DARTS's train.py logs "param size = 3.349342MB" for DARTS_V2 (count_parameters_in_MB, head excluded);
    # the paper's Table 1 rounds it to 3.3M.
    assert _params(v2) == 3_349_342 == _expected_params(DARTS_V2, 36, 20)
    assert _params(v2, auxiliary=True) == 3_825_768 == _expected_params(DARTS_V2, 36, 20, auxiliary=True)
    # DARTS_V1 (first order): 3.17M by the reference code; the paper's Table 1 prints 3.3M for it
    # (the difference is exactly V2's six extra dil_conv_3x3 per stage: 6·(1692 + 5976 + 22320) = 179,928).
    assert _params(space.build(DARTS_V1)) == 3_169_414 == 3_349_342 - 179_928
    # Later DARTS-space cells, trained with the same NetworkCIFAR: PC-DARTS 3.6M (Xu et al. 2020, Table 1),
    # P-DARTS 3.4M (Chen et al. 2019, Table 1).
    for genotype, exact, published in ((PC_DARTS, 3_634_678, 3.6), (P_DARTS, 3_433_798, 3.4)):
        count = _params(space.build(genotype))
        assert count == exact == _expected_params(to_genotype(genotype), 36, 20) and round(count / 1e6, 1) == published
    # NAS-Bench-301's training network (C=32, 8 cells), the space's default.
    assert _params(get_space("darts").build(DARTS_V2)) == 919_722 == _expected_params(DARTS_V2, 32, 8)


@pytest.mark.parametrize(("channels", "layers", "auxiliary", "classes"), [(8, 5, True, 10), (6, 8, False, 100), (4, 11, True, 7)])
def test_parameter_count_matches_the_derivation_for_random_genotypes(channels, layers, auxiliary, classes):
    space = get_space("darts", channels=channels, layers=layers, auxiliary=auxiliary)
    for arch in sample_archs(6, seed=channels):
        net = space.build(arch, classes)
        assert _params(net, auxiliary=True) == _expected_params(to_genotype(arch), channels, layers, classes, auxiliary)


def test_smallest_and_largest_bound_the_parameter_count():
    space = get_space("darts", channels=6, layers=5)
    counts = [_params(space.build(a)) for a in space.sample(40, seed=4)]
    low, high = _params(space.build(space.smallest())), _params(space.build(space.largest()))
    assert low < min(counts) and max(counts) < high
    assert not any("._ops." in name for name, _ in space.build(space.smallest()).named_parameters())


def test_module_names_and_shapes_are_the_references():
    net = get_space("darts", preset="darts").build(DARTS_V2)
    shapes = {name: tuple(p.shape) for name, p in net.named_parameters()}
    assert shapes["stem.0.weight"] == (108, 3, 3, 3) and shapes["stem.1.weight"] == (108,)
    assert shapes["cells.0.preprocess0.op.1.weight"] == (36, 108, 1, 1)
    assert shapes["cells.0._ops.0.op.1.weight"] == (36, 1, 3, 3)  # sep_conv_3x3 depthwise
    assert shapes["cells.0._ops.7.op.1.weight"] == (36, 1, 3, 3) and shapes["cells.0._ops.7.op.2.weight"] == (36, 36, 1, 1)
    assert shapes["cells.7.preprocess0.conv_1.weight"] == (36, 144, 1, 1)  # after the reduction cell 6: FactorizedReduce
    assert shapes["cells.14.preprocess0.conv_2.weight"] == (72, 288, 1, 1)
    assert not any(name.startswith("cells.6._ops.0") for name in shapes)  # max_pool_3x3 has no parameters
    assert shapes["auxiliary_head.features.2.weight"] == (128, 576, 1, 1)  # on cell 13 = 2*20//3
    assert shapes["auxiliary_head.features.5.weight"] == (768, 128, 2, 2)
    assert shapes["classifier.weight"] == (10, 576)


def _swap_and_relabel(genotype: Genotype, orders: dict[str, tuple[int, ...]], swaps: set[tuple[str, int]]):
    """A genotype with the intermediate nodes renumbered (``order[new] = old``) and some nodes'
    two inputs swapped, and per cell kind the source slot of each of the eight op modules."""
    cells, sources = {}, {}
    for kind in ("normal", "reduce"):
        order = orders[kind]
        cell = getattr(genotype, kind)
        new_of = {0: 0, 1: 1, **{2 + old: 2 + new for new, old in enumerate(order)}}
        pairs, src = [], []
        for new, old in enumerate(order):
            slots = [2 * old, 2 * old + 1]
            if (kind, new) in swaps:
                slots.reverse()
            pairs += [(cell[s][0], new_of[cell[s][1]]) for s in slots]
            src += slots
        assert all(j < 2 + k // 2 for k, (_, j) in enumerate(pairs))
        cells[kind], sources[kind] = tuple(pairs), src
    return Genotype(cells["normal"], (2, 3, 4, 5), cells["reduce"], (2, 3, 4, 5)), sources


def _map_weights(net1: DartsNetwork, net2: DartsNetwork, sources, orders, permute_consumers: bool = True):
    """net1's weights onto net2: op modules moved with their nodes, and the input channels of
    every consumer of a cell output permuted as the cell's concatenated blocks are."""
    layers = len(net1.cells)
    reductions = (layers // 3, 2 * layers // 3)
    state1, state2 = net1.state_dict(), {}
    perms = {}
    for c, cell in enumerate(net1.cells):
        kind = "reduce" if c in reductions else "normal"
        width = cell.preprocess1.op[1].out_channels
        perms[c] = torch.cat([torch.arange(old * width, (old + 1) * width) for old in orders[kind]])
    consumers = {}  # parameter name -> the cell whose output it reads
    for c in range(layers):
        consumers[f"cells.{c + 1}.preprocess1.op.1.weight"] = c
        for name in ("op.1.weight", "conv_1.weight", "conv_2.weight"):
            consumers[f"cells.{c + 2}.preprocess0.{name}"] = c
    consumers["classifier.weight"] = layers - 1
    consumers["auxiliary_head.features.2.weight"] = 2 * layers // 3
    for name in net2.state_dict():
        source = name
        parts = name.split(".")
        if parts[0] == "cells" and parts[2] == "_ops":
            c = int(parts[1])
            kind = "reduce" if c in reductions else "normal"
            source = ".".join(parts[:3] + [str(sources[kind][int(parts[3])])] + parts[4:])
        tensor = state1[source]
        if permute_consumers and name in consumers:
            tensor = tensor[:, perms[consumers[name]]]
        state2[name] = tensor.clone()
    net2.load_state_dict(state2)


def test_swapped_inputs_give_bit_identical_outputs():
    identity = {"normal": (0, 1, 2, 3), "reduce": (0, 1, 2, 3)}
    swapped, sources = _swap_and_relabel(DARTS_V1, identity, {("normal", 0), ("normal", 3), ("reduce", 2)})
    assert get_space("darts").uid(swapped) == get_space("darts").uid(DARTS_V1)
    torch.manual_seed(0)
    net1 = DartsNetwork(DARTS_V1, channels=6, layers=5, auxiliary=True)
    net2 = DartsNetwork(swapped, channels=6, layers=5, auxiliary=True)
    x = torch.randn(3, 3, 32, 32)
    assert not torch.equal(net1(x), net2(x))  # as built, the two networks differ
    _map_weights(net1, net2, sources, identity)
    for train in (True, False):
        net1.train(train), net2.train(train)
        a1, a2 = net1.forward_with_aux(x), net2.forward_with_aux(x)
        assert torch.equal(a1[0], a2[0])
        if train:
            assert torch.equal(a1[1], a2[1])


def _keeps_order(cell, order) -> bool:
    """Whether renumbering ``cell``'s nodes by ``order`` keeps every input earlier than its node."""
    new_of = {0: 0, 1: 1, **{2 + old: 2 + new for new, old in enumerate(order)}}
    return all(new_of[j] < 2 + new for new, old in enumerate(order) for _, j in cell[2 * old: 2 * old + 2])


def test_renumbered_nodes_compute_the_same_function_under_the_weight_mapping():
    space = get_space("darts")
    checked = 0
    for arch in sample_archs(30, seed=11):
        g = to_genotype(arch)
        valid = {kind: [o for o in itertools.permutations(range(4)) if o != (0, 1, 2, 3) and _keeps_order(getattr(g, kind), o)]
                 for kind in ("normal", "reduce")}
        if not valid["normal"] or not valid["reduce"]:
            continue
        orders = {"normal": valid["normal"][0], "reduce": valid["reduce"][-1]}
        other, sources = _swap_and_relabel(g, orders, {("normal", 1)})
        assert space.parse(other) != space.parse(g) and space.uid(other) == space.uid(g)
        torch.manual_seed(checked)
        net1 = DartsNetwork(g, channels=4, layers=5, auxiliary=True).double()
        net2 = DartsNetwork(other, channels=4, layers=5, auxiliary=True).double()
        x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
        _map_weights(net1, net2, sources, orders, permute_consumers=False)
        assert not torch.allclose(net1(x), net2(x), atol=1e-6)  # the consumers' permutation is needed
        _map_weights(net1, net2, sources, orders)
        for train in (True, False):
            net1.train(train), net2.train(train)
            a1, a2 = net1.forward_with_aux(x), net2.forward_with_aux(x)
            torch.testing.assert_close(a1[0], a2[0], rtol=1e-10, atol=1e-10)
            if train:
                torch.testing.assert_close(a1[1], a2[1], rtol=1e-10, atol=1e-10)
        checked += 1
        if checked == 3:
            break
    assert checked == 3


def test_bn_free_copy_takes_every_weight_and_auxiliary_head_is_training_only():
    space = get_space("darts", channels=4, layers=5, auxiliary=True)
    arch = space.sample(1, seed=5)[0]
    torch.manual_seed(0)
    net = space.build(arch)
    for mode in ("none", "foresight"):
        copy = space.build(arch, bn=mode)
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in copy.modules())
        missing, unexpected = copy.load_state_dict(net.state_dict(), strict=False)
        bn_keys = {f"{name}.{key}" for name, m in net.named_modules() if isinstance(m, torch.nn.BatchNorm2d)
                   for key in m.state_dict()}
        assert missing == [] and set(unexpected) == bn_keys and bn_keys
    x = torch.randn(2, 3, 32, 32)
    logits, aux = net.train().forward_with_aux(x)
    assert logits.shape == aux.shape == (2, 10) and torch.equal(net(x), logits)
    assert net.eval().forward_with_aux(x)[1] is None
    net.drop_path_prob = 0.5
    assert torch.equal(net.eval()(x), net.forward_with_aux(x)[0])  # drop-path only acts in train mode
    torch.manual_seed(1)
    dropped = net.train()(x)
    net.drop_path_prob = 0.0
    assert not torch.allclose(dropped, net(x))
    with pytest.raises(InvalidSettingError, match="unknown DARTS bn mode 'some'"):
        space.build(arch, bn="some")
    with pytest.raises(InvalidSettingError, match="either layers or cells_per_stage"):
        space.build(arch, layers=8, cells_per_stage=2)
    assert len(space.build(arch, cells_per_stage=1).cells) == 5 and len(space.build(arch, layers=8).cells) == 8


def test_every_zero_cost_proxy_scores_darts_architectures(tmp_path, data_dir):
    import duckdb

    from proxybench.scoring import score_architectures

    archs = get_space("darts").sample(2, seed=0)
    summary = score_architectures(archs, space="darts", space_options={"channels": 4, "layers": 5},
                                  proxies="zero-cost", batch_size=8, data_dir=data_dir, out=tmp_path,
                                  progress=False, threads=1)
    assert summary.errors == 0 and summary.nonfinite == 0
    rows = duckdb.connect().execute(
        "SELECT proxy, count(*), count(DISTINCT arch), bool_and(status = 'ok'), bool_and(isfinite(score)) "
        "FROM read_parquet(?) GROUP BY proxy", [str(tmp_path / "scores" / "*.parquet")]).fetchall()
    assert len(rows) == 14 and all(r[1:] == (2, 2, True, True) for r in rows), rows
    params = duckdb.connect().execute(
        "SELECT arch, score FROM read_parquet(?) WHERE proxy = 'params'", [str(tmp_path / "scores" / "*.parquet")]).fetchall()
    small = get_space("darts", channels=4, layers=5)
    for arch, score in params:
        assert score == pytest.approx(_params(small.build(arch)) / 1e6)
    assert np.isfinite([r[1] for r in params]).all()


def test_nsga2_search_runs_on_the_darts_encoding(tmp_path):
    import duckdb

    from proxybench.search import run_search

    space = get_space("darts", channels=4, layers=5)
    result = run_search(space, "params,flops", n_start=8, iterations=2, per_iteration=2, pop_size=8, generations=2,
                        cv_folds=3, out=tmp_path, seed=0)
    assert result.archive_size == 12 and result.failed == 0
    archs = [r[0] for r in duckdb.connect().execute(
        "SELECT arch FROM read_parquet(?)", [str(tmp_path / "archive" / "*.parquet")]).fetchall()]
    assert len(archs) == 12 and all(space.decode(space.encode(a)) == a for a in archs)
    assert len({space.uid(a) for a in archs}) == 12  # the search never evaluates one isomorphism class twice


def test_ops_follow_the_reference_definitions():
    from proxybench.spaces.darts_net import FactorizedReduce, make_op

    ones = torch.ones(1, 2, 6, 6)
    assert torch.equal(make_op("avg_pool_3x3", 2, 1)(ones), ones)  # count_include_pad=False: borders stay 1
    assert torch.equal(make_op("max_pool_3x3", 2, 2)(-ones), -torch.ones(1, 2, 3, 3))  # padding never wins
    dil = make_op("dil_conv_5x5", 2, 1).op
    assert (dil[1].kernel_size, dil[1].dilation, dil[1].padding, dil[1].groups) == ((5, 5), (2, 2), (4, 4), 2)
    sep = make_op("sep_conv_5x5", 2, 2).op
    assert [(m.stride, m.padding, m.groups) for m in sep if isinstance(m, torch.nn.Conv2d)] == [
        ((2, 2), (2, 2), 2), ((1, 1), (0, 0), 1), ((1, 1), (2, 2), 2), ((1, 1), (0, 0), 1)]
    assert isinstance(make_op("skip_connect", 4, 1), torch.nn.Identity)
    assert isinstance(make_op("skip_connect", 4, 2), FactorizedReduce)
    fr = FactorizedReduce(1, 2, bn=False)
    torch.nn.init.ones_(fr.conv_1.weight), torch.nn.init.ones_(fr.conv_2.weight)
    x = torch.zeros(1, 1, 4, 4)
    x[0, 0, 1, 1] = 1.0  # seen only by conv_2, which reads the input shifted by one pixel
    assert fr(x)[0, :, 0, 0].tolist() == [0.0, 1.0]
