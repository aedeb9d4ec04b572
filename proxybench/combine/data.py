"""The feature matrix and target of a few-shot experiment, read from stored scores and truth.

Rows are the architectures that have the requested truth value *and* a stored row for every
requested proxy (architectures missing a proxy are left out and counted, never imputed).
Columns are feature blocks:

* each proxy is one column: its **quantile** over the architectures of the experiment —
  ``(average rank) / N`` of the oriented score (lower-is-better proxies negated), so 1 is the
  best architecture. Ranks are a monotone transform, so trees are unaffected, while ridge and
  the GP no longer see SynFlow's twenty orders of magnitude. A ``nonfinite``/``error`` row and
  a NaN rank lowest (the rule of the papers' rank ensembles, :mod:`proxybench.ensembles`), +∞
  highest. The quantiles use the scores of all experiment architectures but never the truth,
  so nothing of the test truth leaks into training (the proxy scores of every architecture are
  known in a zero-cost setting anyway);
* architecture encodings (:mod:`proxybench.combine.encodings`).

A proxy must come from one settings group (preset, weights, seed, batch size, settings hash):
two groups for one proxy are an error naming them and the way to choose (``--preset``), never
a silent pick.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np

from proxybench.combine.encodings import ENCODINGS, encode, encoding_names
from proxybench.errors import ProxybenchError
from proxybench.spaces import get_space

__all__ = ["CombineError", "CombineData", "load_combine_data", "parse_feature_sets", "PROXIES_BLOCK"]

#: The feature-set token meaning "every selected proxy".
PROXIES_BLOCK = "proxies"


class CombineError(ProxybenchError, ValueError):
    """Bad input to ``proxybench combine`` (the message names the problem and the fix)."""


@dataclass
class CombineData:
    """Everything an experiment needs, with where it came from.

    Attributes:
        archs: Architecture strings, one per row.
        uids: Their isomorphism keys (splits keep classes apart).
        y: The truth value per row.
        blocks: Feature block name (a proxy or an encoding) -> its ``rows × columns`` matrix.
        columns: Block name -> its column names.
        proxy_settings: Proxy -> the settings group its scores came from and its counts.
        truth: What the target is (space, dataset, metric, source, epochs, seed).
        dropped: Architectures with truth left out because a proxy had no stored row.
        oriented: Proxy -> its oriented scores per row (NaN for nonfinite/error rows), the
            values the quantiles were taken of.
    """

    archs: list[str]
    uids: np.ndarray
    y: np.ndarray
    blocks: dict[str, np.ndarray]
    columns: dict[str, list[str]]
    proxy_settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    truth: dict[str, Any] = field(default_factory=dict)
    dropped: int = 0
    oriented: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def proxies(self) -> list[str]:
        return list(self.proxy_settings)

    def matrix(self, blocks: Sequence[str]) -> tuple[np.ndarray, list[str]]:
        """The columns of ``blocks`` side by side, and their names."""
        parts = [self.blocks[b] for b in blocks]
        names = [name for b in blocks for name in self.columns[b]]
        return np.hstack(parts) if parts else np.empty((len(self.archs), 0)), names


def parse_feature_sets(texts: Sequence[str], proxies: Sequence[str]) -> dict[str, list[str]]:
    """Feature sets from ``"proxies+graf"``-style texts: set label -> feature blocks.

    A set is ``+``-joined tokens: ``proxies`` (every selected proxy), an encoding
    (``onehot``, ``path``, ``graf``) or a proxy name.

    Raises:
        CombineError: An empty set, or a token that is neither an encoding nor a selected proxy.
    """
    sets: dict[str, list[str]] = {}
    for text in texts:
        tokens = [t.strip() for t in text.split("+") if t.strip()]
        if not tokens:
            raise CombineError(f"feature set {text!r} is empty; write e.g. 'proxies+graf'")
        blocks: list[str] = []
        for token in tokens:
            if token == PROXIES_BLOCK:
                if not proxies:
                    raise CombineError(f"feature set {text!r} uses 'proxies' but no proxy scores were selected; "
                                       "pass --scores DIR (and --proxies), or use encodings only, e.g. 'graf'")
                blocks.extend(proxies)
            elif token in ENCODINGS or token in proxies:
                blocks.append(token)
            else:
                raise CombineError(f"feature {token!r} in {text!r} is neither an encoding ({', '.join(ENCODINGS)}) "
                                   f"nor a selected proxy ({', '.join(proxies) or 'none selected'}); "
                                   "add it to --proxies or fix the name")
        sets["+".join(tokens)] = list(dict.fromkeys(blocks))
    return sets


def load_combine_data(
    con: duckdb.DuckDBPyConnection,
    *,
    proxies: Sequence[str] | None,
    encodings: Sequence[str],
    score_dataset: str,
    truth_dataset: str,
    metric: str,
    space: str = "nb201",
    preset: str | None = None,
    truth_source: str | None = None,
) -> CombineData:
    """Read the target and the feature blocks of an experiment.

    Args:
        con: A connection from :func:`proxybench.store.views.open_views` with a ``truth`` view
            and, when proxies are wanted, a ``scores`` view.
        proxies: Proxy names; ``None`` = every proxy stored for ``score_dataset`` (rank
            ensembles excluded: they are recomputed views of their components); ``[]`` = none.
        encodings: Encoding names to add as blocks.
        score_dataset: The dataset the proxies were scored on (``cifar10``).
        truth_dataset: The dataset of the target (``cifar10``, ``cifar100``, ``ImageNet16-120``).
        metric: The truth metric (``test_acc``).
        space: The search space.
        preset: Keep only score rows of this preset.
        truth_source: Keep only truth rows of this source.

    Raises:
        CombineError: No truth for the dataset/metric, several truth values per architecture,
            an unknown proxy, a proxy with several settings groups or with no stored scores for
            the architectures that have truth.
    """
    truth = _read_truth(con, space, truth_dataset, metric, truth_source)
    chosen = _select_proxies(con, proxies, space, score_dataset, preset)
    archs = sorted(truth)
    uid = get_space(space).uid
    oriented: dict[str, dict[str, float]] = {}
    settings: dict[str, dict[str, Any]] = {}
    for proxy, group in chosen.items():
        values = _read_proxy(con, proxy, group, space, score_dataset)
        covered = sum(1 for a in archs if a in values)
        if covered == 0:
            raise CombineError(f"proxy {proxy!r} has no stored scores for the {len(archs)} architectures with "
                               f"{truth_dataset} {metric} truth; score them first (proxybench score --proxies {proxy})")
        oriented[proxy] = values
        settings[proxy] = {**group, "covered": covered}
    kept = [a for a in archs if all(a in oriented[p] for p in oriented)]
    if not kept:
        raise CombineError("no architecture has a stored score of every requested proxy; drop a proxy from --proxies "
                           "or score the missing ones")
    blocks: dict[str, np.ndarray] = {}
    columns: dict[str, list[str]] = {}
    raw: dict[str, np.ndarray] = {}
    for proxy, values in oriented.items():
        x = np.array([values[a] for a in kept], dtype=np.float64)
        raw[proxy] = x
        blocks[proxy] = quantiles(x)[:, None]
        columns[proxy] = [proxy]
    for name in encodings:
        blocks[name] = encode(name, kept, space)
        columns[name] = encoding_names(name)
    meta = next(iter(truth.values()))[1]
    return CombineData(
        archs=kept,
        uids=np.array([uid(a) for a in kept]),
        y=np.array([truth[a][0] for a in kept], dtype=np.float64),
        blocks=blocks,
        columns=columns,
        proxy_settings=settings,
        truth={"space": space, "dataset": truth_dataset, "metric": metric, **meta},
        dropped=len(archs) - len(kept),
        oriented=raw,
    )


def quantiles(x: np.ndarray) -> np.ndarray:
    """Average rank / N of oriented scores within ``x``; NaN ranks lowest, +∞ highest, −∞ with the NaNs."""
    return quantiles_against(reference_of(x), x)


def reference_of(x: np.ndarray) -> np.ndarray:
    """The sorted reference distribution of oriented scores (NaN as −∞) that quantiles are taken against."""
    return np.sort(np.where(np.isnan(x), -np.inf, x))


def quantiles_against(reference: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``(#{ref < v} + (#{ref = v} + 1) / 2) / N`` for each v of ``x`` (NaN as −∞).

    For a value of the reference itself this is its average rank / N (ties averaged, as
    ``scipy.stats.rankdata``), so training quantiles and a saved predictor's quantiles of new
    architectures are one definition.
    """
    values = np.where(np.isnan(x), -np.inf, x)
    below = np.searchsorted(reference, values, side="left")
    equal = np.searchsorted(reference, values, side="right") - below
    return (below + (equal + 1) / 2.0) / len(reference)


def _read_truth(con: duckdb.DuckDBPyConnection, space: str, dataset: str, metric: str,
                source: str | None) -> dict[str, tuple[float, dict[str, Any]]]:
    where = "space = ? AND dataset = ? AND metric = ?" + (" AND source = ?" if source else "")
    params = [space, dataset, metric] + ([source] if source else [])
    rows = con.execute(
        f"SELECT arch, count(*), min(value), any_value(source), any_value(epochs), any_value(seed) "
        f"FROM truth WHERE {where} "
        "AND isfinite(value) GROUP BY arch", params).fetchall()
    if not rows:
        available = con.execute("SELECT DISTINCT dataset || ' ' || metric FROM truth WHERE space = ? ORDER BY 1",
                                [space]).fetchall()
        hint = ", ".join(r[0] for r in available[:12]) or "none"
        raise CombineError(f"no {space} truth for dataset {dataset!r}, metric {metric!r}"
                           f"{' from source ' + repr(source) if source else ''}; available: {hint}")
    several = [r for r in rows if r[1] > 1]
    if several:
        sources = con.execute(f"SELECT DISTINCT source FROM truth WHERE {where} ORDER BY 1", params).fetchall()
        raise CombineError(f"{len(several)} architectures have several {dataset} {metric} truth values "
                           f"(sources: {', '.join(s[0] for s in sources)}); choose one with --truth-source")
    return {r[0]: (float(r[2]), {"source": r[3], "epochs": r[4], "seed": r[5]}) for r in rows}


def _select_proxies(con: duckdb.DuckDBPyConnection, proxies: Sequence[str] | None, space: str, dataset: str,
                    preset: str | None) -> dict[str, dict[str, Any]]:
    if proxies is not None and not proxies:
        return {}
    if not _has_view(con, "scores"):
        raise CombineError("proxy features need stored scores; pass --scores DIR, or use encodings only "
                           "(--proxies none --features graf)")
    where = "space = ? AND dataset = ? AND run_id IS DISTINCT FROM 'ensemble'" + (" AND preset = ?" if preset else "")
    params: list[Any] = [space, dataset] + ([preset] if preset else [])
    groups = con.execute(
        f"SELECT proxy, preset, weights, seed, batch_size, settings_hash, count(*), sum((status = 'ok')::INT) "
        f"FROM scores WHERE {where} GROUP BY ALL ORDER BY proxy, preset, settings_hash", params).fetchall()
    by_proxy: dict[str, list[dict[str, Any]]] = {}
    for proxy, pre, weights, seed, batch, digest, rows, ok in groups:
        by_proxy.setdefault(proxy, []).append({"preset": pre, "weights": weights, "seed": seed,
                                               "batch_size": batch, "settings_hash": digest,
                                               "rows": rows, "ok": ok})
    wanted = sorted(by_proxy) if proxies is None else list(dict.fromkeys(proxies))
    if not wanted:
        raise CombineError(f"no stored {space} scores on {dataset}{' with preset ' + preset if preset else ''}; "
                           "score some (proxybench score) or check --dataset/--preset")
    chosen: dict[str, dict[str, Any]] = {}
    for proxy in wanted:
        found = by_proxy.get(proxy)
        if not found:
            raise CombineError(f"no stored {dataset} scores of proxy {proxy!r}"
                               f"{' with preset ' + preset if preset else ''}; stored: "
                               f"{', '.join(sorted(by_proxy)) or 'none'}")
        if len(found) > 1:
            labels = "; ".join(f"preset {g['preset']}, weights {g['weights']}, seed {g['seed']}, "
                               f"batch {g['batch_size']}, hash {g['settings_hash']}" for g in found)
            raise CombineError(f"proxy {proxy!r} has {len(found)} settings groups ({labels}); "
                               "choose one with --preset or give --scores only the runs you want")
        chosen[proxy] = found[0]
    return chosen


def _read_proxy(con: duckdb.DuckDBPyConnection, proxy: str, group: dict[str, Any], space: str,
                dataset: str) -> dict[str, float]:
    rows = con.execute(
        "SELECT arch, count(*), any_value(CASE WHEN status <> 'ok' OR isnan(score) THEN 'NaN'::DOUBLE "
        "WHEN higher_is_better THEN score ELSE -score END) FROM scores "
        "WHERE space = ? AND dataset = ? AND proxy = ? AND settings_hash = ? AND run_id IS DISTINCT FROM 'ensemble' "
        "GROUP BY arch", [space, dataset, proxy, group["settings_hash"]]).fetchall()
    doubled = sum(1 for r in rows if r[1] > 1)
    if doubled:
        raise CombineError(f"proxy {proxy!r}: {doubled} architectures have more than one stored row with the same "
                           "settings (two runs into one folder); see proxybench status and keep one")
    return {r[0]: float(r[2]) for r in rows}


def _has_view(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM duckdb_views() WHERE view_name = ?", [name]).fetchone()[0])
