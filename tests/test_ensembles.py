"""Rank ensembles recomputed from stored components: values equal scipy's rankdata formulas."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import rankdata, spearmanr

from proxybench.ensembles import ENSEMBLES, Ensemble, parse_ensemble
from proxybench.errors import ProxybenchError
from proxybench.stats import correlate
from proxybench.store import SCORES_SCHEMA
from proxybench.store.views import open_views
from proxybench.truth import TRUTH_SCHEMA

from builders import ARCHS, score_rows, truth_rows, write

N = 40


def _components(rng: np.random.Generator) -> dict[str, np.ndarray]:
    values = {name: rng.normal(size=N) for name in ENSEMBLES["az_nas"].components}
    values["az_trainability"][:10] = np.round(values["az_trainability"][:10])  # ties
    return values


def _write_az(tmp_path, values, *, lower=(), missing=None):
    rows = []
    for name, v in values.items():
        part = score_rows(name, -v if name in lower else v, higher=name not in lower)
        if missing and name in missing:
            part = [r for i, r in enumerate(part) if i not in missing[name]]
        rows.extend(part)
    write(tmp_path / "scores" / "part-1.parquet", rows, SCORES_SCHEMA)


def _expected_logrank(values, keep):
    total = np.zeros(len(keep))
    for v in values.values():
        total += np.log(rankdata(v[keep]) / len(keep))
    return total


def test_logrank_equals_rankdata_formula_with_ties_and_orientation(tmp_path):
    values = _components(np.random.default_rng(0))
    # az_complexity stored as lower-is-better of the negated value: same oriented ranking
    _write_az(tmp_path, values, lower=("az_complexity",))
    with open_views(scores=[tmp_path]) as con:
        got = con.execute("SELECT arch, score, settings FROM scores WHERE proxy = 'az_nas' ORDER BY arch").fetchall()
    index = {a: i for i, a in enumerate(ARCHS[:N])}
    expected = _expected_logrank(values, np.arange(N))
    assert len(got) == N
    for arch, score, _ in got:
        assert score == pytest.approx(expected[index[arch]], abs=1e-12)
    settings = json.loads(got[0][2])
    assert settings["ranked_over"] == N and settings["rule"] == "logrank"
    assert set(settings["component_settings_hash"]) == set(ENSEMBLES["az_nas"].components)


def test_architectures_missing_a_component_are_left_out_not_ranked_worst(tmp_path):
    values = _components(np.random.default_rng(1))
    _write_az(tmp_path, values, missing={"az_progressivity": {3, 7}})
    keep = np.array([i for i in range(N) if i not in (3, 7)])
    with open_views(scores=[tmp_path]) as con:
        got = dict(con.execute("SELECT arch, score FROM scores WHERE proxy = 'az_nas'").fetchall())
    assert set(got) == {ARCHS[i] for i in keep}
    expected = _expected_logrank(values, keep)
    assert [got[ARCHS[i]] for i in keep] == pytest.approx(list(expected), abs=1e-12)


def test_ranksum_ensemble_correlates_like_scipy(tmp_path):
    rng = np.random.default_rng(2)
    ntk, lr = rng.normal(size=N), rng.normal(size=N)
    rows = score_rows("tenas_ntk", ntk, higher=False) + score_rows("tenas_lr", lr)
    write(tmp_path / "scores" / "part-1.parquet", rows, SCORES_SCHEMA)
    acc = rng.normal(size=N)
    write(tmp_path / "truth" / "t.parquet", truth_rows(acc, archs=ARCHS[:N]), TRUTH_SCHEMA)
    with open_views(out=tmp_path) as con:
        result = correlate(con, proxies="tenas", top_k=())
    (row,) = result.rows
    combined = rankdata(-ntk) + rankdata(lr)
    assert row["n"] == N
    assert row["spearman"] == pytest.approx(spearmanr(combined, acc).statistic, abs=1e-9)


def test_status_view_and_explicit_empty_list_see_no_ensemble(tmp_path):
    _write_az(tmp_path, _components(np.random.default_rng(3)))
    with open_views(scores=[tmp_path], ensembles=()) as con:
        assert con.execute("SELECT count(*) FROM scores WHERE proxy = 'az_nas'").fetchone()[0] == 0
    with open_views(scores=[tmp_path]) as con:
        assert con.execute("SELECT count(*) FROM scores WHERE proxy = 'az_nas'").fetchone()[0] == N


def test_two_settings_of_a_component_give_two_separately_ranked_ensembles(tmp_path):
    values = _components(np.random.default_rng(4))
    rows = []
    for name, v in values.items():
        rows.extend(score_rows(name, v))
    rows.extend(score_rows("az_expressivity", values["az_expressivity"][::-1].copy(), settings_hash="other"))
    write(tmp_path / "scores" / "part-1.parquet", rows, SCORES_SCHEMA)
    with open_views(scores=[tmp_path]) as con:
        hashes = con.execute("SELECT settings_hash, count(*) FROM scores WHERE proxy = 'az_nas' "
                             "GROUP BY 1").fetchall()
    assert len(hashes) == 2 and all(n == N for _, n in hashes)


def test_parse_user_ensembles_and_errors():
    mine = parse_ensemble("mine = synflow + nwot : meanrank")
    assert mine == Ensemble("mine", ("synflow", "nwot"), "meanrank", across_presets=True)
    assert not ENSEMBLES["az_nas"].across_presets
    assert parse_ensemble("pair=a+b").rule == "logrank"
    assert parse_ensemble("az_nas") is ENSEMBLES["az_nas"]
    with pytest.raises(ProxybenchError, match="unknown ensemble"):
        parse_ensemble("nope")
    with pytest.raises(ProxybenchError, match="two distinct components"):
        parse_ensemble("x=a")
    with pytest.raises(ProxybenchError, match="unknown rule"):
        parse_ensemble("x=a+b:median")


def test_az_nas_ranks_nonfinite_components_lowest_as_its_notebook_does(tmp_path):
    values = _components(np.random.default_rng(5))
    values["az_expressivity"][[2, 5]] = -np.inf  # the reference's NaN -> -inf for a degenerate feature
    values["az_progressivity"][5] = np.nan
    values["az_trainability"][9] = np.nan  # an error row (the references' failed score: NaN)
    rows = []
    for name, v in values.items():
        rows.extend(score_rows(name, v, statuses={9: "error"} if name == "az_trainability" else None))
    write(tmp_path / "scores" / "part-1.parquet", rows, SCORES_SCHEMA)
    with open_views(scores=[tmp_path]) as con:
        got = dict(con.execute("SELECT arch, score FROM scores WHERE proxy = 'az_nas'").fetchall())
    assert len(got) == N  # nothing dropped: N and every rank stay the paper's
    filled = {k: np.where(np.isnan(v), -np.inf, v) for k, v in values.items()}
    expected = _expected_logrank(filled, np.arange(N))
    assert [got[a] for a in ARCHS[:N]] == pytest.approx(list(expected), abs=1e-12)
    # a user ensemble excludes them by default, or ranks them worst when asked
    mine = parse_ensemble("mine=az_expressivity+az_complexity")
    worst = parse_ensemble("worst=az_expressivity+az_complexity:logrank:worst")
    with open_views(scores=[tmp_path], ensembles=[mine, worst]) as con:
        counts = dict(con.execute("SELECT proxy, count(*) FROM scores WHERE proxy IN ('mine', 'worst') "
                                  "GROUP BY 1").fetchall())
    assert counts == {"mine": N - 2, "worst": N}
    # an error row of a component leaves its architecture out of a user's default ensemble
    with open_views(scores=[tmp_path], ensembles=[parse_ensemble("tr=az_trainability+az_complexity")]) as con:
        assert con.execute("SELECT count(*) FROM scores WHERE proxy = 'tr'").fetchone()[0] == N - 1


def test_geomean_and_weighted_rules_equal_their_formulas(tmp_path):
    rng = np.random.default_rng(5)
    a, b, c = rng.normal(size=N), rng.normal(size=N), rng.normal(size=N)
    b[:8] = np.round(b[:8])  # ties
    rows = score_rows("pa", a) + score_rows("pb", -b, higher=False) + score_rows("pc", c)
    write(tmp_path / "scores" / "part-1.parquet", rows, SCORES_SCHEMA)
    geo = parse_ensemble("geo=pa+pb+pc:geomean")
    weighted = parse_ensemble("wt=pa*2+pb+pc*0.5:weighted")
    assert weighted.weights == (2.0, 1.0, 0.5) and weighted.definition()["weights"] == [2.0, 1.0, 0.5]
    with open_views(scores=[tmp_path], ensembles=[geo, weighted, parse_ensemble("lr=pa+pb+pc")]) as con:
        got = {(p, a_): s for p, a_, s in con.execute(
            "SELECT proxy, arch, score FROM scores WHERE run_id = 'ensemble'").fetchall()}
    ra, rb, rc = (rankdata(v) / N for v in (a, b, c))
    for i in range(N):
        assert got[("geo", ARCHS[i])] == pytest.approx((ra[i] * rb[i] * rc[i]) ** (1 / 3), rel=1e-12)
        assert got[("wt", ARCHS[i])] == pytest.approx(2 * ra[i] + rb[i] + 0.5 * rc[i], rel=1e-12)
    geo_order = sorted(range(N), key=lambda i: got[("geo", ARCHS[i])])
    assert geo_order == sorted(range(N), key=lambda i: got[("lr", ARCHS[i])])


@pytest.mark.parametrize("text, message", [
    ("w=a*2+b:logrank", "need the rule 'weighted'"),
    ("w=a*x+b:weighted", "weight 'x' of 'a' is not a number"),
    ("w=a+b:median", "unknown rule 'median'"),
])
def test_weighted_syntax_errors_are_one_line(text, message):
    with pytest.raises(ProxybenchError, match=message):
        parse_ensemble(text)


def test_user_ensembles_rank_across_presets_papers_ensembles_do_not(tmp_path):
    """MeCo (its own preset, batch 1) and params (default preset) combine in a user's ensemble."""
    rng = np.random.default_rng(7)
    a, b = rng.normal(size=N), rng.normal(size=N)
    rows = score_rows("pa", a) + score_rows("pb", b, seed=42)
    for row in rows[N:]:
        row["preset"], row["batch_size"] = "meco", 1
    write(tmp_path / "scores" / "part-1.parquet", rows, SCORES_SCHEMA)
    mixed = parse_ensemble("mix=pa+pb")
    strict = Ensemble("strict", ("pa", "pb"), "logrank")
    with open_views(scores=[tmp_path], ensembles=[mixed, strict]) as con:
        got = con.execute("SELECT arch, score, preset, seed, batch_size FROM scores WHERE proxy = 'mix'").fetchall()
        assert con.execute("SELECT count(*) FROM scores WHERE proxy = 'strict'").fetchone()[0] == 0
    expected = np.log(rankdata(a) / N) + np.log(rankdata(b) / N)
    index = {arch: i for i, arch in enumerate(ARCHS[:N])}
    assert len(got) == N
    for arch, score, preset, seed, batch in got:
        assert score == pytest.approx(expected[index[arch]], abs=1e-12)
        assert (preset, seed, batch) == ("proxybench+meco", None, None)
