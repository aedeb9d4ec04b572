"""Shared passes: proxies computed from one shared pass equal the same proxies computed alone."""

from __future__ import annotations

import copy

import pytest
import torch

from proxybench.batch import ProxyBatch
from proxybench.proxies import get_proxy
from proxybench.proxies.passes import PassCache, shared, sharing
from proxybench.spaces.nb201 import NB201Space

ARCHS = [
    "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",
    "|avg_pool_3x3~0|+|none~0|nor_conv_3x3~1|+|nor_conv_1x1~0|skip_connect~1|avg_pool_3x3~2|",
]
SHARING = ["grad_norm", "snip", "plain", "fisher", "grasp", "jacov", "epe_nas", "nwot"]
SUITE_MIXED = ["grad_norm", "zen", "snip", "flops", "synflow", "grasp", "nwot", "params", "synflow_bn", "jacov",
               "l2_norm", "plain", "fisher", "epe_nas"]


def _batch(seed: int = 0, n: int = 8) -> ProxyBatch:
    g = torch.Generator().manual_seed(seed)
    return ProxyBatch(inputs=torch.randn(n, 3, 32, 32, generator=g), targets=torch.arange(n) % 4, num_classes=10)


def _scores(arch: str, cache: PassCache | None) -> dict[str, float]:
    torch.manual_seed(0)
    base = NB201Space().build(arch, 10)
    base.train()
    batch = _batch()
    out = {}
    for name in SHARING:
        net = copy.deepcopy(base)  # each proxy gets its own copy, as the engine does
        if cache is None:
            out[name] = get_proxy(name).fn(net, batch)
        else:
            with sharing(cache, variant="default"):
                out[name] = get_proxy(name).fn(net, batch)
    return out


@pytest.mark.parametrize("arch", ARCHS)
def test_shared_passes_give_identical_scores(arch):
    alone = _scores(arch, None)
    # not told what is wanted: one loss pass, one Jacobian (nwot and grasp run their own forward, uncached)
    separate = PassCache()
    assert _scores(arch, separate) == alone  # bit for bit: the same computation, done once
    assert separate.computed == 2 and separate.hits == 4
    # told every pass the proxies declare: one shared forward serves all eight, grasp's H g included
    bundled = PassCache(wanted={p for name in SHARING for p in get_proxy(name).passes})
    assert _scores(arch, bundled) == alone
    assert bundled.computed == 1 and bundled.hits == 7


def test_passes_do_not_cross_variants_or_leak_outside_a_block():
    cache = PassCache()
    calls = []

    def compute(tag):
        calls.append(tag)
        return tag

    with sharing(cache, variant="a"):
        assert shared("p", lambda: compute(1)) == 1
        assert shared("p", lambda: compute(2)) == 1
    with sharing(cache, variant="b"):
        assert shared("p", lambda: compute(3)) == 3
    assert shared("p", lambda: compute(4)) == 4  # no block: always computed
    assert calls == [1, 3, 4] and cache.hits == 1 and cache.computed == 2


def test_engine_scores_are_identical_with_and_without_shared_passes(tmp_path, data_dir):
    from proxybench.scoring import score_architectures
    from proxybench.store import read_scores

    def run(out, share):
        # the whole suite, with proxies that share one network copy (shares_network) before and
        # after proxies that change theirs (zen redraws its weights), so a leak would show
        score_architectures(ARCHS, proxies=SUITE_MIXED, batch_size=8, data_dir=data_dir, out=out, progress=False,
                            share_passes=share, threads=1)
        table = read_scores(out).to_pylist()
        return {(r["arch"], r["proxy"]): (r["score"], r["status"]) for r in table}

    shared_rows = run(tmp_path / "shared", True)
    alone_rows = run(tmp_path / "alone", False)
    assert len(shared_rows) == len(ARCHS) * len(SUITE_MIXED) and shared_rows == alone_rows
    assert all(status == "ok" for _, status in shared_rows.values())


def test_grasp_at_another_temperature_computes_its_own_hessian_product():
    arch = ARCHS[0]
    torch.manual_seed(0)
    base = NB201Space().build(arch, 10)
    base.train()
    grasp = get_proxy("grasp")
    alone = grasp.fn(copy.deepcopy(base), _batch(), temperature=2.0)
    cache = PassCache(wanted={p for name in SHARING for p in get_proxy(name).passes})
    with sharing(cache, variant="default"):
        at_one = grasp.fn(copy.deepcopy(base), _batch())
        at_two = grasp.fn(copy.deepcopy(base), _batch(), temperature=2.0)
    assert at_two == alone and at_two != at_one

