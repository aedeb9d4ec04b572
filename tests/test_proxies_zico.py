"""zico: hand-computed values, independent NumPy maths, the reference's quirks, NB201."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from proxybench.batch import ProxyBatch
from proxybench.proxies import get_proxy
from proxybench.proxies.zico import chunk_weight_gradients, zico, zico_from_gradients
from proxybench.spaces.nb201_net import NB201Network


def _batch(x: torch.Tensor, labels: list[int], num_classes: int = 10) -> ProxyBatch:
    return ProxyBatch(x, torch.tensor(labels, dtype=torch.long), num_classes)


def _zico_numpy(per_layer: list[np.ndarray]) -> float:
    """caculate_zico written out: per layer (B, numel) arrays, population std, natural log."""
    total = 0.0
    for g in per_layer:
        std = np.std(g, axis=0)
        nz = np.nonzero(std)[0]
        s = np.sum(np.mean(np.abs(g), axis=0)[nz] / std[nz])
        if s != 0:
            total += float(np.log(s))
    return total


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


class MLP(nn.Module):
    """Linear - ReLU - Linear on flattened inputs; ``dead`` is computed but never reaches the loss."""

    def __init__(self, d: int, h: int, c: int, with_dead: bool = False) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d, h)
        self.fc2 = nn.Linear(h, c)
        self.dead = nn.Linear(d, 3) if with_dead else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        if self.dead is not None:
            self.dead(x)  # output discarded: its weight gets no gradient
        return self.fc2(torch.relu(self.fc1(x)))


def _mlp_chunk_grads_numpy(net: MLP, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hand backprop of the mean cross-entropy of one chunk: (dL/dW1, dL/dW2), flattened."""
    w1, b1 = net.fc1.weight.detach().numpy(), net.fc1.bias.detach().numpy()
    w2, b2 = net.fc2.weight.detach().numpy(), net.fc2.bias.detach().numpy()
    x = x.reshape(x.shape[0], -1)
    z1 = x @ w1.T + b1
    a1 = np.maximum(z1, 0)
    p = _softmax(a1 @ w2.T + b2)
    delta2 = (p - np.eye(w2.shape[0])[y]) / x.shape[0]
    delta1 = (delta2 @ w2) * (z1 > 0)
    return (delta1.T @ x).ravel(), (delta2.T @ a1).ravel()


# ------------------------------------------------------------------ registry
def test_registry_metadata() -> None:
    spec = get_proxy("zico")
    assert spec.higher_is_better is True
    assert "2301.11300" in spec.paper and "ZiCo" in spec.paper
    assert spec.needs == {"batch", "labels"}
    assert spec.passes == ("multi_batch_grads",)
    assert spec.family == "zico"
    assert spec.shares_network is True
    assert dict(spec.defaults) == {"n_batches": 2}


# ------------------------------------------------------------------ hand values
def test_hand_value_two_single_sample_batches() -> None:
    """W = 0, logits 0, p = (1/2, 1/2): g_1 = (p - e_0)·1 = (-1/2, 1/2), g_2 = (p - e_1)·2 = (1, -1).

    Each element: mean|g| = 3/4, std = |g_1 - g_2| / 2 = 3/4, ratio 1; the layer sums to 2: ln 2.
    """
    net = nn.Sequential(nn.Flatten(), nn.Linear(1, 2, bias=False)).double()
    with torch.no_grad():
        net[1].weight.zero_()
    x = torch.tensor([1.0, 2.0], dtype=torch.float64).reshape(2, 1, 1, 1)
    assert zico(net, _batch(x, [0, 1], 2)) == pytest.approx(math.log(2), rel=1e-12)


@pytest.mark.parametrize("n_batches", [2, 3, 4])
def test_matches_numpy_backprop_of_two_layer_mlp(n_batches: int) -> None:
    torch.manual_seed(0)
    net = MLP(12, 7, 5).double()
    chunk = 3
    x = torch.randn(n_batches * chunk, 3, 2, 2, dtype=torch.float64)
    y = torch.randint(0, 5, (n_batches * chunk,))
    g1, g2 = zip(*(
        _mlp_chunk_grads_numpy(net, x[b * chunk:(b + 1) * chunk].numpy(), y[b * chunk:(b + 1) * chunk].numpy())
        for b in range(n_batches)
    ))
    expected = _zico_numpy([np.stack(g1), np.stack(g2)])
    got = zico(net, ProxyBatch(x, y, 5), n_batches=n_batches)
    assert got == pytest.approx(expected, rel=1e-10)
    grads = chunk_weight_gradients(net, ProxyBatch(x, y, 5), n_batches)
    assert [tuple(g.shape) for g in grads] == [(n_batches, 7 * 12), (n_batches, 5 * 7)]
    np.testing.assert_allclose(grads[1].numpy(), np.stack(g2), rtol=1e-10, atol=1e-14)


def test_statistics_follow_numpy_float32() -> None:
    """The reference's np.std on float32: near-equal gradients keep NumPy's rounding of a + b."""
    a = np.float32(0.1234567)
    b = np.nextafter(a, np.float32(1), dtype=np.float32)  # one ulp apart
    rng = np.random.default_rng(0)
    rows = np.stack([np.r_[a, rng.standard_normal(5).astype(np.float32)],
                     np.r_[b, rng.standard_normal(5).astype(np.float32)]]).astype(np.float32)
    expected = _zico_numpy([rows])  # float32 NumPy, as caculate_zico
    assert zico_from_gradients([torch.from_numpy(rows)]) == pytest.approx(expected, rel=1e-6)
    exact = np.log(np.sum(np.abs(rows.astype(np.float64)).mean(0) / rows.astype(np.float64).std(0)))
    assert abs(expected - exact) > 1e-3  # the quirk is visible: not the float64 value


# ------------------------------------------------------------------ reference quirks
def test_zero_std_elements_and_unreached_layers_are_skipped() -> None:
    """A weight off the loss path (no gradient) and inputs that are always 0 (zero-gradient columns) add nothing."""
    torch.manual_seed(1)
    plain = MLP(12, 6, 4).double()
    dead = MLP(12, 6, 4, with_dead=True).double()
    dead.fc1.load_state_dict(plain.fc1.state_dict())
    dead.fc2.load_state_dict(plain.fc2.state_dict())
    x = torch.randn(8, 3, 2, 2, dtype=torch.float64)
    x[:, 0] = 0.0  # four input features always 0: their fc1 columns get zero gradients in every batch
    batch = _batch(x, [0, 1, 2, 3, 0, 1, 2, 3], 4)
    grads = chunk_weight_gradients(dead, batch, 2)
    assert len(grads) == 3 and torch.count_nonzero(grads[2]) == 0
    assert zico(dead, batch) == pytest.approx(zico(plain, batch), rel=1e-12)
    g1 = grads[0].reshape(2, 6, 12)
    assert torch.count_nonzero(g1[:, :, :4]) == 0
    assert zico(plain, batch) == pytest.approx(
        _zico_numpy([g1[:, :, 4:].reshape(2, -1).numpy(), grads[1].numpy()]), rel=1e-12)


def test_identical_batches_score_zero() -> None:
    """Every element has zero std across identical batches: every layer is skipped, the reference returns 0."""
    torch.manual_seed(2)
    net = MLP(12, 6, 4).double()
    half = torch.randn(4, 3, 2, 2, dtype=torch.float64)
    assert zico(net, _batch(torch.cat([half, half]), [0, 1, 2, 3] * 2, 4)) == 0.0


def test_batches_are_consecutive_chunks() -> None:
    """Order within a chunk and the order of the chunks do not matter; moving a sample across chunks does."""
    torch.manual_seed(3)
    net = MLP(12, 6, 4).double()
    x = torch.randn(8, 3, 2, 2, dtype=torch.float64)
    y = [0, 1, 2, 3, 3, 2, 1, 0]
    base = zico(net, _batch(x, y, 4))
    within = [2, 0, 3, 1, 5, 7, 4, 6]
    swapped = [4, 5, 6, 7, 0, 1, 2, 3]
    across = [0, 1, 2, 4, 3, 5, 6, 7]
    for order in (within, swapped):
        assert zico(net, _batch(x[order], [y[i] for i in order], 4)) == pytest.approx(base, rel=1e-12)
    assert zico(net, _batch(x[across], [y[i] for i in across], 4)) != pytest.approx(base, rel=1e-6)


def test_matches_reference_style_loop_on_nb201() -> None:
    """getzico written out: train mode, one zero_grad/backward per batch, float32 NumPy statistics."""
    torch.manual_seed(4)
    net = NB201Network(("nor_conv_3x3", "none", "avg_pool_3x3", "skip_connect", "nor_conv_1x1", "none"), 10,
                       channels=4, cells_per_stage=1)
    x = torch.randn(8, 3, 16, 16)
    y = torch.randint(0, 10, (8,))
    got = zico(copy.deepcopy(net), ProxyBatch(x, y, 10))

    ref = copy.deepcopy(net).train()
    per_layer: dict[str, list[np.ndarray]] = {}
    for b in range(2):
        ref.zero_grad()
        F.cross_entropy(ref(x[4 * b:4 * b + 4]), y[4 * b:4 * b + 4]).backward()
        for name, mod in ref.named_modules():
            if isinstance(mod, (nn.Conv2d, nn.Linear)) and mod.weight.grad is not None:
                per_layer.setdefault(name, []).append(mod.weight.grad.numpy().ravel().copy())
    assert got == pytest.approx(_zico_numpy([np.stack(v) for v in per_layer.values()]), rel=1e-5)


# ------------------------------------------------------------------ errors, determinism, network
def test_bad_settings_and_networks_raise() -> None:
    net = MLP(12, 6, 4)
    x = torch.randn(6, 3, 2, 2)
    batch = _batch(x, [0] * 6, 4)
    with pytest.raises(ValueError, match="n_batches must be an integer >= 2"):
        zico(net, batch, n_batches=1)
    with pytest.raises(ValueError, match="n_batches must be an integer >= 2"):
        zico(net, batch, n_batches=True)
    with pytest.raises(ValueError, match="does not split into 4 equal chunks"):
        zico(net, batch, n_batches=4)
    with pytest.raises(ValueError, match="does not split into 8 equal chunks"):
        zico(net, batch, n_batches=8)
    with pytest.raises(ValueError, match="no nn.Conv2d or nn.Linear"):
        zico(nn.Sequential(nn.Flatten()), batch)


def test_leaves_network_untouched_and_is_deterministic() -> None:
    torch.manual_seed(5)
    net = NB201Network(("nor_conv_3x3",) * 6, 10, channels=4, cells_per_stage=1)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.randn(8, 3, 16, 16)
    batch = ProxyBatch(x, torch.arange(8) % 10, 10)
    first = zico(net, batch)
    assert zico(net, batch) == first
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k  # running statistics included: shares_network is safe
    assert all(p.grad is None for p in net.parameters())


def test_nb201_smoke() -> None:
    torch.manual_seed(0)
    net = NB201Network(("nor_conv_3x3", "skip_connect", "nor_conv_1x1", "avg_pool_3x3", "none", "nor_conv_3x3"), 10)
    net.train()
    x = torch.randn(16, 3, 32, 32)
    value = get_proxy("zico")(net, ProxyBatch(x, torch.arange(16) % 10, 10))
    assert math.isfinite(value) and value > 0
    # 44 Conv2d/Linear layers, each ln(sum of >= thousands of ratios >= 1): well above 0
    assert value > len([m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))])
