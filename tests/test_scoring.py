"""The scoring engine on the real NB201 network and the shared CIFAR-10 copy."""

from __future__ import annotations

import math
from types import MappingProxyType

import pytest

from proxybench.proxies import registry
from proxybench.proxies.registry import ProxySpec, get_proxy, list_proxies
from proxybench.scoring import ScoreSummary, score_architectures
from proxybench.spaces import get_space
from proxybench.store import read_scores

ARCHS = [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
]


def fake_proxy(monkeypatch, name, fn, needs=()):
    spec = ProxySpec(name=name, fn=fn, description="test proxy", higher_is_better=True, needs=frozenset(needs),
                     passes=("weights",), paper="test", family="test", defaults=MappingProxyType({}))
    monkeypatch.setitem(registry._REGISTRY, name, spec)


def scores_by_key(out):
    table = read_scores(out).to_pylist()
    return {(r["arch"], r["proxy"]): (r["score"], r["status"]) for r in table}


#: Small sample counts for the proxies whose protocol reads more than the test's 8 images (or
#: draws 64 inputs of its own), so that every proxy runs here in a few seconds.
SMALL = {"swap": {"n_samples": 8, "repeats": 2}, "swap_reg": {"n_samples": 8, "repeats": 2},
         "tenas_ntk": {"n_samples": 2}, "tenas_lr": {"n_samples": 100},
         "vkdnw": {"n_samples": 8}, "vkdnw_single": {"n_samples": 8}}


def test_every_proxy_runs_and_same_seed_gives_identical_scores(tmp_path, data_dir):
    kwargs = dict(proxies="all", data_dir=data_dir, batch_size=8, seed=3, progress=False, proxy_settings=SMALL)
    first = score_architectures(ARCHS, out=tmp_path / "a", **kwargs)
    second = score_architectures(ARCHS, out=tmp_path / "b", **kwargs)
    a, b = scores_by_key(tmp_path / "a"), scores_by_key(tmp_path / "b")
    scored_at_init = [n for n in list_proxies() if "trained_weights" not in get_proxy(n).needs]
    assert first.rows_written == second.rows_written == len(ARCHS) * len(scored_at_init) == len(a)
    for key, (score, status) in a.items():
        if key[1] in FLOAT32_SPECTRUM:
            assert status in ("ok", "nonfinite"), (key, score, status)
        else:
            assert status == "ok", (key, score, status)
        same_nan = math.isnan(score) and math.isnan(b[key][0])
        assert b[key][0] == score or same_nan, key  # bit-identical, not approximately equal


#: AZ-NAS's expressivity terms take logs of eigenvalues computed in float32, as the reference does;
#: on a rank-deficient feature covariance a rounding-negative eigenvalue makes them -inf (an
#: honest, recorded ``nonfinite``; ``eig_dtype="float64"`` avoids it, see proxybench.proxies.aznas).
FLOAT32_SPECTRUM = {"az_expressivity", "az_progressivity"}


def test_other_seed_changes_random_proxies_and_adds_rows(tmp_path, data_dir):
    kwargs = dict(proxies="snip,params", data_dir=data_dir, batch_size=8, progress=False, out=tmp_path)
    score_architectures(ARCHS[:1], seed=0, **kwargs)
    score_architectures(ARCHS[:1], seed=1, **kwargs)
    rows = read_scores(tmp_path).to_pylist()
    assert len(rows) == 4 and len({r["settings_hash"] for r in rows}) == 4
    snips = {r["seed"]: r["score"] for r in rows if r["proxy"] == "snip"}
    params = {r["seed"]: r["score"] for r in rows if r["proxy"] == "params"}
    assert snips[0] != snips[1] and params[0] == params[1]


def test_errors_and_nonfinite_become_statuses(tmp_path, data_dir, monkeypatch):
    def boom(net, batch):
        raise RuntimeError("exploded\nsecond line")

    fake_proxy(monkeypatch, "t_boom", boom)
    fake_proxy(monkeypatch, "t_inf", lambda net, batch: float("inf"))
    fake_proxy(monkeypatch, "t_nan", lambda net, batch: float("nan"))
    summary = score_architectures(ARCHS, proxies="t_boom,t_inf,t_nan,params", data_dir=data_dir, batch_size=4,
                                  out=tmp_path, progress=False)
    assert summary.errors == 2 and summary.nonfinite == 4
    assert "2 errors (t_boom 2), 4 non-finite (t_inf 2, t_nan 2)," in str(summary)
    merged = ScoreSummary(out=tmp_path, run_id="m", archs_requested=0, proxies=summary.proxies)
    merged.merge(summary.to_dict())
    merged.merge(summary.to_dict())
    assert merged.errors_by_proxy == {"t_boom": 4} and merged.nonfinite_by_proxy == {"t_inf": 4, "t_nan": 4}
    rows = {(r["arch"], r["proxy"]): r for r in read_scores(tmp_path).to_pylist()}
    assert rows[(ARCHS[0], "t_boom")]["status"] == "error"
    assert rows[(ARCHS[0], "t_boom")]["error"] == "RuntimeError: exploded"
    assert math.isnan(rows[(ARCHS[0], "t_boom")]["score"])
    assert rows[(ARCHS[0], "t_inf")]["status"] == "nonfinite" and rows[(ARCHS[0], "t_inf")]["score"] == math.inf
    assert rows[(ARCHS[0], "t_nan")]["status"] == "nonfinite"
    assert rows[(ARCHS[1], "params")]["status"] == "ok"


def test_kill_mid_run_loses_only_the_arch_in_flight_and_resume_completes(tmp_path, data_dir, monkeypatch):
    archs = get_space("nb201").sample(4, seed=5)
    calls = {"n": 0}

    def dies_on_third_arch(net, batch):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # what a kill or Ctrl-C looks like to the loop
        return 1.0

    fake_proxy(monkeypatch, "t_fragile", dies_on_third_arch)
    kwargs = dict(proxies="params,t_fragile", data_dir=data_dir, batch_size=4, out=tmp_path, progress=False)
    with pytest.raises(KeyboardInterrupt):
        score_architectures(archs, **kwargs)
    stored = read_scores(tmp_path).to_pylist()
    assert sorted({r["arch"] for r in stored}) == sorted(archs[:2])  # two archs done, the third lost
    summary = score_architectures(archs, **kwargs)
    assert summary.archs_skipped == 2 and summary.archs_scored == 2
    rows = read_scores(tmp_path).to_pylist()
    assert len(rows) == 8 and len({(r["arch"], r["proxy"]) for r in rows}) == 8


def test_rows_carry_provenance(tmp_path, data_dir):
    score_architectures(ARCHS[:1], proxies="synflow,nwot", data_dir=data_dir, batch_size=4, out=tmp_path,
                        progress=False, preset="suite-zero")
    rows = {r["proxy"]: r for r in read_scores(tmp_path).to_pylist()}
    assert rows["synflow"]["dtype"] == "float64" and rows["nwot"]["dtype"] == "float32"
    assert rows["synflow"]["preset"] == "suite-zero" and rows["synflow"]["seed"] == 9000
    assert rows["nwot"]["batch_id"].startswith("arch-")
    assert rows["synflow"]["arch_uid"] == get_space("nb201").uid(ARCHS[0])
    assert rows["synflow"]["weights"] == "init" and rows["synflow"]["device"] == "cpu"
    assert '"no_bn": "none"' in rows["synflow"]["settings"]


def test_resume_after_sigkill_does_not_rescore_journaled_archs(tmp_path, data_dir, monkeypatch):
    """A killed process leaves its journal un-rolled; the next run must count those rows."""
    import proxybench.store.scores as store

    archs = get_space("nb201").sample(3, seed=7)
    kwargs = dict(proxies="params", data_dir=data_dir, batch_size=4, out=tmp_path, progress=False)
    monkeypatch.setattr(store.ScoreWriter, "_roll", lambda self: self._journal and self._journal.close())
    monkeypatch.setattr(store.ScoreWriter, "_write_run_file", lambda self, status, summary=None: None)
    score_architectures(archs[:2], **kwargs)  # "dies" without turning its journal into a part
    monkeypatch.undo()
    assert list((tmp_path / "scores").glob("journal-*")) and not list((tmp_path / "scores").glob("part-*"))
    summary = score_architectures(archs, **kwargs)
    assert summary.archs_skipped == 2 and summary.archs_scored == 1
    rows = read_scores(tmp_path).to_pylist()
    assert sorted(r["arch"] for r in rows) == sorted(archs)


def test_builder_need_gives_a_seeded_builder_of_the_same_architecture(tmp_path, data_dir, monkeypatch):
    import torch

    def thin_params(net, batch, *, builder):
        thin = builder(channels=4, cells_per_stage=1)
        assert thin.training and next(thin.parameters()).device == batch.inputs.device
        return float(sum(p.numel() for p in thin.parameters()) + thin.stem.conv.weight.sum().item())

    fake_proxy(monkeypatch, "t_thin", thin_params, needs=("builder",))
    score_architectures(ARCHS, proxies="t_thin", data_dir=data_dir, batch_size=4, seed=5, progress=False, out=tmp_path)
    got = {arch: score for (arch, _), (score, _) in scores_by_key(tmp_path).items()}
    space = get_space("nb201")
    for arch in ARCHS:
        torch.manual_seed(5)  # the engine reseeds right before the proxy, so the build is reproducible
        thin = space.build(arch, 10, channels=4, cells_per_stage=1)
        expected = sum(p.numel() for p in thin.parameters()) + thin.stem.conv.weight.sum().item()
        assert got[arch] == pytest.approx(expected, rel=0, abs=0)
    assert got[ARCHS[0]] != got[ARCHS[1]]


#: Every built-in proxy that reads no images by default (registry ``needs`` without ``batch``).
DATA_FREE = [n for n in list_proxies() if "batch" not in get_proxy(n).needs]


def test_data_free_proxies_score_without_the_dataset_and_match_a_run_with_it(tmp_path, data_dir):
    assert {"params", "flops", "synflow", "zen", "l2_norm"} <= set(DATA_FREE)
    kwargs = dict(proxies=",".join(DATA_FREE), batch_size=8, seed=3, progress=False, proxy_settings=SMALL)
    empty = tmp_path / "no-data"
    empty.mkdir()
    summary = score_architectures(ARCHS, data_dir=empty, download=False, out=tmp_path / "free", **kwargs)
    assert summary.errors == 0
    score_architectures(ARCHS, data_dir=data_dir, out=tmp_path / "data", **kwargs)
    columns = ("score", "status", "settings_hash", "settings", "batch_id")
    free = {(r["arch"], r["proxy"]): tuple(r[c] for c in columns) for r in read_scores(tmp_path / "free").to_pylist()}
    with_data = {(r["arch"], r["proxy"]): tuple(r[c] for c in columns)
                 for r in read_scores(tmp_path / "data").to_pylist()}
    assert free == with_data
    assert not [key for key, row in free.items() if row[1] == "error"]


def test_proxies_that_read_images_still_need_the_dataset(tmp_path):
    from proxybench.errors import DataNotFoundError

    empty = tmp_path / "no-data"
    empty.mkdir()
    kwargs = dict(data_dir=empty, download=False, out=tmp_path / "out", progress=False)
    with pytest.raises(DataNotFoundError):
        score_architectures(ARCHS, proxies="params,snip", **kwargs)
    # a data-free proxy switched to real images by a setting reads them too
    with pytest.raises(DataNotFoundError):
        score_architectures(ARCHS, proxies="vkdnw", proxy_settings={"vkdnw": {"inputs": "images"}}, **kwargs)
