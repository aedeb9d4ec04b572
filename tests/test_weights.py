"""Weight providers: spec parsing, init, short training with an on-disk cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from proxybench.data.sources import CIFAR10_CLASSES
from proxybench.errors import InvalidSettingError
from proxybench.spaces.nb201 import parse_arch
from proxybench.spaces.nb201_net import NB201Network
from proxybench.weights import (
    InitWeights,
    TrainedWeights,
    get_weights_provider,
    list_weights_providers,
    parse_weights_spec,
)

ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
FAST = "train:asam,steps=3,batch_size=8,holdout=10,lr=0.05"


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    """A tiny CIFAR-10 image folder: 4 random 32x32 PNGs per class."""
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    for name in CIFAR10_CLASSES:
        folder = root / "cifar10" / "train" / name
        folder.mkdir(parents=True)
        for i in range(4):
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return root


def tiny(seed: int = 0) -> NB201Network:
    torch.manual_seed(seed)
    return NB201Network(parse_arch(ARCH), 10, channels=4, cells_per_stage=1)


def weights(net):
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def test_registry_lists_the_providers():
    assert list_weights_providers() == ["init", "supernet", "train"]


def test_init_returns_the_network_unchanged():
    provider = get_weights_provider("init")
    assert isinstance(provider, InitWeights) and get_weights_provider(None).describe() == "init"
    assert provider.name == "init" and provider.settings == {} and provider.describe() == "init"
    net = tiny()
    before = weights(net)
    assert provider.prepare(net, ARCH, "nb201", "cifar10", seed=0) is net
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())
    with pytest.raises(InvalidSettingError, match="no settings"):
        get_weights_provider("init:epochs=1")


def test_train_spec_resolves_every_setting_and_round_trips():
    provider = get_weights_provider("train:epochs=1,optimizer=asam,rho=2,lr=0.1,batch_size=128")
    assert isinstance(provider, TrainedWeights)
    assert provider.settings == {
        "optimizer": "asam", "epochs": 1, "steps": None, "batch_size": 128, "lr": 0.1, "momentum": 0.9,
        "weight_decay": 5e-4, "nesterov": False, "rho": 2.0, "eta": 0.0, "schedule": "cosine", "augment": True,
        "holdout": 5000, "normalization": "proxybench",
    }
    text = provider.describe()
    assert text.startswith("train:asam,epochs=1,batch_size=128,lr=0.1,") and "rho=2.0" in text
    assert get_weights_provider(text).settings == provider.settings
    assert get_weights_provider("train:asam,epochs=1.0").settings == get_weights_provider("train:epochs=1,asam").settings
    sgd = get_weights_provider("train")
    assert sgd.settings["optimizer"] == "sgd" and sgd.settings["rho"] is None and sgd.settings["eta"] is None
    assert "rho" not in sgd.describe()
    assert get_weights_provider("train:sam").settings["rho"] == 0.05
    steps = get_weights_provider("train:steps=10")
    assert steps.settings["steps"] == 10 and steps.settings["epochs"] is None


@pytest.mark.parametrize("spec, message", [
    ("train:epochs=1,lrr=0.1", "did you mean 'lr'"),
    ("train:foo=1", "settings: optimizer, epochs"),
    ("train:optimizer=adam", "unknown optimizer 'adam'"),
    ("train:sgd,rho=0.05", "rho and eta apply"),
    ("train:sam,eta=0.01", "eta applies to optimizer asam"),
    ("train:epochs=1,steps=5", "epochs or steps"),
    ("train:steps=0", "steps must be a positive integer"),
    ("train:batch_size=8,batch_size=9", "given twice"),
    ("train:schedule=step", "unknown schedule"),
    ("train:augment=yes", "augment must be true or false"),
    ("tran", "did you mean 'train'"),
    ("", "empty weights spec"),
])
def test_bad_specs_say_what_to_fix(spec, message):
    with pytest.raises(InvalidSettingError, match=message):
        get_weights_provider(spec)


def test_supernet_needs_an_existing_checkpoint():
    with pytest.raises(InvalidSettingError, match="does not exist; train one with: proxybench supernet train"):
        get_weights_provider("supernet:/models/supernet.pth")


def test_parse_weights_spec():
    assert parse_weights_spec("train:asam,epochs=2,lr=0.05,augment=false,normalization=zc-nas") == (
        "train", "asam,epochs=2,lr=0.05,augment=false,normalization=zc-nas",
        {"epochs": 2, "lr": 0.05, "augment": False, "normalization": "zc-nas", "": ["asam"]})


def test_train_provider_trains_caches_and_reloads(image_dir, tmp_path):
    cache = tmp_path / "cache"
    provider = get_weights_provider(FAST, cache_dir=cache)
    net = tiny()
    init = weights(net)
    out = provider.prepare(net, ARCH, "nb201", "cifar10", data_dir=image_dir, seed=0, device="cpu")
    assert out is net and provider.last["from_cache"] is False and provider.last["steps"] == 3
    assert provider.last["split"] == "train: first 30 of 40; held out: last 10"
    trained = weights(net)
    assert any(not torch.equal(init[k], trained[k]) for k in init)
    files = list(cache.rglob("*"))
    assert [f.suffix for f in files if f.is_file()] == [".pt"]  # no temporary file left behind

    again = get_weights_provider(FAST, cache_dir=cache)
    fresh = tiny()
    again.prepare(fresh, ARCH, "nb201", "cifar10", data_dir=image_dir, seed=0, device="cpu")
    assert again.last["from_cache"] is True
    assert all(torch.equal(trained[k], v) for k, v in fresh.state_dict().items())

    other_seed = get_weights_provider(FAST, cache_dir=cache)
    other_seed.prepare(tiny(1), ARCH, "nb201", "cifar10", data_dir=image_dir, seed=1, device="cpu")
    assert other_seed.last["from_cache"] is False
    assert len([f for f in cache.rglob("*.pt")]) == 2


def test_training_is_deterministic_without_cache(image_dir, tmp_path):
    results = []
    for _ in range(2):
        provider = get_weights_provider(FAST, cache=False, cache_dir=tmp_path / "unused")
        net = provider.prepare(tiny(), ARCH, "nb201", "cifar10", data_dir=image_dir, seed=3)
        results.append(weights(net))
    assert all(torch.equal(results[0][k], results[1][k]) for k in results[0])
    assert not (tmp_path / "unused").exists()


def test_held_out_batch_is_the_images_never_trained_on(image_dir, tmp_path):
    provider = get_weights_provider(FAST, cache_dir=tmp_path)
    batch = provider.held_out_batch("cifar10", image_dir, n_images=6)
    source = provider._source("cifar10", image_dir)
    assert batch.size == 6 and batch.targets.tolist() == source.labels[30:36].tolist()
    assert batch.inputs.shape == (6, 3, 32, 32)
    with pytest.raises(InvalidSettingError, match="held out"):
        provider.held_out_batch("cifar10", image_dir, n_images=11)
