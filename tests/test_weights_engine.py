"""The scoring engine with a weight provider: trained weights reach the proxies and the rows say so."""

from __future__ import annotations

import json

import pytest

from proxybench.errors import ProxybenchError
from proxybench.scoring import score_architectures
from proxybench.store import read_scores

ARCH = "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|"
SPEC = "train:steps=2,batch_size=8,holdout=64,augment=false"


def test_flatnas_r_needs_trained_weights(tmp_path, data_dir):
    with pytest.raises(ProxybenchError, match=r"^proxy 'flatnas_r' needs trained weights; pass --weights train"):
        score_architectures([ARCH], proxies="flatnas_r", data_dir=data_dir, out=tmp_path, progress=False)


def test_trained_weights_are_recorded_and_feed_the_proxies(tmp_path, data_dir, monkeypatch):
    monkeypatch.setenv("PROXYBENCH_CACHE_DIR", str(tmp_path / "cache"))  # trained checkpoints go here
    kwargs = dict(data_dir=data_dir, batch_size=8, progress=False, threads=1,
                  proxy_settings={"flatnas_r": {"eval_images": 16, "draws": 2}})
    score_architectures([ARCH], out=tmp_path / "trained", weights=SPEC, proxies="params,snip,flatnas_r", **kwargs)
    score_architectures([ARCH], out=tmp_path / "init", proxies="params,snip", **kwargs)
    assert list((tmp_path / "cache" / "weights").rglob("*.pt")), "the trained checkpoint is cached"
    trained = {r["proxy"]: r for r in read_scores(tmp_path / "trained").to_pylist()}
    init = {r["proxy"]: r for r in read_scores(tmp_path / "init").to_pylist()}
    assert {r["status"] for r in trained.values()} == {"ok"}, trained
    assert trained["snip"]["weights"].startswith("train:sgd") and init["snip"]["weights"] == "init"
    assert trained["params"]["score"] == init["params"]["score"]  # training does not change the architecture
    assert trained["snip"]["score"] != init["snip"]["score"]  # but it changes the weights the proxies see
    assert trained["snip"]["settings_hash"] != init["snip"]["settings_hash"]
    assert json.loads(trained["snip"]["settings"])["weights_settings"]["steps"] == 2
    assert "weights_settings" not in json.loads(init["snip"]["settings"])
    assert trained["flatnas_r"]["batch_id"] == "held-out:16"
