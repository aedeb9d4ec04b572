"""GeNAS flatness + depth: the formula, the cumulative noise, determinism, and a scoring run on supernet weights."""

from __future__ import annotations

import importlib
import json

import duckdb
import pytest
import torch
from torch import nn

from proxybench.batch import ProxyBatch
from proxybench.errors import InvalidSettingError
from proxybench.proxies import get_proxy
from proxybench.scoring import score_architectures
from proxybench.spaces import get_space
from proxybench.store import read_scores
from proxybench.weights.supernet import train_supernet

G = importlib.import_module("proxybench.proxies.genas")
ARCHS = [
    "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|",
    "|avg_pool_3x3~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|none~1|nor_conv_1x1~2|",
]


class LinearLoss(nn.Module):
    """One scalar parameter p (0 at rest); the cross-entropy for label 0 is exactly a + b·p."""

    def __init__(self, a: float, b: float) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.zeros((), dtype=torch.float64))
        self.a, self.b = a, b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = torch.log(torch.expm1(self.a + self.b * self.p))  # log(1 + exp(d)) = a + b p
        return torch.stack([torch.zeros_like(d), d]).expand(x.shape[0], 2)


def _batch(n: int = 4) -> ProxyBatch:
    return ProxyBatch(torch.zeros(n, 3, 2, 2), torch.zeros(n, dtype=torch.int64), 2)


@pytest.fixture
def unit_noise(monkeypatch):
    """Every noise draw is +std exactly, so the cumulative parameter after level t is σ_t."""
    monkeypatch.setattr(G, "_normal", lambda shape, std, generator, dtype: torch.full(shape, std, dtype=dtype))


def test_flatness_term_of_an_exactly_linear_loss(unit_noise):
    # α = 0, L(σ) = 1 + 3σ: the flatness sum is |ΔL/Δσ| = 3.
    score = G.genas(LinearLoss(1.0, 3.0), _batch(), sigmas=(0.01, 0.03), alpha=0.0, eval_images=None)
    assert score == pytest.approx(1 / (3.0 + 1e-5), rel=1e-9)


def test_depth_term_alone(unit_noise):
    # b = 0: the loss is 1.5 at every level, so only α|L_1/σ_1| = 0.5 · 1.5 / 0.02 remains.
    score = G.genas(LinearLoss(1.5, 0.0), _batch(), sigmas=(0.02, 0.05), alpha=0.5, eval_images=None)
    assert score == pytest.approx(1 / (0.5 * 1.5 / 0.02 + 1e-5), rel=1e-9)


def test_both_terms_and_the_printed_form(unit_noise):
    net, batch = LinearLoss(1.0, 3.0), _batch()
    sig = (0.01, 0.03, 0.04)
    code = G.genas(net, batch, sigmas=sig, alpha=1.0, eval_images=None)
    assert code == pytest.approx(1 / (1.03 / 0.01 + 3 + 3 + 1e-5), rel=1e-9)
    paper = G.genas(net, batch, sigmas=sig, alpha=2.0, eval_images=None, form="paper")
    assert paper == pytest.approx(3 + 3 + 2 * 0.01 / 1.03, rel=1e-9)
    assert G.genas_value([1.0, 1.0], [0.1, 0.2], alpha=0.0, form="paper") == 0.0


def test_noise_increments_have_the_code_std():
    """Level t adds N(0, (σ_t − σ_{t−1})²) to every parameter (clovaai/GeNAS tester_wlm.py)."""
    sigmas = (2e-3, 1e-2, 2e-2)
    assert G.noise_increments(sigmas) == pytest.approx((2e-3, 8e-3, 1e-2))
    net = nn.Linear(1000, 1000, bias=True)
    with torch.no_grad():
        net.weight.zero_()
        net.bias.zero_()
    before = [p.detach().clone() for p in net.parameters()]
    snaps = []
    G.genas_losses(net, torch.randn(2, 1000), torch.zeros(2, dtype=torch.int64), sigmas=sigmas,
                   generator=torch.Generator().manual_seed(0),
                   on_level=lambda t, m: snaps.append(torch.cat([p.detach().flatten().clone() for p in m.parameters()])))
    assert len(snaps) == 3
    previous = torch.zeros_like(snaps[0])
    for snap, expected in zip(snaps, (2e-3, 8e-3, 1e-2)):
        step = snap - previous
        assert step.mean().abs().item() < 5 * expected / 1000  # 1,001,000 draws: mean ~ std / 1000
        assert step.std().item() == pytest.approx(expected, rel=0.01)
        previous = snap
    total = (2e-3**2 + 8e-3**2 + 1e-2**2) ** 0.5  # 1.30e-2, not σ_3 = 2e-2
    assert snaps[-1].std().item() == pytest.approx(total, rel=0.01)
    for p, w in zip(net.parameters(), before):  # restored
        assert torch.equal(p, w)


def test_deterministic_under_the_seed_and_restores_the_network():
    space = get_space("nb201")
    torch.manual_seed(0)
    net = space.build(ARCHS[0], 10)
    net.train()
    g = torch.Generator().manual_seed(1)
    batch = ProxyBatch(torch.randn(8, 3, 32, 32, generator=g), torch.randint(0, 10, (8,), generator=g), 10)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    scores = []
    for seed in (0, 0, 1):
        torch.manual_seed(seed)
        scores.append(G.genas(net, batch, eval_images=8))
    assert scores[0] == scores[1] != scores[2]
    assert net.training
    for key, value in net.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_bad_settings_say_what_to_fix():
    net, batch = LinearLoss(1.0, 1.0), _batch()
    with pytest.raises(InvalidSettingError, match="strictly increasing"):
        G.genas(net, batch, sigmas=(0.02, 0.01), eval_images=None)
    with pytest.raises(InvalidSettingError, match="strictly increasing"):
        G.genas(net, batch, sigmas=(), eval_images=None)
    with pytest.raises(InvalidSettingError, match="unknown GeNAS form 'printed'"):
        G.genas(net, batch, form="printed", eval_images=None)
    with pytest.raises(InvalidSettingError, match="genas evaluates on 16 images but the batch holds 4"):
        G.genas(net, batch, eval_images=16)
    with pytest.raises(InvalidSettingError, match="alpha must be a number >= 0"):
        G.genas(net, batch, alpha=-1, eval_images=None)


def test_registered_with_recorded_settings():
    spec = get_proxy("genas")
    assert spec.higher_is_better and spec.needs == {"batch", "labels", "trained_weights"}
    assert spec.paper.startswith("arXiv:2305.08611")
    settings = json.loads(json.dumps(spec.settings()))
    assert settings == {"sigmas": [2e-3, 1e-2, 2e-2], "alpha": 1.0, "eval_images": 1280, "form": "code",
                        "chunk_size": 256}


def test_scored_on_supernet_weights_through_the_engine(tmp_path, data_dir):
    torch.set_num_threads(1)
    checkpoint = tmp_path / "tiny.pt"
    train_supernet(checkpoint, data_dir=data_dir, steps=2, batch_size=8, holdout=64)
    spec = f"supernet:{checkpoint},recalibrate=2"
    kwargs = dict(weights=spec, proxies="genas", data_dir=data_dir, batch_size=8, progress=False, threads=1)
    for alpha in (1.0, 0.0):
        score_architectures(ARCHS, out=tmp_path / "scores", proxy_settings={"genas": {"eval_images": 16,
                                                                                       "alpha": alpha}}, **kwargs)
    rows = read_scores(tmp_path / "scores").to_pylist()
    assert len(rows) == 4 and {r["status"] for r in rows} == {"ok"}, rows
    assert {r["batch_id"] for r in rows} == {"held-out:16"}
    assert all(r["weights"].startswith("supernet:tiny.pt@") for r in rows)
    assert all(r["score"] > 0 for r in rows)
    assert len({r["settings_hash"] for r in rows}) == 2
    settings = json.loads(rows[0]["settings"])
    assert settings["weights_settings"]["supernet"]["steps"] == 2
    # the keys tables/genas-ablation.sql reads
    with duckdb.connect() as con:
        found = con.execute(
            "SELECT DISTINCT json_extract_string(s, '$.proxy_settings.sigmas'), "
            "json_extract_string(s, '$.proxy_settings.alpha') FROM (SELECT unnest(?) AS s) ORDER BY 2",
            [[r["settings"] for r in rows]]).fetchall()
    assert found == [("[0.002,0.01,0.02]", "0.0"), ("[0.002,0.01,0.02]", "1.0")]
    # the same scores again: resumed, nothing recomputed
    summary = score_architectures(ARCHS, out=tmp_path / "scores", proxy_settings={"genas": {"eval_images": 16}},
                                  **kwargs)
    assert summary.archs_skipped == 2
