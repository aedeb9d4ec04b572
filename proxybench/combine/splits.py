"""Train/test splits for few-shot predictors, by isomorphism class or (to measure leakage) by string.

NB201 has 15,625 strings but 6,466 functions: isomorphic strings compute the same function
and share their benchmark accuracy up to training noise. A random split of strings puts
isomorphs of training architectures into the test set, where a predictor that memorised its
training set looks better than it is. The default split therefore draws **classes**:

* ``class`` — draw ``n`` distinct isomorphism classes, train on one randomly drawn member of
  each, test on every architecture whose class was not drawn;
* ``arch`` — draw ``n`` strings, test on every other string (the protocol of White et al. 2021
  and NAS-Bench-Suite-Zero, kept to measure how much isomorphs inflate the numbers).

A split is a pure function of ``(seed, n, split index, kind)`` and the (sorted) architecture
list, so any experiment can be recomputed exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from proxybench.errors import ProxybenchError

__all__ = ["SPLIT_KINDS", "Split", "make_split"]

SPLIT_KINDS = ("class", "arch")


@dataclass(frozen=True)
class Split:
    """Row indices of one split."""

    train: np.ndarray
    test: np.ndarray


def make_split(uids: np.ndarray, n: int, index: int, seed: int, kind: str = "class") -> Split:
    """Split ``len(uids)`` architectures into ``n`` training rows and a test set.

    Args:
        uids: Isomorphism key of every row (rows in a fixed order).
        n: Training architectures.
        index: Which split (0, 1, ...); each has its own random stream.
        seed: Base seed of the experiment.
        kind: ``class`` or ``arch`` (see the module docstring).

    Raises:
        ProxybenchError: ``n`` too large for the architectures (or classes) available, or an
            unknown kind.
    """
    if kind not in SPLIT_KINDS:
        raise ProxybenchError(f"unknown split kind {kind!r}; choose from {', '.join(SPLIT_KINDS)}")
    rng = np.random.default_rng([seed, n, index, SPLIT_KINDS.index(kind)])
    rows = len(uids)
    if kind == "arch":
        if not 1 <= n < rows:
            raise ProxybenchError(f"n = {n} needs at least {n + 1} architectures with truth and features, "
                                  f"there are {rows}; lower --n")
        train = np.sort(rng.choice(rows, size=n, replace=False))
        mask = np.ones(rows, dtype=bool)
        mask[train] = False
        return Split(train, np.flatnonzero(mask))
    classes, inverse = np.unique(uids, return_inverse=True)
    if not 1 <= n < len(classes):
        raise ProxybenchError(f"n = {n} needs at least {n + 1} isomorphism classes with truth and features, "
                              f"there are {len(classes)} (in {rows} architectures); lower --n")
    chosen = rng.choice(len(classes), size=n, replace=False)
    order = np.argsort(inverse, kind="stable")
    starts = np.searchsorted(inverse[order], np.arange(len(classes)))
    counts = np.bincount(inverse, minlength=len(classes))
    picks = rng.integers(0, counts[chosen])
    train = np.sort(order[starts[chosen] + picks])
    in_train_class = np.zeros(len(classes), dtype=bool)
    in_train_class[chosen] = True
    return Split(train, np.flatnonzero(~in_train_class[inverse]))
