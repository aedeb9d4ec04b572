"""jacov, nwot, epe_nas and zen: hand-computed values on tiny networks, reference quirks, NB201."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from proxybench.batch import ProxyBatch
from proxybench.proxies import get_proxy
from proxybench.proxies.activation import epe_nas, input_jacobian, jacov, nwot, relu_modules, zen
from proxybench.spaces.nb201_net import NB201Network

K = 1e-5


def _batch(x: torch.Tensor, labels: list[int] | None = None, num_classes: int = 10) -> ProxyBatch:
    targets = torch.tensor(labels if labels is not None else [0] * x.shape[0], dtype=torch.long)
    return ProxyBatch(x, targets, num_classes)


class HalfSquare(nn.Module):
    """``y_c = sum(x²) / (2 m)`` for ``m`` outputs, so ``d(sum_c y_c)/dx = x``: J is the input itself."""

    def __init__(self, outputs: int = 1) -> None:
        super().__init__()
        self.outputs = outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = (x**2).flatten(1).sum(1, keepdim=True) / (2 * self.outputs)
        return y.expand(-1, self.outputs)


def _jacov_numpy(rows: np.ndarray) -> float:
    lam = np.linalg.eigvalsh(np.corrcoef(rows))
    return float(-np.sum(np.log(lam + K) + 1.0 / (lam + K)))


def _epe_numpy(rows: np.ndarray, labels: list[int], n_outputs: int) -> float:
    """EPE-NAS as NASLib computes it, written out independently."""
    groups: dict[int, list[int]] = {}
    for i, c in enumerate(labels):
        groups.setdefault(c, []).append(i)
    s = {}
    for c, idx in groups.items():
        if len(idx) == 1:
            if n_outputs > 100:
                continue
            s[c] = math.log(1 + K)
            continue
        value = float(np.sum(np.log(np.abs(np.corrcoef(rows[idx])) + K)))
        s[c] = value / len(idx) if n_outputs > 100 else value
    if n_outputs <= 100:
        return sum(abs(v) for v in s.values())
    return sum(abs(a - b) for a in s.values() for b in s.values()) / len(s)


# ------------------------------------------------------------------ registry
@pytest.mark.parametrize(
    "name, needs, passes, paper",
    [
        ("jacov", {"batch"}, ("input_grad",), "2006.04647"),
        ("nwot", {"batch"}, ("forward",), "2006.04647"),
        ("epe_nas", {"batch", "labels"}, ("input_grad",), "2102.08099"),
        ("zen", set(), ("gaussian_forward",), "2102.01063"),
    ],
)
def test_registry_metadata(name: str, needs: set[str], passes: tuple[str, ...], paper: str) -> None:
    spec = get_proxy(name)
    assert spec.higher_is_better is True
    assert paper in spec.paper
    assert spec.needs == needs and spec.passes == passes
    assert spec.family == "activation"
    assert dict(get_proxy("zen").defaults) == {"mixup_gamma": 1e-2, "repeat": 1}


# ------------------------------------------------------------------ jacov
def test_jacobian_rows_are_per_sample_input_gradients() -> None:
    x = torch.randn(5, 2, 3, 3)
    jac = input_jacobian(HalfSquare(3), _batch(x))
    assert jac.dtype == torch.float64 and jac.shape == (5, 18)
    torch.testing.assert_close(jac, x.reshape(5, -1).double())


def test_jacov_equals_numpy_formula() -> None:
    torch.manual_seed(0)
    x = torch.randn(8, 3, 4, 4, dtype=torch.float64)
    assert jacov(HalfSquare(), _batch(x)) == pytest.approx(_jacov_numpy(x.reshape(8, -1).numpy()), rel=1e-9)


def test_jacov_linear_network_has_rank_one_correlation() -> None:
    """A linear net has the same Jacobian for every sample: corrcoef = 11ᵀ, λ = (N, 0, ..., 0)."""
    torch.manual_seed(1)
    n = 6
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 4)).double()
    expected = -(math.log(n + K) + 1 / (n + K) + (n - 1) * (math.log(K) + 1 / K))
    assert jacov(net, _batch(torch.randn(n, 3, 2, 2, dtype=torch.float64))) == pytest.approx(expected, rel=1e-6)


def test_jacov_zero_jacobian_raises() -> None:
    """An output that ignores the input: zero Jacobian rows, undefined correlations (reference NaN)."""

    class Constant(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bias = nn.Parameter(torch.ones(3))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.bias.expand(x.shape[0], -1) + torch.zeros_like(x).flatten(1)[:, :3]

    with pytest.raises(ValueError, match="zero variance"):
        jacov(Constant(), _batch(torch.randn(4, 3, 2, 2)))
    with pytest.raises(ValueError, match="at least 2"):
        jacov(HalfSquare(), _batch(torch.randn(1, 3, 2, 2)))


# ------------------------------------------------------------------ nwot
def test_relu_modules_skip_composites_named_after_relu() -> None:
    net = NB201Network(("nor_conv_3x3",) * 6, 10, channels=4, cells_per_stage=1)
    found = relu_modules(net)
    assert found and all(type(m) is nn.ReLU for m in found)
    assert len(found) == sum(1 for m in net.modules() if type(m) is nn.ReLU)
    mixed = nn.Sequential(nn.LeakyReLU(), nn.ReLU6(), nn.Tanh())
    assert [type(m) for m in relu_modules(mixed)] == [nn.LeakyReLU, nn.ReLU6]


def test_nwot_kernel_by_hand_one_relu() -> None:
    """K_ij = #units where samples i and j have the same code (ReLU input > 0)."""
    x = torch.tensor(
        [[1.0, -2.0, 3.0, -0.5], [1.0, 2.0, -3.0, -1.0], [-1.0, -2.0, 3.0, 4.0]], dtype=torch.float64
    ).reshape(3, 1, 2, 2)
    net = nn.Sequential(nn.ReLU(), nn.Flatten())
    codes = (x.reshape(3, -1) > 0).numpy().astype(float)
    kernel = codes @ codes.T + (1 - codes) @ (1 - codes).T
    assert kernel.tolist() == [[4, 2, 2], [2, 4, 0], [2, 0, 4]]  # det 32
    assert nwot(net, _batch(x)) == pytest.approx(math.log(abs(np.linalg.det(kernel))), rel=1e-12)


def test_nwot_sums_over_relus_and_reads_their_inputs() -> None:
    """Two ReLUs: K adds up; the second one sees the (shifted) output of the first, not x."""
    torch.manual_seed(2)
    x = torch.randn(5, 1, 3, 3, dtype=torch.float64)

    class Shift(nn.Module):
        def forward(self, t: torch.Tensor) -> torch.Tensor:
            return t - 0.3

    net = nn.Sequential(nn.ReLU(), Shift(), nn.ReLU(inplace=True))
    c1 = (x.reshape(5, -1) > 0).double()
    c2 = ((torch.relu(x) - 0.3).reshape(5, -1) > 0).double()
    kernel = sum(c @ c.T + (1 - c) @ (1 - c).T for c in (c1, c2))
    assert nwot(net, _batch(x)) == pytest.approx(float(torch.linalg.slogdet(kernel).logabsdet), rel=1e-12)


def test_nwot_identical_inputs_singular_and_single_sample() -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 1), nn.ReLU())
    same = torch.randn(1, 3, 5, 5).expand(4, -1, -1, -1).contiguous()
    assert nwot(net, _batch(same)) == -math.inf  # K = D·11ᵀ has rank 1
    units = 4 * 25 + 2 * 25
    assert nwot(net, _batch(same[:1])) == pytest.approx(math.log(units))  # K = [[D]]
    with pytest.raises(ValueError, match="no ReLU"):
        nwot(nn.Sequential(nn.Flatten()), _batch(same))


def test_nwot_leaves_no_hooks() -> None:
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 6), nn.ReLU())
    nwot(net, _batch(torch.randn(3, 3, 2, 2)))
    assert not net[2]._forward_pre_hooks and not net[2]._forward_hooks


# ------------------------------------------------------------------ epe_nas
def test_epe_nas_matches_reference_formula_with_single_sample_class() -> None:
    torch.manual_seed(3)
    x = torch.randn(9, 2, 3, 3, dtype=torch.float64)
    labels = [2, 0, 2, 1, 0, 2, 0, 2, 5]  # class 1 and 5 have one sample each
    got = epe_nas(HalfSquare(10), _batch(x, labels))
    assert got == pytest.approx(_epe_numpy(x.reshape(9, -1).numpy(), labels, 10), rel=1e-10)


def test_epe_nas_more_than_100_outputs_normalises_and_drops_singletons() -> None:
    torch.manual_seed(4)
    x = torch.randn(9, 2, 3, 3, dtype=torch.float64)
    labels = [2, 0, 2, 1, 0, 2, 0, 2, 5]
    got = epe_nas(HalfSquare(120), _batch(x, labels, num_classes=120))
    rows = x.reshape(9, -1).numpy()
    assert got == pytest.approx(_epe_numpy(rows, labels, 120), rel=1e-10)
    assert got != pytest.approx(_epe_numpy(rows, labels, 10))


def test_epe_nas_two_identical_jacobians_by_hand() -> None:
    """Two samples of one class with proportional Jacobians: |corr| = 1 everywhere, s = 4·log(1+k)."""
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 6.0, 8.0]], dtype=torch.float64).reshape(2, 1, 2, 2)
    assert epe_nas(HalfSquare(), _batch(x, [7, 7])) == pytest.approx(4 * math.log(1 + K), rel=1e-9)


# ------------------------------------------------------------------ zen
class ConvBNNet(nn.Module):
    """Conv3×3 → BN → ReLU → global pool → Linear, with an SE-style pooling before the head."""

    def __init__(self, with_se: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.relu = nn.ReLU()
        self.se = nn.AdaptiveAvgPool2d(1) if with_se else None
        self.pool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn(self.conv(x)))
        if self.se is not None:
            x = x * torch.sigmoid(self.se(x))
        return self.fc(self.pool(x).flatten(1))


def _zen_by_hand(seed: int, shape: tuple[int, ...], gamma: float = 1e-2) -> float:
    """ZenNAS's recipe for ConvBNNet written out: draws in the order conv.w, fc.w, x, ε."""
    torch.manual_seed(seed)
    w = torch.randn(4, 3, 3, 3)
    torch.randn(3, 4)  # fc weight: drawn, unused before the pooling
    x = torch.randn(shape)
    eps = torch.randn(shape)
    running_var = torch.ones(4)

    def f(inp: torch.Tensor) -> torch.Tensor:
        nonlocal running_var
        z = F.conv2d(inp, w, padding=1)
        n = z.numel() / z.shape[1]
        var = z.var(dim=(0, 2, 3), unbiased=False)
        running_var = 0.9 * running_var + 0.1 * var * n / (n - 1)
        return torch.relu((z - z.mean(dim=(0, 2, 3), keepdim=True)) / torch.sqrt(var + 1e-5)[None, :, None, None])

    delta = (f(x) - f(x + gamma * eps)).abs().sum(dim=(1, 2, 3)).mean()
    return float(torch.log(delta)) + float(torch.log(torch.sqrt(running_var.mean())))


def test_zen_by_hand() -> None:
    batch = _batch(torch.zeros(6, 3, 5, 5))
    net = ConvBNNet()
    torch.manual_seed(5)
    assert zen(net, batch) == pytest.approx(_zen_by_hand(5, (6, 3, 5, 5)), rel=1e-4)


def test_zen_deterministic_given_seed_and_independent_of_init_and_data() -> None:
    shape = (4, 3, 6, 6)

    def run(seed: int, scale: float = 1.0, data: float = 0.0) -> float:
        torch.manual_seed(123)
        net = ConvBNNet()
        with torch.no_grad():
            for p in net.parameters():
                p.mul_(scale)
        torch.manual_seed(seed)
        return zen(net, _batch(torch.full(shape, data)))

    assert run(0) == run(0)
    assert run(0) != run(1)
    assert run(0, scale=50.0, data=3.0) == run(0)  # weights redrawn, images unused


def test_zen_linear_features_shift_by_log_gamma() -> None:
    """Without BN or ReLU f is linear: f(x) - f(x+γε) = -γ·conv(ε), so zen moves by log(γ2/γ1)."""
    net = nn.Sequential(nn.Conv2d(3, 5, 3, bias=True), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(5, 2))
    batch = _batch(torch.zeros(3, 3, 6, 6))
    torch.manual_seed(7)
    low = zen(net, batch, mixup_gamma=1e-2)
    torch.manual_seed(7)
    high = zen(net, batch, mixup_gamma=4e-2)
    assert high - low == pytest.approx(math.log(4.0), abs=1e-4)


def test_zen_hooks_last_global_pool_and_repeat() -> None:
    batch = _batch(torch.zeros(4, 3, 5, 5))
    torch.manual_seed(8)
    with_se = zen(ConvBNNet(with_se=True), batch)
    assert math.isfinite(with_se)
    torch.manual_seed(8)
    one = zen(ConvBNNet(), batch, repeat=1)
    torch.manual_seed(8)
    two = zen(ConvBNNet(), batch, repeat=2)
    assert one != two and math.isfinite(two)
    with pytest.raises(ValueError, match="AdaptiveAvgPool2d"):
        zen(nn.Sequential(nn.Conv2d(3, 2, 1), nn.Flatten()), batch)
    with pytest.raises(ValueError, match="repeat"):
        zen(ConvBNNet(), batch, repeat=0)


# ------------------------------------------------------------------ NB201
NB201_ARCHS = [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
]
DEAD_ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|none~0|none~1|none~2|"


@pytest.fixture(scope="module")
def nb201_batch() -> ProxyBatch:
    g = torch.Generator().manual_seed(0)
    labels = [0, 1, 2, 0, 1, 2, 3, 3]
    return _batch(torch.randn(8, 3, 32, 32, generator=g), labels)


def _small_nb201(arch: str) -> nn.Module:
    from proxybench.spaces.nb201 import parse_arch

    torch.manual_seed(0)
    return NB201Network(parse_arch(arch), 10, channels=8, cells_per_stage=2).train()


@pytest.mark.parametrize("arch", NB201_ARCHS)
@pytest.mark.parametrize("name", ["jacov", "nwot", "epe_nas", "zen"])
def test_finite_on_nb201(name: str, arch: str, nb201_batch: ProxyBatch) -> None:
    torch.manual_seed(0)
    assert math.isfinite(get_proxy(name)(_small_nb201(arch), nb201_batch))


def test_dead_nb201_cell(nb201_batch: ProxyBatch) -> None:
    """Output independent of the input: Jacobian proxies raise, zen gives -inf, nwot stays finite."""
    for fn in (jacov, epe_nas):
        with pytest.raises(ValueError, match="zero variance"):
            fn(_small_nb201(DEAD_ARCH), nb201_batch)
    torch.manual_seed(0)
    assert zen(_small_nb201(DEAD_ARCH), nb201_batch) == -math.inf
    assert math.isfinite(nwot(_small_nb201(DEAD_ARCH), nb201_batch))
