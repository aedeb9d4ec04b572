"""Gradient proxies: grad_norm, snip, plain, fisher, grasp.

Closed-form gradients of a softmax-regression layer, an independent autograd computation on a
small conv net, an explicit Hessian for grasp, and symmetries that only the right per-layer
definitions satisfy (ReLU rescaling, batch duplication).
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr
from torch import nn

from proxybench.batch import ProxyBatch
from proxybench.data import draw_proxy_batch, load_images
from proxybench.presets import get_preset
from proxybench.proxies import get_proxy, list_proxies
from proxybench.proxies.gradient import fisher, grad_norm, grasp, plain, snip
from proxybench.spaces import get_space
from proxybench.spaces.nb201 import from_naslib_tuple

GRADIENT = ("grad_norm", "snip", "plain", "fisher", "grasp")


def _batch(n: int = 6, shape: tuple[int, ...] = (4,), num_classes: int = 3, *, seed: int = 0,
           dtype: torch.dtype = torch.float32) -> ProxyBatch:
    g = torch.Generator().manual_seed(seed)
    inputs = torch.randn(n, *shape, generator=g, dtype=dtype)
    targets = torch.randint(0, num_classes, (n,), generator=g)
    return _Batch(inputs, targets, num_classes)


class _Batch(ProxyBatch):
    """ProxyBatch accepts (N, C, H, W) only; the linear toy nets take (N, features)."""

    def __post_init__(self) -> None:
        pass


class ConvNet(nn.Module):
    """Conv-BN-ReLU-Conv-pool-Linear: every kind of layer a gradient proxy scores, with BN."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 5, 3, bias=False)
        self.head = nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv2(F.relu(self.bn(self.conv1(x))))
        return self.head(x.mean(dim=(2, 3)))


def _conv_net(seed: int = 0) -> ConvNet:
    torch.manual_seed(seed)
    return ConvNet().train()


def _image_batch(n: int = 6, side: int = 6, seed: int = 1) -> ProxyBatch:
    g = torch.Generator().manual_seed(seed)
    return ProxyBatch(torch.randn(n, 3, side, side, generator=g), torch.randint(0, 3, (n,), generator=g), 3)


def _autograd_grads(net: nn.Module, batch: ProxyBatch) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(W, dL/dW) for every Conv2d/Linear, computed independently of the proxies."""
    layers = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    loss = F.cross_entropy(net(batch.inputs), batch.targets)
    grads = torch.autograd.grad(loss, [m.weight for m in layers])
    return [(m.weight.detach(), g) for m, g in zip(layers, grads)]


# ----------------------------------------------------------------------------- closed form


def _softmax_regression() -> tuple[nn.Linear, ProxyBatch, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A single Linear layer, its batch, and by hand: logits z, dL/dz and dL/dW."""
    torch.manual_seed(3)
    net = nn.Linear(4, 3).double()
    batch = _batch(7, dtype=torch.float64)
    with torch.no_grad():
        z = batch.inputs @ net.weight.T + net.bias
        dz = (torch.softmax(z, dim=1) - F.one_hot(batch.targets, 3).double()) / batch.size  # mean CE
        dw = dz.T @ batch.inputs
    return net, batch, z, dz, dw


def test_grad_norm_snip_plain_on_softmax_regression_match_the_closed_form() -> None:
    net, batch, _, _, dw = _softmax_regression()
    w = net.weight.detach().clone()
    assert grad_norm(copy.deepcopy(net), batch) == pytest.approx(float(dw.norm()), rel=1e-12)
    assert snip(copy.deepcopy(net), batch) == pytest.approx(float((dw * w).abs().sum()), rel=1e-12)
    assert plain(copy.deepcopy(net), batch) == pytest.approx(float((dw * w).sum()), rel=1e-12)


def test_fisher_on_softmax_regression_matches_the_closed_form() -> None:
    # a = z, dL/da = dz: per class k, 1/2 mean_n (z dz)^2, broadcast over the 4 weights of row k.
    net, batch, z, dz, _ = _softmax_regression()
    expected = float(4 * (0.5 * (z * dz).pow(2).mean(0)).sum())
    assert fisher(net, batch) == pytest.approx(expected, rel=1e-12)


def test_fisher_on_a_conv_layer_sums_over_space_and_broadcasts_over_fan_in() -> None:
    # logits = spatial mean of a 3-channel conv output a: dL/da = dz / (H W), so
    # sum_hw a dL/da = z dz, and each channel's value is spread over its 3*3*3 weights.
    class ConvMean(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(x).mean(dim=(2, 3))

    torch.manual_seed(4)
    net = ConvMean().double()
    batch = _batch(5, (3, 4, 4), dtype=torch.float64)
    with torch.no_grad():
        z = net(batch.inputs)
        dz = (torch.softmax(z, 1) - F.one_hot(batch.targets, 3).double()) / batch.size
    expected = float(27 * (0.5 * (z * dz).pow(2).mean(0)).sum())
    assert fisher(net, batch) == pytest.approx(expected, rel=1e-12)


# ----------------------------------------------------------------------------- against autograd


def test_plain_and_snip_equal_direct_autograd_sums_on_a_conv_net_with_bn() -> None:
    batch = _image_batch()
    pairs = _autograd_grads(_conv_net(), batch)
    assert plain(_conv_net(), batch) == pytest.approx(float(sum((g * w).sum() for w, g in pairs)), rel=1e-5)
    assert snip(_conv_net(), batch) == pytest.approx(float(sum((g * w).abs().sum() for w, g in pairs)), rel=1e-5)


def test_snip_equals_the_references_weight_mask_gradient() -> None:
    # zero-cost-nas/NASLib: forward with W * c, c = 1, score |dL/dc|.
    batch = _image_batch()
    net = _conv_net()
    names = [n for n, m in net.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    masks = {n: torch.ones_like(net.get_submodule(n).weight, requires_grad=True) for n in names}
    params = {k: v.detach() for k, v in net.named_parameters()}
    for n in names:
        params[f"{n}.weight"] = params[f"{n}.weight"] * masks[n]
    loss = F.cross_entropy(torch.func.functional_call(net, params, (batch.inputs,)), batch.targets)
    grads = torch.autograd.grad(loss, [masks[n] for n in names])
    expected = float(sum(g.abs().sum() for g in grads))
    assert snip(_conv_net(), batch) == pytest.approx(expected, rel=1e-5)


def test_snip_bounds_plain() -> None:
    batch = _image_batch()
    assert snip(_conv_net(), batch) >= abs(plain(_conv_net(), batch)) > 0


def test_grad_norm_is_a_sum_of_per_layer_norms_not_one_global_norm() -> None:
    batch = _image_batch()
    norms = [g.norm().item() for _, g in _autograd_grads(_conv_net(), batch)]
    value = grad_norm(_conv_net(), batch)
    assert value == pytest.approx(sum(norms), rel=1e-5)
    assert value > math.sqrt(sum(n * n for n in norms)) * 1.01


def test_gradient_proxies_are_invariant_to_duplicating_the_batch() -> None:
    # Mean loss and BN batch statistics are unchanged when every sample appears twice, so is
    # every gradient, hence every proxy (a sum over samples instead of a mean would double).
    batch = _image_batch()
    doubled = ProxyBatch(torch.cat([batch.inputs] * 2), torch.cat([batch.targets] * 2), 3)
    for fn in (grad_norm, snip, plain, fisher, grasp):
        once, twice = fn(_conv_net(), batch), fn(_conv_net(), doubled)
        if fn is fisher:  # 1/2 mean_n (sum_hw a dL/da)^2 with dL/da halved per copy: a quarter
            assert twice == pytest.approx(once / 4, rel=1e-4)
        else:
            assert twice == pytest.approx(once, rel=1e-4), fn.__name__


def test_relu_rescaling_leaves_snip_and_plain_unchanged_and_moves_grad_norm_as_predicted() -> None:
    # f(x) = W2 relu(W1 x) is unchanged by W1 -> c W1, W2 -> W2 / c (c > 0). Then
    # g1 -> g1 / c and g2 -> c g2: every g ⊙ W is invariant, per-layer norms are not.
    def mlp(c: float) -> nn.Sequential:
        torch.manual_seed(5)
        net = nn.Sequential(nn.Linear(4, 6, bias=False), nn.ReLU(), nn.Linear(6, 3)).double()
        with torch.no_grad():
            net[0].weight.mul_(c)
            net[2].weight.div_(c)
        return net

    batch = _batch(8, dtype=torch.float64)
    g1, g2 = (g.norm().item() for _, g in _autograd_grads(mlp(1.0), batch))
    c = 3.0
    assert snip(mlp(c), batch) == pytest.approx(snip(mlp(1.0), batch), rel=1e-12)
    assert plain(mlp(c), batch) == pytest.approx(plain(mlp(1.0), batch), rel=1e-10)
    assert grad_norm(mlp(c), batch) == pytest.approx(g1 / c + c * g2, rel=1e-12)
    assert grad_norm(mlp(c), batch) != pytest.approx(grad_norm(mlp(1.0), batch), rel=1e-3)


# ----------------------------------------------------------------------------- grasp


@pytest.mark.parametrize("temperature", [1.0, 2.5])
def test_grasp_equals_minus_w_dot_explicit_hessian_times_gradient(temperature: float) -> None:
    torch.manual_seed(6)
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    batch = _batch(9, (3,), 2, dtype=torch.float64)
    w1, w2 = net[0].weight.detach().clone(), net[2].weight.detach().clone()
    b1, b2 = net[0].bias.detach(), net[2].bias.detach()

    def loss(theta: torch.Tensor) -> torch.Tensor:
        v1, v2 = theta[: w1.numel()].view_as(w1), theta[w1.numel():].view_as(w2)
        logits = torch.tanh(batch.inputs @ v1.T + b1) @ v2.T + b2
        return F.cross_entropy(logits / temperature, batch.targets)

    theta = torch.cat([w1.flatten(), w2.flatten()])
    hessian = torch.autograd.functional.hessian(loss, theta)
    gradient = torch.autograd.functional.jacobian(loss, theta)
    expected = float(-(theta * (hessian @ gradient)).sum())
    assert grasp(net, batch, temperature=temperature) == pytest.approx(expected, rel=1e-10)


def test_grasp_default_temperature_is_one_as_in_the_references() -> None:
    net = _conv_net()
    batch = _image_batch()
    spec = get_proxy("grasp")
    assert dict(spec.defaults) == {"temperature": 1.0}
    assert spec(copy.deepcopy(net), batch) == grasp(copy.deepcopy(net), batch, temperature=1.0)


# ----------------------------------------------------------------------------- robustness


class WithDeadBranch(nn.Module):
    """ConvNet plus a Linear whose output is computed and thrown away (no gradient reaches it)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = _conv_net()
        self.dead = nn.Linear(3 * 6 * 6, 7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.dead(x.flatten(1))
        return self.net(x)


@pytest.mark.parametrize("name", GRADIENT)
def test_layers_off_the_loss_path_contribute_zero(name: str) -> None:
    batch = _image_batch()
    assert get_proxy(name)(WithDeadBranch(), batch) == pytest.approx(get_proxy(name)(_conv_net(), batch), rel=1e-6)


@pytest.mark.parametrize("name", GRADIENT)
def test_same_network_and_batch_give_the_identical_float(name: str) -> None:
    batch = _image_batch()
    net = _conv_net()
    first = get_proxy(name)(copy.deepcopy(net), batch)
    assert isinstance(first, float) and math.isfinite(first)
    assert get_proxy(name)(copy.deepcopy(net), batch) == first


def test_fisher_raises_when_a_layer_output_is_overwritten_in_place() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(inplace=True), nn.Flatten(), nn.LazyLinear(3))
    batch = _image_batch()
    net(batch.inputs)  # materialise the lazy layer
    with pytest.raises(RuntimeError, match="in place"):
        fisher(net, batch)


def test_a_network_that_does_not_return_logits_is_an_error() -> None:
    class Pair(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.head = nn.Linear(4, 3)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return x, self.head(x)

    with pytest.raises(TypeError, match="logits"):
        grad_norm(Pair(), _batch())


# ----------------------------------------------------------------------------- registry


def test_gradient_proxies_are_registered_with_metadata() -> None:
    assert set(GRADIENT) == set(list_proxies(family="gradient"))
    for name in GRADIENT:
        spec = get_proxy(name)
        assert spec.higher_is_better is True, name
        assert spec.needs == frozenset({"batch", "labels"}), name
        assert spec.passes == (("loss_backward", "hvp") if name == "grasp" else ("loss_backward",)), name
        assert "arXiv:" in spec.paper and spec.description, name
        assert spec.fn.__doc__ and ("measures/" in spec.fn.__doc__ or "reference" in spec.fn.__doc__), name


# ----------------------------------------------------------------------------- NB201


def _nb201(naslib_key: str) -> nn.Module:
    torch.manual_seed(0)
    return get_space("nb201").build(from_naslib_tuple(naslib_key), num_classes=10).train()


@pytest.fixture(scope="module")
def nb201_batch() -> ProxyBatch:
    g = torch.Generator().manual_seed(2)
    return ProxyBatch(torch.randn(4, 3, 32, 32, generator=g), torch.randint(0, 10, (4,), generator=g), 10)


def test_nb201_network_scores_are_finite_deterministic_and_ordered(nb201_batch: ProxyBatch) -> None:
    net = _nb201("(0, 2, 3, 2, 3, 1)")
    scores = {name: get_proxy(name)(copy.deepcopy(net), nb201_batch) for name in GRADIENT}
    assert all(math.isfinite(v) for v in scores.values()), scores
    assert scores["snip"] >= abs(scores["plain"])
    assert scores["grad_norm"] > 0 and scores["fisher"] > 0
    assert get_proxy("grasp")(copy.deepcopy(net), nb201_batch) == scores["grasp"]


def test_nb201_cell_of_only_none_edges_leaves_only_the_classifier_bias(nb201_batch: ProxyBatch) -> None:
    # Every cell outputs zeros, so the pooled features are 0 and the logits equal the
    # classifier's bias: no weight gets a non-zero gradient, and fisher sees only the head,
    # whose output a = b has dL/da = (softmax(b) - y) / N, spread over its 64 input weights.
    net = _nb201("(1, 1, 1, 1, 1, 1)")
    for name in ("grad_norm", "snip", "plain", "grasp"):
        assert get_proxy(name)(copy.deepcopy(net), nb201_batch) == 0.0, name
    bias = net.get_submodule(_head_name(net)).bias.detach()
    a = bias.expand(nb201_batch.size, -1)
    da = (torch.softmax(a, 1) - F.one_hot(nb201_batch.targets, 10).float()) / nb201_batch.size
    expected = float(64 * (0.5 * (a * da).pow(2).mean(0)).sum())
    assert fisher(copy.deepcopy(net), nb201_batch) == pytest.approx(expected, rel=1e-5)


def _head_name(net: nn.Module) -> str:
    (name,) = [n for n, m in net.named_modules() if isinstance(m, nn.Linear)]
    return name


@pytest.mark.parametrize("name", ["grad_norm", "snip", "fisher"])
def test_nb201_ranking_agrees_with_the_suite_zero_reference(name: str, data_dir: Path, reference_json: Path) -> None:
    # Eight architectures spread evenly over the reference's range of this proxy, scored on a
    # real CIFAR-10 batch (NASLib normalisation) with another initialisation and batch than the
    # reference's: the ranking must survive that (rho ~ .98 on 60 random archs, .95-1 here).
    # grasp and plain are too noisy across draws for 8 architectures; grasp's sign is pinned
    # by the explicit-Hessian test above.
    preset = get_preset("suite-zero")
    source = load_images("cifar10", "train", data_dir=data_dir, download=False)
    batch = draw_proxy_batch(source, batch_size=8, seed=0, mean=preset.mean, std=preset.std)
    entries = json.loads(reference_json.read_text())["cifar10"]
    keys = sorted(entries, key=lambda k: entries[k][name]["score"])
    keys = keys[:: len(keys) // 8][:8]
    ours = [get_proxy(name)(_nb201(key), batch) for key in keys]
    rho = spearmanr(ours, [entries[k][name]["score"] for k in keys]).statistic
    assert rho >= 0.85, (name, rho, ours)
