"""TE-NAS tenas_ntk and tenas_lr: hand-computed values on tiny networks, reference quirks, NB201."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch
from torch import nn

from proxybench.batch import ProxyBatch
from proxybench.proxies import get_proxy
from proxybench.proxies.tenas import (
    activation_patterns,
    condition_number,
    count_distinct_rows,
    count_linear_regions,
    draw_crops,
    ntk_gram,
    ntk_weights,
    reinitialize,
    tenas_lr,
    tenas_ntk,
    thin_blocks,
)
from proxybench.spaces import get_space

SPACE = get_space("nb201")
CONV = SPACE.largest()  # every edge nor_conv_3x3
SKIP = SPACE.smallest()  # every edge skip_connect: no ReLU inside the cell
DEAD = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"  # output independent of the input


def _batch(x: torch.Tensor, num_classes: int = 10) -> ProxyBatch:
    return ProxyBatch(x, torch.zeros(x.shape[0], dtype=torch.long), num_classes)


def _builder(arch: str) -> functools.partial:
    return functools.partial(SPACE.build, arch, 10)


class Linear(nn.Module):
    """``f(x) = W flatten(x) + b``: the NTK of the summed logits is ``k · x_i·x_j`` (no bias: 'bias')."""

    def __init__(self, d: int, k: int) -> None:
        super().__init__()
        self.fc = nn.Linear(d, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))


def _np_cond(m: np.ndarray) -> float:
    e = np.linalg.eigvalsh(m)
    return float(e[-1] / e[0])


def _reference_rows(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """get_ntk_n's loop, written out: one forward, per-sample backward(ones), '*weight*' grads."""
    net.zero_grad()
    logit = net(x)
    rows = []
    for i in range(len(x)):
        logit[i:i + 1].backward(torch.ones_like(logit[i:i + 1]), retain_graph=True)
        rows.append(torch.cat([w.grad.view(-1).clone() for name, w in net.named_parameters()
                               if "weight" in name and w.grad is not None]))
        net.zero_grad()
    return torch.stack(rows)


# ------------------------------------------------------------------ registry
def test_registry_metadata() -> None:
    ntk, lr = get_proxy("tenas_ntk"), get_proxy("tenas_lr")
    assert ntk.higher_is_better is False and lr.higher_is_better is True
    for spec in (ntk, lr):
        assert "2102.11535" in spec.paper
        assert spec.needs == {"batch", "builder"}
        assert spec.family == "tenas"
        assert spec.shares_network is False
    assert ntk.passes == ("own_network", "per_sample_grads")
    assert lr.passes == ("own_network",)
    assert dict(ntk.defaults) == {"network": "own", "channels": 3, "cells_per_stage": 1, "n_samples": 72,
                                  "repeat": 3, "init": "default", "reference_nan_to_num": False}
    assert dict(lr.defaults) == {"network": "own", "channels": 1, "cells_per_stage": 1, "depth": 1,
                                 "inputs": "images", "crop": 3, "in_channels": 1, "n_samples": 1000,
                                 "sample_batches": 3, "repeat": 3, "init": "default"}


# ------------------------------------------------------------------ NTK maths
def test_linear_ntk_is_k_times_input_gram() -> None:
    torch.manual_seed(0)
    net, x = Linear(5, 3), torch.randn(4, 5)
    gram = ntk_gram(net, x).numpy()
    xn = x.double().numpy()
    np.testing.assert_allclose(gram, 3 * xn @ xn.T, rtol=1e-6, atol=1e-6)
    assert condition_number(ntk_gram(net, x)) == pytest.approx(_np_cond(xn @ xn.T), rel=1e-5)


def test_given_network_mean_over_consecutive_chunks() -> None:
    torch.manual_seed(1)
    net, x = Linear(6, 2), torch.randn(7, 6, 1, 1)
    value = tenas_ntk(net, _batch(x), network="given", n_samples=3, repeat=2)
    xn = x.double().flatten(1).numpy()
    expected = np.mean([_np_cond(xn[0:3] @ xn[0:3].T), _np_cond(xn[3:6] @ xn[3:6].T)])  # sample 6 unused
    assert value == pytest.approx(expected, rel=1e-5)


def test_gram_matches_reference_loop_with_batchnorm_batch_statistics() -> None:
    torch.manual_seed(2)
    net = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1, bias=False), nn.BatchNorm2d(3), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 4)).train()
    x = torch.randn(5, 2, 4, 4)
    rows = _reference_rows(net, x).double()
    torch.testing.assert_close(ntk_gram(net, x), rows @ rows.T, rtol=1e-5, atol=1e-8)
    # the rows include BN's γ ('1.weight') and exclude every bias
    assert [name for name, p in net.named_parameters() if any(p is w for w in ntk_weights(net))] == [
        "0.weight", "1.weight", "5.weight"]


def test_rows_couple_samples_through_batch_statistics() -> None:
    """Train-mode BN: sample 0's gradient changes when sample 1 changes (the reference's semantics)."""
    torch.manual_seed(3)
    net = nn.Sequential(nn.Conv2d(1, 2, 1, bias=False), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(),
                        nn.Linear(8, 2)).train()
    x = torch.randn(3, 1, 2, 2)
    y = x.clone()
    y[1] += 1.0
    g_x, g_y = ntk_gram(net, x), ntk_gram(net, y)
    assert not torch.allclose(g_x[0, 0], g_y[0, 0])


def test_condition_number_edge_cases() -> None:
    assert condition_number(torch.diag(torch.tensor([4.0, 1.0]))) == pytest.approx(4.0)
    assert condition_number(torch.diag(torch.tensor([2.0, 0.0]))) == math.inf
    assert condition_number(torch.diag(torch.tensor([2.0, -1e-12]))) == math.inf  # PSD: a negative λ is rounding
    assert math.isnan(condition_number(torch.zeros(3, 3)))


def test_dead_network_nan_and_reference_nan_to_num() -> None:
    x = torch.randn(4, 3, 8, 8)
    torch.manual_seed(0)
    assert math.isnan(tenas_ntk(None, _batch(x), builder=_builder(DEAD), n_samples=4, repeat=1))
    torch.manual_seed(0)
    assert tenas_ntk(None, _batch(x), builder=_builder(DEAD), n_samples=4, repeat=1,
                     reference_nan_to_num=True) == 100000.0


def test_own_network_is_the_builders_c3_n1_network_with_default_init() -> None:
    """init='default' (the reference's init_model falls through): the built weights, the same every repeat."""
    calls = []

    def spy(**options):
        calls.append(options)
        return SPACE.build(SKIP, 10, **options)

    x = torch.randn(8, 3, 8, 8)
    torch.manual_seed(5)
    value = tenas_ntk(None, _batch(x), builder=spy, n_samples=4, repeat=2)
    assert calls == [{"channels": 3, "cells_per_stage": 1, "bn": "all"}]
    torch.manual_seed(5)
    thin = SPACE.build(SKIP, 10, channels=3, cells_per_stage=1).train()
    expected = np.mean([condition_number(ntk_gram(thin, x[:4])), condition_number(ntk_gram(thin, x[4:]))])
    assert value == pytest.approx(expected, rel=1e-12)


@torch.no_grad()
def test_kaiming_reinit() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(16, 64, 3, bias=True), nn.BatchNorm2d(64), nn.Linear(64, 32))
    net[1].weight.fill_(3.0)
    net[1].bias.fill_(1.0)
    before = net[0].weight.clone()
    reinitialize(net, "default")
    assert torch.equal(net[0].weight, before) and net[1].weight[0] == 3.0
    reinitialize(net, "kaiming_normal_fanout")
    assert float(net[0].weight.std()) == pytest.approx(math.sqrt(2 / (64 * 9)), rel=0.05)
    assert float(net[2].weight.std()) == pytest.approx(math.sqrt(2 / 32), rel=0.1)
    assert torch.all(net[0].bias == 0) and torch.all(net[1].weight == 1) and torch.all(net[1].bias == 0)
    reinitialize(net, "kaiming_normal_fanin")
    assert float(net[0].weight.std()) == pytest.approx(math.sqrt(2 / (16 * 9)), rel=0.05)
    with pytest.raises(ValueError, match="kaiming_normal_fanin"):
        reinitialize(net, "kaiming_norm_fanin")


# ------------------------------------------------------------------ linear regions maths
def test_count_distinct_rows() -> None:
    rows = torch.tensor([[1, 0, 1], [1, 0, 1], [0, 0, 0], [1, 1, 1], [0, 0, 0]], dtype=torch.uint8)
    assert count_distinct_rows(rows) == 3


def _np_patterns(x: np.ndarray) -> np.ndarray:
    """ReLU(x) codes, then the head BN(γ=1,β=0, batch statistics)-ReLU codes: relu(x) > batch mean."""
    r = np.maximum(x, 0)
    head = r > r.mean()  # one channel: mean over N·H·W
    return np.concatenate([(r > 0).reshape(len(x), -1), head.reshape(len(x), -1)], axis=1)


def test_count_linear_regions_by_hand_each_batch_its_own_bn() -> None:
    torch.manual_seed(0)
    body = nn.Sequential(nn.ReLU())
    a, b = torch.randn(40, 1, 1, 2), torch.randn(30, 1, 1, 2) + 0.7
    got = count_linear_regions(body, [a, b], head=True)
    pats = np.concatenate([_np_patterns(a.numpy()), _np_patterns(b.numpy())])
    assert got == len({tuple(p) for p in pats})
    pooled = _np_patterns(torch.cat([a, b]).numpy())  # one BN over both batches: not the reference
    assert count_linear_regions(body, [torch.cat([a, b])], head=True) == len({tuple(p) for p in pooled})


def test_patterns_only_from_relus_with_4d_input() -> None:
    body = nn.Sequential(nn.Flatten(), nn.ReLU())  # a 2-D ReLU input is not hooked (reference)
    with pytest.raises(ValueError, match="no ReLU"):
        activation_patterns(body, torch.randn(3, 1, 2, 2), head=False)
    pats = activation_patterns(nn.Sequential(nn.ReLU()), torch.randn(3, 1, 3, 3), head=False)
    assert pats.shape == (3, 2) and pats.dtype == torch.uint8  # 9 bits packed in 2 bytes


def test_draw_crops_are_distinct_single_channel_windows() -> None:
    torch.manual_seed(0)
    images = torch.randn(2, 3, 5, 5)
    crops = draw_crops(images, 40, crop=3, in_channels=1)
    assert crops.shape == (40, 1, 3, 3)
    windows = {tuple(images[i, c, t:t + 3, l:l + 3].flatten().tolist())
               for i in range(2) for c in range(3) for t in range(3) for l in range(3)}
    found = [tuple(cr.flatten().tolist()) for cr in crops]
    assert all(f in windows for f in found) and len(set(found)) == 40
    assert draw_crops(images, 2, crop=None, in_channels=None).shape == (2, 3, 5, 5)
    with pytest.raises(ValueError, match="distinct crops"):
        draw_crops(images, 55, crop=3, in_channels=1)  # 2 images × 3 channels × 9 positions = 54


def test_thin_network_is_the_first_cell_at_width_one() -> None:
    calls = []

    def spy(**options):
        calls.append(options)
        return SPACE.build(CONV, 10, **options)

    blocks = thin_blocks(spy, channels=1, cells_per_stage=1, depth=1)
    assert calls == [{"channels": 1, "cells_per_stage": 1, "bn": "all"}]
    assert len(blocks) == 1 and type(blocks[0]).__name__ == "NB201Cell"
    assert blocks(torch.randn(4, 1, 3, 3)).shape == (4, 1, 3, 3)  # no stem: 1-channel input


def test_lr_without_cells_raises() -> None:
    with pytest.raises(ValueError, match="cells"):
        tenas_lr(None, _batch(torch.randn(4, 3, 8, 8)), builder=lambda **kw: nn.Sequential(nn.ReLU()),
                 n_samples=10, sample_batches=1, repeat=1)


def test_lr_given_network_matches_hand_count() -> None:
    """network='given', whole images: the count is that of the network's own ReLUs, no extra head."""
    torch.manual_seed(0)
    x = torch.randn(20, 1, 2, 2)
    value = tenas_lr(nn.Sequential(nn.ReLU()), _batch(x), network="given", crop=None, in_channels=None,
                     n_samples=20, sample_batches=1, repeat=1)
    assert value == len({tuple(r) for r in (x.numpy() > 0).reshape(20, -1)})


# ------------------------------------------------------------------ NB201 and errors
def test_nb201_lr_smoke_conv_beats_skip() -> None:
    torch.manual_seed(0)
    x = torch.randn(16, 3, 32, 32)
    values = {}
    for arch in (CONV, SKIP):
        torch.manual_seed(0)
        values[arch] = tenas_lr(None, _batch(x), builder=_builder(arch))
    assert 1 <= values[SKIP] <= 2**9  # only the head ReLU's 9 units
    assert values[SKIP] < values[CONV] <= 3000
    torch.manual_seed(0)
    assert tenas_lr(None, _batch(x), builder=_builder(CONV)) == values[CONV]  # deterministic


def test_nb201_ntk_smoke_and_determinism() -> None:
    torch.manual_seed(0)
    x = torch.randn(12, 3, 32, 32)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        runs.append(tenas_ntk(None, _batch(x), builder=_builder(SKIP), n_samples=6, repeat=2))
    assert math.isfinite(runs[0]) and runs[0] > 1.0
    assert runs[0] == runs[1]


def test_errors() -> None:
    small = _batch(torch.randn(10, 3, 8, 8))
    with pytest.raises(ValueError, match="216"):
        tenas_ntk(None, small, builder=_builder(SKIP))
    with pytest.raises(ValueError, match="builder"):
        tenas_ntk(None, small, n_samples=2, repeat=1)
    with pytest.raises(ValueError, match="builder"):
        tenas_lr(None, small, n_samples=2, sample_batches=1, repeat=1)
    with pytest.raises(ValueError, match="network"):
        tenas_ntk(None, small, builder=_builder(SKIP), network="full", n_samples=2, repeat=1)
    with pytest.raises(ValueError, match="distinct crops"):
        tenas_lr(None, _batch(torch.randn(2, 3, 4, 4)), builder=_builder(SKIP))


@pytest.mark.slow
def test_nb201_reference_protocol_full() -> None:
    torch.manual_seed(0)
    x = torch.randn(216, 3, 32, 32)
    torch.manual_seed(0)
    value = get_proxy("tenas_ntk")(None, _batch(x), builder=_builder(SKIP))
    assert math.isfinite(value) and value > 1.0
