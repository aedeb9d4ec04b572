"""SAM / ASAM optimizers, the BatchNorm freeze, and the training and evaluation loops."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from proxybench.batch import ProxyBatch
from proxybench.data.sources import ImageSource
from proxybench.errors import InvalidSettingError
from proxybench.train import (
    ASAM,
    SAM,
    ImageBatches,
    evaluate,
    frozen_bn_stats,
    held_out_batch,
    holdout_split,
    samsung_unscaled,
    train,
)

LR, MOMENTUM, WD = 0.1, 0.9, 5e-4


def tiny_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3),
    ).double()
    with torch.no_grad():  # BN beta starts at 0 and gamma at 1: make every T_w entry distinct and nonzero
        net[1].weight.uniform_(0.5, 1.5)
        net[1].bias.uniform_(-0.5, 0.5)
    return net.train()


def data(seed: int = 1, n: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 5, 5, generator=g, dtype=torch.float64), torch.randint(0, 3, (n,), generator=g)


def params_of(net: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in net.parameters()]


def grads_at(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    net.zero_grad()
    F.cross_entropy(net(x), y).backward()
    return [p.grad.detach().clone() for p in net.parameters()]


def sgd(net: nn.Module) -> torch.optim.SGD:
    return torch.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WD)


def test_sam_first_step_moves_by_rho_along_the_gradient():
    net = tiny_net()
    x, y = data()
    w0 = params_of(net)
    g = grads_at(net, x, y)
    opt = SAM(sgd(net), rho=0.05)
    opt.first_step()
    e = [p.detach() - w for p, w in zip(net.parameters(), w0)]
    norm = torch.sqrt(sum((d ** 2).sum() for d in e))
    assert norm.item() == pytest.approx(0.05, rel=1e-9)
    gnorm = torch.sqrt(sum((gi ** 2).sum() for gi in g))
    for d, gi in zip(e, g):  # e = rho g / ||g||
        torch.testing.assert_close(d, 0.05 * gi / gnorm, rtol=1e-7, atol=1e-15)
    assert all(p.grad is None for p in net.parameters())  # zero_grad for the perturbed pass


@pytest.mark.parametrize("eta", [0.0, 0.01])
def test_asam_first_step_has_radius_rho_in_the_adaptive_norm(eta):
    net = tiny_net()
    x, y = data()
    w0 = params_of(net)
    g = grads_at(net, x, y)
    opt = ASAM(sgd(net), rho=2.0, eta=eta)
    t = [w.abs() + eta for w in w0]
    opt.first_step()
    e = [p.detach() - w for p, w in zip(net.parameters(), w0)]
    adaptive = torch.sqrt(sum(((d / ti) ** 2).sum() for d, ti in zip(e, t)))
    assert adaptive.item() == pytest.approx(2.0, rel=1e-9)
    tg = torch.sqrt(sum(((ti * gi) ** 2).sum() for ti, gi in zip(t, g)))
    for d, ti, gi in zip(e, t, g):  # e = rho T^2 g / ||T g||
        torch.testing.assert_close(d, 2.0 * ti ** 2 * gi / tg, rtol=1e-7, atol=1e-15)


def test_asam_samsung_reading_leaves_biases_unscaled():
    net = tiny_net()
    x, y = data()
    w0 = params_of(net)
    g = grads_at(net, x, y)
    unscaled = samsung_unscaled(net)
    names = [n for n, _ in net.named_parameters()]
    assert [n for n, p in net.named_parameters() if any(p is q for q in unscaled)] == [n for n in names if "bias" in n]
    opt = ASAM(sgd(net), rho=0.5, eta=0.01, unscaled=unscaled)
    t = [torch.ones_like(w) if "bias" in n else w.abs() + 0.01 for n, w in zip(names, w0)]
    opt.first_step()
    e = [p.detach() - w for p, w in zip(net.parameters(), w0)]
    assert torch.sqrt(sum(((d / ti) ** 2).sum() for d, ti in zip(e, t))).item() == pytest.approx(0.5, rel=1e-9)
    tg = torch.sqrt(sum(((ti * gi) ** 2).sum() for ti, gi in zip(t, g)))
    for d, ti, gi in zip(e, t, g):
        torch.testing.assert_close(d, 0.5 * ti ** 2 * gi / tg, rtol=1e-7, atol=1e-15)


@pytest.mark.parametrize("cls", [SAM, ASAM])
def test_second_step_is_one_sgd_step_from_w_with_the_perturbed_gradient(cls):
    net = tiny_net()
    x, y = data()
    w0 = params_of(net)
    grads_at(net, x, y)
    opt = cls(sgd(net))
    opt.first_step()
    perturbed = params_of(net)
    # The gradient at w + e, computed on an independent copy (train mode, as in the step).
    twin = copy.deepcopy(net)
    g_pert = grads_at(twin, x, y)
    F.cross_entropy(net(x), y).backward()
    opt.second_step()
    # (the conv bias feeds a BatchNorm: zero gradient, so it is not perturbed)
    assert sum(not torch.equal(w, wp) for w, wp in zip(w0, perturbed)) == len(w0) - 1
    for p, w, gp in zip(net.parameters(), w0, g_pert):
        # first SGD step with momentum: buffer = g' + wd * w; w <- w - lr * buffer
        torch.testing.assert_close(p.detach(), w - LR * (gp + WD * w), rtol=0, atol=1e-14)


def test_second_step_restores_w_exactly_before_the_base_step():
    net = tiny_net()
    x, y = data()
    w0 = params_of(net)
    grads_at(net, x, y)
    opt = ASAM(torch.optim.SGD(net.parameters(), lr=0.0))
    opt.first_step()
    F.cross_entropy(net(x), y).backward()
    opt.second_step()
    assert all(torch.equal(p.detach(), w) for p, w in zip(net.parameters(), w0))  # bit-exact, lr 0


def test_step_with_closure_equals_the_two_steps():
    x, y = data()
    nets = [tiny_net(), tiny_net()]

    def closure():
        loss = F.cross_entropy(nets[0](x), y)
        loss.backward()
        return loss

    a = ASAM(sgd(nets[0]), model=nets[0])
    loss = a.step(closure)
    assert loss.item() == pytest.approx(F.cross_entropy(tiny_net()(x), y).item())

    b = ASAM(sgd(nets[1]))
    nets[1].zero_grad()
    F.cross_entropy(nets[1](x), y).backward()
    b.first_step()
    with frozen_bn_stats(nets[1]):
        F.cross_entropy(nets[1](x), y).backward()
    b.second_step()
    for p, q in zip(nets[0].parameters(), nets[1].parameters()):
        assert torch.equal(p, q)
    for k, v in nets[0].state_dict().items():
        assert torch.equal(v, nets[1].state_dict()[k]), k


def test_first_step_twice_raises_and_rho_is_checked():
    net = tiny_net()
    x, y = data()
    grads_at(net, x, y)
    opt = SAM(sgd(net))
    opt.first_step(zero_grad=False)
    with pytest.raises(RuntimeError, match="second_step"):
        opt.first_step()
    with pytest.raises(InvalidSettingError, match="rho"):
        SAM(sgd(net), rho=-1)
    with pytest.raises(InvalidSettingError, match="eta"):
        ASAM(sgd(net), eta=-0.1)
    assert SAM(sgd(net)).rho == 0.05 and ASAM(sgd(net)).rho == 2.0


def test_frozen_bn_stats_leaves_running_statistics_unchanged():
    net = tiny_net()
    x, y = data()
    bn = net[1]
    before = {k: v.clone() for k, v in bn.state_dict().items() if "running" in k or "num_batches" in k}
    with frozen_bn_stats(net):
        F.cross_entropy(net(x + 3.0), y).backward()  # a forward in train mode would move them
        assert not torch.equal(bn.running_mean, before["running_mean"])
    for k, v in before.items():
        assert torch.equal(bn.state_dict()[k], v), k
    assert bn.weight.grad is not None  # the pass itself still ran and back-propagated


def test_sam_update_moves_bn_statistics_only_by_the_clean_pass():
    x, y = data()
    reference = tiny_net()
    reference(x)  # one clean forward in train mode
    net = tiny_net()
    opt = ASAM(sgd(net), model=net)

    def closure():
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        return loss

    opt.step(closure)
    for k in ("running_mean", "running_var", "num_batches_tracked"):
        assert torch.equal(getattr(net[1], k), getattr(reference[1], k)), k


# ----------------------------------------------------------------------------- loop


def fake_source(n: int = 40, size: int = 8, classes: int = 3) -> ImageSource:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)
    labels = np.arange(n) % classes
    # make the task learnable: brighten the red channel by class
    pixels[..., 0] = (labels[:, None, None] * 100).astype(np.uint8)
    return ImageSource(dataset="cifar10", split="train", labels=labels, num_classes=classes,
                       classes=[str(i) for i in range(classes)], origin="memory", layout="torchvision",
                       fetch=lambda idx: list(pixels[idx]))


def float_net(classes: int = 3) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, classes))


MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


def test_holdout_split_keeps_the_last_images_out():
    split = holdout_split(40, 8)
    assert split.train.tolist() == list(range(32)) and split.held_out.tolist() == list(range(32, 40))
    assert not set(split.train) & set(split.held_out)
    with pytest.raises(InvalidSettingError):
        holdout_split(10, 10)


def test_image_batches_are_deterministic_and_cover_only_their_indices():
    source = fake_source()
    split = holdout_split(len(source), 8)
    a = ImageBatches(source, split.train, batch_size=8, mean=MEAN, std=STD, augment=True, seed=5)
    b = ImageBatches(source, split.train, batch_size=8, mean=MEAN, std=STD, augment=True, seed=5)
    assert len(a) == 4
    for (xa, ya), (xb, yb) in zip(a.epoch(1), b.epoch(1)):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    first = [y for _, y in a.epoch(0)]
    second = [y for _, y in a.epoch(1)]
    assert any(not torch.equal(u, v) for u, v in zip(first, second))  # a new order each epoch
    plain = ImageBatches(source, split.held_out, batch_size=3, mean=MEAN, std=STD, shuffle=False, drop_last=False)
    assert [y.numel() for _, y in plain] == [3, 3, 2]
    assert torch.cat([y for _, y in plain]).tolist() == source.labels[32:].tolist()


@pytest.mark.parametrize("optimizer", ["sgd", "sam", "asam"])
def test_train_lowers_the_loss_and_is_deterministic(optimizer):
    source = fake_source()
    split = holdout_split(len(source), 8)
    batches = ImageBatches(source, split.train, batch_size=8, mean=MEAN, std=STD, augment=False, seed=0)
    held = held_out_batch(source, split, 8, mean=MEAN, std=STD)
    results = []
    for _ in range(2):
        net = float_net()
        err0, loss0 = evaluate(net, [held])
        result = train(net, batches, epochs=6, optimizer=optimizer, lr=0.05, seed=0)
        err1, loss1 = evaluate(net, [held])
        results.append((result, [p.detach().clone() for p in net.parameters()], (err1, loss1)))
        assert result.steps == 24 and result.epochs == pytest.approx(6.0)
        assert loss1 < loss0
        assert 0.0 <= err1 <= 100.0
    (r1, w1, m1), (r2, w2, m2) = results
    assert m1 == m2 and r1.final_loss == r2.final_loss
    assert all(torch.equal(a, b) for a, b in zip(w1, w2))
    assert r1.settings["rho"] == {"sgd": None, "sam": 0.05, "asam": 2.0}[optimizer]


def test_train_accepts_steps_and_plain_batches_and_checks_settings():
    x, y = data()
    batches = [(x.float(), y), ProxyBatch(x.float(), y, 3)]
    net = float_net()
    result = train(net, batches, steps=3, schedule="constant")
    assert result.steps == 3
    with pytest.raises(InvalidSettingError, match="exactly one"):
        train(net, batches, epochs=1, steps=1)
    with pytest.raises(InvalidSettingError, match="schedule"):
        train(net, batches, steps=1, schedule="step")
    with pytest.raises(InvalidSettingError, match="optimizer"):
        train(net, batches, steps=1, optimizer="adam")
    with pytest.raises(InvalidSettingError, match="rho"):
        train(net, batches, steps=1, optimizer="sgd", rho=0.1)


def test_evaluate_counts_errors_in_percent_and_restores_the_mode():
    net = nn.Linear(2, 2)
    with torch.no_grad():
        net.weight.copy_(torch.eye(2))
        net.bias.zero_()
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([0, 1, 1, 1])
    net.train()
    err, loss = evaluate(net, [(x[:2], y[:2]), (x[2:], y[2:])])
    assert err == 25.0
    assert loss == pytest.approx(F.cross_entropy(net(x), y).item())
    assert net.training
