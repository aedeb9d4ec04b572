"""FlatNAS: the flatnas_r proxy and the search objectives F_AR, gamma, F_CP."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from proxybench.batch import ProxyBatch
from proxybench.errors import InvalidSettingError
from proxybench.proxies import get_proxy, list_proxies, resolve_proxies
from proxybench.proxies.flatness import flatnas_r, noise_generator
from proxybench.search.objectives import f_ar, f_cp, gamma_from_archive
from proxybench.spaces.nb201 import parse_arch
from proxybench.spaces.nb201_net import NB201Network

ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def trained_like_net() -> NB201Network:
    """A tiny NB201 net whose BN running statistics and affine parameters are not the defaults."""
    torch.manual_seed(0)
    net = NB201Network(parse_arch(ARCH), 10, channels=4, cells_per_stage=1)
    g = torch.Generator().manual_seed(1)
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.randn(16, 3, 16, 16, generator=g))
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.uniform_(-0.2, 0.2, generator=g)
    return net


def eval_batch(n: int = 64) -> ProxyBatch:
    g = torch.Generator().manual_seed(2)
    return ProxyBatch(torch.randn(n, 3, 16, 16, generator=g), torch.randint(0, 10, (n,), generator=g), 10)


def reference_r(net, batch, sigma, draws, absolute, generator):
    """CNAS robustness/utility/perturb.py, transcribed: deepcopy, p += sigma * p * z, validate."""

    def error(model):
        model.eval()
        with torch.no_grad():
            return 100.0 * float((model(batch.inputs).argmax(1) != batch.targets).sum()) / batch.size

    e0 = error(copy.deepcopy(net))
    out = []
    for _ in range(draws):
        perturbed = copy.deepcopy(net)
        z = [torch.randn(p.shape, generator=generator, dtype=p.dtype) * p.data for p in perturbed.parameters()]
        for p, zi in zip(perturbed.parameters(), z):
            p.data += sigma * zi
        d = error(perturbed) - e0
        out.append(abs(d) if absolute else d)
    return sum(out) / len(out)


def test_registration():
    spec = get_proxy("flatnas_r")
    assert spec.higher_is_better is False
    assert spec.needs == {"batch", "labels", "trained_weights"}
    assert spec.family == "flatness" and "2402.19102" in spec.paper
    assert dict(spec.defaults) == {"sigma": 0.05, "draws": 20, "eval_images": 1280, "absolute": False,
                                   "chunk_size": 256}
    assert "flatnas_r" in list_proxies(family="flatness")
    assert "flatnas_r" not in [s.name for s in resolve_proxies("all")]  # not zero-cost


@pytest.mark.parametrize("absolute", [False, True])
def test_matches_the_reference_code_draw_for_draw(absolute):
    net, batch = trained_like_net(), eval_batch()
    torch.manual_seed(7)
    ours = flatnas_r(net, batch, sigma=0.3, draws=4, eval_images=None, absolute=absolute, chunk_size=16)
    torch.manual_seed(7)
    theirs = reference_r(net, batch, 0.3, 4, absolute, noise_generator())
    assert ours == theirs
    assert ours != 0.0  # sigma 0.3 does change predictions of this network


def test_deterministic_under_the_engine_seed_and_restores_the_network():
    net, batch = trained_like_net(), eval_batch()
    state = {k: v.clone() for k, v in net.state_dict().items()}
    net.train()
    torch.manual_seed(3)
    a = flatnas_r(net, batch, sigma=0.2, draws=3, eval_images=64)
    torch.manual_seed(3)
    b = flatnas_r(net, batch, sigma=0.2, draws=3, eval_images=64)
    assert a == b
    assert net.training  # mode restored
    for k, v in net.state_dict().items():  # parameters and BN buffers untouched
        assert torch.equal(v, state[k]), k


def test_zero_noise_gives_zero_and_absolute_bounds_signed():
    net, batch = trained_like_net(), eval_batch()
    assert flatnas_r(net, batch, sigma=0.0, draws=2, eval_images=None) == 0.0
    torch.manual_seed(0)
    signed = flatnas_r(net, batch, sigma=0.5, draws=5, eval_images=None)
    torch.manual_seed(0)
    absolute = flatnas_r(net, batch, sigma=0.5, draws=5, eval_images=None, absolute=True)
    assert absolute >= abs(signed)
    assert math.isfinite(signed) and -100.0 <= signed <= 100.0


def test_uses_the_first_eval_images_and_rejects_a_small_batch():
    net, batch = trained_like_net(), eval_batch(64)
    head = ProxyBatch(batch.inputs[:32], batch.targets[:32], 10)
    torch.manual_seed(1)
    a = flatnas_r(net, batch, sigma=0.3, draws=2, eval_images=32)
    torch.manual_seed(1)
    b = flatnas_r(net, head, sigma=0.3, draws=2, eval_images=None)
    assert a == b
    with pytest.raises(InvalidSettingError, match="held-out batch of at least 1280"):
        flatnas_r(net, batch)  # default eval_images = 1280
    with pytest.raises(InvalidSettingError, match="sigma"):
        flatnas_r(net, batch, sigma=-0.1, eval_images=None)


def test_perturbs_every_parameter_but_no_buffer():
    """One draw with a huge sigma changes the output through BN beta alone; buffers never move."""
    net, batch = trained_like_net(), eval_batch(8)
    seen = {}
    original = torch.nn.BatchNorm2d.forward

    def spy(self, x):
        seen.setdefault("bias_changed", []).append(not torch.equal(self.bias, self.bias_ref))
        seen.setdefault("buffer_same", []).append(torch.equal(self.running_mean, self.rm_ref))
        return original(self, x)

    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.bias_ref, m.rm_ref = m.bias.detach().clone(), m.running_mean.clone()
    torch.nn.BatchNorm2d.forward = spy
    try:
        flatnas_r(net, batch, sigma=0.1, draws=1, eval_images=None)
    finally:
        torch.nn.BatchNorm2d.forward = original
    n_bn = sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    assert seen["bias_changed"] == [False] * n_bn + [True] * n_bn  # clean pass, then the perturbed one
    assert all(seen["buffer_same"])


# ----------------------------------------------------------------------------- objectives


def test_f_ar_hand_computed():
    assert f_ar(12.0, 3.0, alpha=0.5, gamma=4.0) == 12.0  # 0.5*12 + 4*0.5*3
    assert f_ar(20.0, 1.0, alpha=0.25, gamma=2.0) == 6.5  # 5 + 2*0.75*1
    assert f_ar(20.0, 1.0, alpha=1.0, gamma=2.0) == 20.0
    np.testing.assert_allclose(f_ar([10.0, 30.0], [1.0, 3.0], alpha=0.5, gamma=10.0), [10.0, 30.0])
    with pytest.raises(InvalidSettingError, match="alpha"):
        f_ar(1.0, 1.0, alpha=1.5)


def test_gamma_hand_computed():
    errors, r = [10.0, 20.0, 30.0], [1.0, 2.0, 3.0]
    assert gamma_from_archive(errors, r) == 10.0  # mean error 20 / mean R 2 (the CNAS code)
    assert gamma_from_archive(errors, r, numerator="accuracy") == 40.0  # mean accuracy 80 / 2 (the paper)
    assert gamma_from_archive(np.array([0.1, 0.2, 0.3]), r, numerator="accuracy", scale=1.0) == pytest.approx(0.4)
    assert gamma_from_archive([], []) == 1.0  # initial sample
    assert gamma_from_archive([10.0, float("nan")], [2.0, 5.0]) == 5.0  # failed evaluations dropped
    with pytest.raises(InvalidSettingError, match="length"):
        gamma_from_archive([1.0], [1.0, 2.0])
    with pytest.raises(InvalidSettingError, match="undefined"):
        gamma_from_archive([1.0, 2.0], [0.0, 0.0])
    with pytest.raises(InvalidSettingError, match="numerator"):
        gamma_from_archive([1.0], [1.0], numerator="acc")


def test_archive_refresh_as_the_code_does():
    """Every entry's F_AR is recomputed with gamma from everything evaluated so far."""
    errors, r = np.array([8.0, 12.0, 16.0, 4.0]), np.array([0.5, 1.0, 2.5, 0.0])
    gamma = gamma_from_archive(errors, r)
    assert gamma == pytest.approx(10.0 / 1.0)
    np.testing.assert_allclose(f_ar(errors, r, alpha=0.5, gamma=gamma), [6.5, 11.0, 20.5, 2.0])


def test_f_cp_hand_computed():
    assert f_cp(4.0) == 4.0
    assert f_cp(5.0) == 5.0
    assert f_cp(5.5, p_bar=5.0, penalty=10.0) == 10.5
    assert f_cp(5.2) == pytest.approx(5.2 + 1e10 * 0.2)
    np.testing.assert_allclose(f_cp([1.0, 6.0], p_bar=5.0, penalty=2.0), [1.0, 8.0])
