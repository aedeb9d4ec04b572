"""A fitted few-shot predictor saved to a file, so that a search can use it as an objective.

``proxybench combine --save-predictor FILE`` fits one model on one feature set at one n (the
first training set of the class split, the same one the grid's split 0 uses) and saves:

* the fitted model;
* for every proxy feature, the **reference distribution**: the sorted oriented scores of all
  architectures of the experiment, so a new architecture's quantile is computed against the
  same set the model was trained on — ``q(v) = (#{ref < v} + (#{ref = v} + 1) / 2) / N``, which
  equals the training quantile (average rank / N) for every architecture of the reference set;
  NaN and ``error`` scores take the lowest place, as in training;
* the settings each proxy was scored with (preset, seed, batch size, weights), so a search
  scores its candidates under the same protocol, and the training architectures (they had
  their truth revealed: a benchmark judging the search should know them).

The file is a pickle (scikit-learn and LightGBM models are pickled objects): load only
predictor files you made. :func:`load_predictor` checks its format tag and says what is wrong
in one line.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from proxybench.combine.data import CombineData, CombineError, quantiles_against, reference_of
from proxybench.combine.encodings import ENCODINGS, encode
from proxybench.combine.models import make_model, model_settings
from proxybench.combine.splits import make_split

__all__ = ["FittedPredictor", "fit_predictor", "load_predictor", "FORMAT"]

FORMAT = "proxybench-predictor/1"


@dataclass
class FittedPredictor:
    """A model with what it needs to compute its features for any architecture of its space."""

    model: Any
    model_name: str
    blocks: list[str]
    reference: dict[str, np.ndarray]
    proxy_settings: dict[str, dict[str, Any]]
    space: str
    truth: dict[str, Any]
    n: int
    seed: int
    train_archs: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def proxies(self) -> list[str]:
        return [b for b in self.blocks if b not in ENCODINGS]

    def quantile(self, proxy: str, oriented: np.ndarray) -> np.ndarray:
        """Quantiles of oriented scores against ``proxy``'s reference distribution."""
        return quantiles_against(self.reference[proxy], oriented)

    def features(self, archs: Sequence[str], oriented: Mapping[str, Mapping[str, float]]) -> np.ndarray:
        """The feature matrix of ``archs``; ``oriented[proxy][arch]`` is the oriented score of each proxy."""
        parts = []
        for block in self.blocks:
            if block in ENCODINGS:
                parts.append(encode(block, list(archs), self.space))
            else:
                values = np.array([oriented[block][a] for a in archs], dtype=np.float64)
                parts.append(self.quantile(block, values)[:, None])
        return np.hstack(parts)

    def predict(self, archs: Sequence[str], oriented: Mapping[str, Mapping[str, float]] | None = None) -> np.ndarray:
        """Predicted truth values of ``archs`` (higher = better for accuracies)."""
        return self.model.predict(self.features(archs, oriented or {}))

    def describe(self) -> dict[str, Any]:
        """What a search records about the predictor it used."""
        return {"model": self.model_name, "features": "+".join(self.blocks), "n": self.n, "seed": self.seed,
                "space": self.space, "truth": self.truth, "proxy_settings": self.proxy_settings}

    def save(self, path: Path) -> Path:
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_bytes(pickle.dumps({"format": FORMAT, "predictor": self}, protocol=pickle.HIGHEST_PROTOCOL))
            tmp.replace(path)
        except OSError as exc:
            raise CombineError(f"cannot write the predictor to {path}: {exc.strerror or exc}; choose another path") \
                from None
        return path


def fit_predictor(data: CombineData, model_name: str, blocks: Sequence[str], n: int, seed: int = 0,
                  threads: int = 1) -> FittedPredictor:
    """Fit ``model_name`` on the first class-split training set of ``n`` architectures.

    Raises:
        CombineError: A proxy feature scored with published values (a search cannot score new
            candidates that way), or ``n`` too large.
    """
    published = [p for p in blocks if p in data.proxy_settings
                 and str(data.proxy_settings[p]["preset"]).endswith("published")]
    if published:
        raise CombineError(f"proxies {published} are published scores (preset "
                           f"{data.proxy_settings[published[0]]['preset']}): a search cannot score new candidates "
                           "with them; save a predictor on scores you computed, or on encodings only")
    x, names = data.matrix(list(blocks))
    split = make_split(data.uids, n, 0, seed, "class")
    model = make_model(model_name, n, seed, threads).fit(x[split.train], data.y[split.train])
    reference = {}
    for block in blocks:
        if block not in ENCODINGS:
            # the block holds quantiles; keep the oriented scores themselves for new architectures
            reference[block] = reference_of(data.oriented[block])
    return FittedPredictor(
        model=model, model_name=model_name, blocks=list(blocks), reference=reference,
        proxy_settings={p: dict(data.proxy_settings[p]) for p in reference}, space=data.truth["space"],
        truth=dict(data.truth), n=n, seed=seed, train_archs=[data.archs[i] for i in split.train],
        settings={"model_settings": model_settings(model_name, n), "columns": names,
                  "architectures": len(data.archs)})


def load_predictor(path: str | Path) -> FittedPredictor:
    """Read a file written by :meth:`FittedPredictor.save`.

    Raises:
        CombineError: Missing, unreadable or not a proxybench predictor file.
    """
    path = Path(path)
    if not path.is_file():
        raise CombineError(f"predictor file {path} does not exist; write one with "
                           "proxybench combine ... --save-predictor FILE")
    try:
        payload = pickle.loads(path.read_bytes())
    except Exception as exc:  # a truncated or foreign file: any unpickling error means the same
        raise CombineError(f"{path} is not a readable proxybench predictor ({type(exc).__name__}); "
                           "write it again with proxybench combine --save-predictor") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CombineError(f"{path} is not a proxybench predictor file (format {FORMAT}); "
                           "write it with proxybench combine --save-predictor")
    return payload["predictor"]
