"""Rank ensembles: proxies defined by combining other proxies' ranks over a set of architectures.

AZ-NAS's score is ``Σ_i log(rank_i / N)`` over its four components, TE-NAS's a sum of two
ranks. A rank exists only relative to a set of architectures, so these are not computed
per architecture by the scoring engine. Instead:

* the engine stores the **components** as ordinary proxies (``az_expressivity``, …), one row
  per architecture, resumable like any score;
* an **ensemble** is a definition (:class:`Ensemble`: its components and a combination
  rule), registered once by name (:data:`ENSEMBLES`) or given by the user
  (:func:`parse_ensemble`, ``name=a+b+c:logrank``);
* whenever the scores are read (:func:`proxybench.store.views.open_views`, hence
  ``correlate``, ``tables`` and plots), every ensemble whose components are present is
  **recomputed from the stored components over the architectures being read**, and appears
  in the ``scores`` view as rows of its own (``proxy`` = the ensemble's name, ``run_id`` =
  ``ensemble``, ``settings`` = the definition, the components' settings hashes and the size
  of the ranked set).

The ranked set is every architecture that has a usable row of *every* component (``ok``;
with ``nonfinite="worst"``, as the papers' ensembles, ``nonfinite`` and ``error`` rows too,
ranked lowest)
within one group of (space, dataset, preset, weights, seed, batch size) — for a user's
ensemble within one (space, dataset), since its components usually follow different presets
(their rows then say ``preset`` = ``meco+proxybench``, and seed/batch size NULL where they
differ) — and one settings hash per component; architectures missing a component are left out (not ranked as worst), and
isomorphic copies count like computed rows: over the whole NB201 space the set has 15,625
strings, as in the AZ-NAS and TE-NAS evaluations. To rank within
another set (say 1,000 sampled architectures), read only the scores of that set: the
ensemble of an architecture is *defined* relative to the set, which the ``ranked_over``
entry of its settings records.

Ranks are taken on oriented scores (a lower-is-better component is negated first), in
ascending order with ties given their average rank (``scipy.stats.rankdata``'s default,
which the AZ-NAS notebook uses), so the best architecture of a component has rank N and
every rule below reads "higher is better":

* ``logrank``: ``Σ_i log(rank_i / N)`` (AZ-NAS, Eq. 9);
* ``ranksum``: ``Σ_i rank_i`` (TE-NAS's rank sum; its ordering equals the mean rank's);
* ``meanrank``: ``Σ_i rank_i / k``;
* ``geomean``: ``(Π_i rank_i / N)^(1/k)``, the geometric mean of normalised ranks in (0, 1]. It
  orders architectures exactly as ``logrank`` does (it is ``exp(logrank / k)``); it is offered
  because its values read as a quantile;
* ``weighted``: ``Σ_i w_i · rank_i / N``, a user-weighted sum of normalised ranks (weights
  written ``A*2+B*0.5``; a component without ``*w`` weighs 1).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import duckdb

from proxybench.errors import ProxybenchError

__all__ = ["Ensemble", "ENSEMBLES", "RULES", "parse_ensemble", "get_ensemble", "ensemble_rows_sql",
           "add_ensembles"]

#: Combination rules: name -> (SQL aggregate over ``rk`` (rank) and ``n`` (set size), description).
RULES: Mapping[str, tuple[str, str]] = MappingProxyType({
    "logrank": ("sum(ln(rk / n))", "sum of log(rank/N) (AZ-NAS)"),
    "ranksum": ("sum(rk)", "sum of ranks (TE-NAS)"),
    "meanrank": ("avg(rk)", "mean rank"),
    "geomean": ("exp(avg(ln(rk / n)))", "geometric mean of rank/N"),
    "weighted": ("sum(w * rk / n)", "weighted sum of rank/N"),
})

#: Group columns within which ranks are taken (besides one settings hash per component).
GROUP = ("space", "dataset", "preset", "weights", "seed", "batch_size")


@dataclass(frozen=True)
class Ensemble:
    """A named combination of component proxies' ranks.

    Attributes:
        name: The ``proxy`` value its rows get.
        components: Proxy names, at least two.
        rule: A key of :data:`RULES`.
        paper: Where the combination is defined (empty for a user's).
        nonfinite: What a component's ``nonfinite`` or ``error`` row means: ``exclude`` (the
            architecture has no complete set and is left out, like a missing row) or
            ``worst`` (the references' rule: their code turns a failure into NaN and NaN into
            −inf or the column minimum, so NaN, an error and −inf on the oriented scale rank
            lowest and +inf highest; dropping those rows would change N and every rank).
        weights: Per-component weights of the ``weighted`` rule.
        across_presets: Rank components scored under different presets/seeds/batch sizes
            together (within one space and dataset). False for the papers' ensembles, whose
            components share one protocol; True for users' ensembles, which typically combine
            proxies that each follow their own paper's preset (MeCo's batch of 1 with NWOT's 64).
    """

    name: str
    components: tuple[str, ...]
    rule: str
    paper: str = ""
    nonfinite: str = "exclude"
    weights: tuple[float, ...] = ()
    across_presets: bool = False

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", self.name):
            raise ProxybenchError(f"ensemble name {self.name!r} must be letters, digits, _ . - (e.g. az_nas)")
        if len(set(self.components)) < 2 or len(set(self.components)) != len(self.components):
            raise ProxybenchError(f"ensemble {self.name!r} needs at least two distinct components, "
                                  f"got {list(self.components)}")
        if self.nonfinite not in ("exclude", "worst"):
            raise ProxybenchError(f"ensemble {self.name!r}: nonfinite must be 'exclude' or 'worst', "
                                  f"got {self.nonfinite!r}")
        if self.rule not in RULES:
            raise ProxybenchError(f"ensemble {self.name!r}: unknown rule {self.rule!r}; choose one of "
                                  f"{', '.join(RULES)}")
        if self.weights and (self.rule != "weighted" or len(self.weights) != len(self.components)):
            raise ProxybenchError(f"ensemble {self.name!r}: weights (A*2+B) need the rule 'weighted' and one "
                                  f"weight per component, e.g. {self.name}=A*2+B*1:weighted")
        if not all(math.isfinite(w) for w in self.weights):
            raise ProxybenchError(f"ensemble {self.name!r}: weights must be finite numbers")

    def weight(self, component: str) -> float:
        """The weight of ``component`` (1 unless the ``weighted`` rule gave another)."""
        return self.weights[self.components.index(component)] if self.weights else 1.0

    def definition(self) -> dict[str, object]:
        """What the rows' ``settings`` record about the definition."""
        definition = {"ensemble": self.name, "components": list(self.components), "rule": self.rule,
                      "paper": self.paper, "nonfinite": self.nonfinite,
                      "ranks": "ascending on oriented scores, ties averaged"}
        if self.rule == "weighted":
            definition["weights"] = [self.weight(c) for c in self.components]
        return definition

    def row_filter(self) -> str:
        """SQL condition on a component row for it to enter the ranking."""
        if self.nonfinite == "worst":
            return "status IN ('ok', 'nonfinite', 'error')"
        return "status = 'ok' AND isfinite(score)"


_AZ = "arXiv:2403.19232 (Lee & Ham 2024, AZ-NAS, CVPR), Eq. 9"
_TENAS = "arXiv:2102.11535 (Chen et al. 2021, TE-NAS, ICLR)"
_VKDNW = "arXiv:2502.04975 (Tybl & Neumann 2025, VKDNW, CVPR), VKDNW_agg (NB201/tss_utils.py vkdnw_comb_rank)"

#: The ensembles papers define, available by name wherever scores are read.
ENSEMBLES: Mapping[str, Ensemble] = MappingProxyType({
    "az_nas": Ensemble("az_nas", ("az_expressivity", "az_progressivity", "az_trainability", "az_complexity"),
                       "logrank", _AZ, nonfinite="worst"),
    "tenas": Ensemble("tenas", ("tenas_ntk", "tenas_lr"), "ranksum", _TENAS, nonfinite="worst"),
    "vkdnw_agg": Ensemble("vkdnw_agg", ("vkdnw_single", "jacov_kaiming", "az_expressivity", "az_trainability",
                                        "az_complexity"), "logrank", _VKDNW, nonfinite="worst"),
})


def get_ensemble(name: str) -> Ensemble:
    """The built-in ensemble ``name``; a one-line error naming the known ones."""
    try:
        return ENSEMBLES[name]
    except KeyError:
        raise ProxybenchError(f"unknown ensemble {name!r}; built in: {', '.join(ENSEMBLES)}, "
                              "or define one as NAME=A+B[+C...][:RULE]") from None


def parse_ensemble(text: str) -> Ensemble:
    """``NAME=A+B+C[:RULE[:NONFINITE]]`` (defaults ``logrank``, ``exclude``) or a built-in ensemble's name.

    With the ``weighted`` rule a component may carry a weight, ``A*2+B*0.5+C``.

    Raises:
        ProxybenchError: Malformed text, an unknown rule, a weight that is not a number, or a
            single component.
    """
    text = text.strip()
    if "=" not in text:
        return get_ensemble(text)
    name, _, body = text.partition("=")
    parts, _, options = body.partition(":")
    rule, _, nonfinite = options.partition(":")
    components: list[str] = []
    weights: list[float] = []
    for part in (p.strip() for p in parts.split("+") if p.strip()):
        component, star, weight = part.partition("*")
        components.append(component.strip())
        try:
            weights.append(float(weight) if star else 1.0)
        except ValueError:
            raise ProxybenchError(f"ensemble {name.strip()!r}: weight {weight.strip()!r} of {component.strip()!r} "
                                  "is not a number (write A*2+B*0.5)") from None
    explicit = any("*" in p for p in parts.split("+"))
    return Ensemble(name.strip(), tuple(components), rule.strip() or "logrank", nonfinite=nonfinite.strip() or "exclude",
                    weights=tuple(weights) if explicit or rule.strip() == "weighted" else (), across_presets=True)


def _hash(payload: Mapping[str, object]) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def ensemble_rows_sql(rule: str) -> str:
    """SQL that ranks the rows of ``pb_ens_input(arch, arch_uid, proxy, x, w)`` and combines them per arch."""
    aggregate = RULES[rule][0]
    return f"""
    WITH complete AS (
        SELECT arch FROM pb_ens_input GROUP BY arch HAVING count(DISTINCT proxy) = ?
    ), ranked AS (
        SELECT i.arch, i.arch_uid, i.proxy, i.w,
               (rank() OVER win + count(*) OVER win) / 2.0 AS rk,
               count(*) OVER (PARTITION BY i.proxy) AS n
        FROM pb_ens_input i JOIN complete c USING (arch)
        WINDOW win AS (PARTITION BY i.proxy ORDER BY i.x)
    )
    SELECT arch, any_value(arch_uid) AS arch_uid, {aggregate} AS score, any_value(n) AS n
    FROM ranked GROUP BY arch ORDER BY arch
    """


def add_ensembles(con: duckdb.DuckDBPyConnection, source: str, ensembles: Iterable[Ensemble]) -> int:
    """Create the table ``pb_ensembles`` (scores-schema rows of every computable ensemble; none when empty).

    Args:
        con: Connection holding the view ``source`` over the stored score files.
        source: Name of that view.
        ensembles: Definitions to compute; one whose components are not all stored is skipped
            (it simply has no rows), so the built-in list can always be passed.

    Returns:
        The number of rows written.
    """
    columns = [r[0] for r in con.execute(f"DESCRIBE {source}").fetchall()]
    con.execute(f"CREATE OR REPLACE TEMP TABLE pb_ensembles AS SELECT * FROM {source} LIMIT 0")
    total = 0
    for ensemble in ensembles:
        group_cols = _group_columns(ensemble)
        variants = con.execute(
            f"SELECT DISTINCT {', '.join(group_cols)}, proxy, settings_hash FROM {source} "
            f"WHERE proxy IN (SELECT unnest(?)) AND {ensemble.row_filter()}",
            [list(ensemble.components)],
        ).fetchall()
        by_group: dict[tuple[object, ...], dict[str, list[str]]] = {}
        for row in variants:
            by_group.setdefault(tuple(row[:len(group_cols)]), {}).setdefault(row[len(group_cols)], []).append(row[-1])
        for group, per_proxy in sorted(by_group.items(), key=lambda kv: json.dumps(kv[0], default=str)):
            if set(per_proxy) != set(ensemble.components):
                continue
            for hashes in itertools.product(*(sorted(set(per_proxy[c])) for c in ensemble.components)):
                total += _add_one(con, source, columns, ensemble, group, dict(zip(ensemble.components, hashes)))
    con.execute("DROP TABLE IF EXISTS pb_ens_input")
    con.execute("DROP TABLE IF EXISTS pb_ens_rows")
    if not total:
        con.execute("DROP TABLE pb_ensembles")
    return total


def _group_columns(ensemble: Ensemble) -> tuple[str, ...]:
    """Columns within which an ensemble ranks: every setting, or only space and dataset."""
    return ("space", "dataset") if ensemble.across_presets else GROUP


def _fixed_settings(con: duckdb.DuckDBPyConnection, source: str, group_cols: Sequence[str], group: Sequence[object],
                    hashes: Mapping[str, str]) -> dict[str, object]:
    """The group columns of an ensemble's rows: the components' common value, else joined (text) or NULL."""
    fixed: dict[str, object] = dict(zip(group_cols, group))
    rest = [c for c in GROUP if c not in group_cols]
    if not rest:
        return fixed
    per_component = [con.execute(f"SELECT {', '.join(f'any_value({c})' for c in rest)} FROM {source} "
                                 "WHERE proxy = ? AND settings_hash = ?", [p, h]).fetchone() for p, h in hashes.items()]
    for i, column in enumerate(rest):
        values = list(dict.fromkeys(row[i] for row in per_component))
        if len(values) == 1:
            fixed[column] = values[0]
        else:
            fixed[column] = "+".join(str(v) for v in values) if column in ("preset", "weights") else None
    return fixed


def _add_one(con: duckdb.DuckDBPyConnection, source: str, columns: Sequence[str], ensemble: Ensemble,
             group: tuple[object, ...], hashes: Mapping[str, str]) -> int:
    group_cols = _group_columns(ensemble)
    where = " AND ".join(f"{c} IS NOT DISTINCT FROM ?" for c in group_cols)
    pairs = " OR ".join("(proxy = ? AND settings_hash = ?)" for _ in hashes)
    weight_case = "CASE proxy " + " ".join("WHEN ? THEN ?" for _ in hashes) + " END"
    weight_params: list[object] = list(itertools.chain.from_iterable((c, ensemble.weight(c)) for c in hashes))
    params: list[object] = [*weight_params, *group, *itertools.chain.from_iterable(hashes.items())]
    con.execute(
        "CREATE OR REPLACE TEMP TABLE pb_ens_input AS "
        f"SELECT arch, arch_uid, proxy, ({weight_case})::DOUBLE AS w, "
        "CASE WHEN isnan(score) THEN -'inf'::DOUBLE WHEN higher_is_better THEN score ELSE -score END AS x "
        f"FROM {source} WHERE {where} AND ({pairs}) AND {ensemble.row_filter()}",
        params,
    )
    rows = con.execute(ensemble_rows_sql(ensemble.rule), [len(hashes)]).fetchall()
    if not rows:
        return 0
    ranked_over = int(rows[0][3])
    fixed = _fixed_settings(con, source, group_cols, group, hashes)
    settings = {**ensemble.definition(), "component_settings_hash": dict(hashes), "ranked_over": ranked_over,
                **fixed}
    settings_text = json.dumps(settings, sort_keys=True, default=str)
    digest = _hash({**ensemble.definition(), "component_settings_hash": dict(hashes)})
    values = {
        **fixed, "proxy": ensemble.name, "status": "ok", "error": None, "higher_is_better": True,
        "batch_id": "ensemble", "settings": settings_text, "settings_hash": digest, "device": "",
        "dtype": "float64", "seconds": 0.0, "run_id": "ensemble", "shared_from": None,
    }
    con.execute("CREATE OR REPLACE TEMP TABLE pb_ens_rows (arch VARCHAR, arch_uid VARCHAR, score DOUBLE)")
    con.executemany("INSERT INTO pb_ens_rows VALUES (?, ?, ?)", [(a, u, s) for a, u, s, _ in rows])
    select = []
    params2: list[object] = []
    for column in columns:
        if column in ("arch", "arch_uid", "score"):
            select.append(f"r.{column}")
        elif column in values:
            select.append("?")
            params2.append(values[column])
        elif column in ("proxybench_version", "torch_version"):
            select.append(f"(SELECT any_value({column}) FROM {source})")
        elif column == "created_at":
            select.append("now()")
        else:
            select.append("NULL")
    con.execute(f"INSERT INTO pb_ensembles BY NAME SELECT {', '.join(f'{s} AS {c}' for s, c in zip(select, columns))} "
                "FROM pb_ens_rows r", params2)
    return len(rows)
