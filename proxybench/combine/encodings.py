"""Architecture encodings used as predictor features: one-hot ops, path encoding, graph features.

Few-shot predictors learn from what an architecture *is* as well as from its proxy scores.
Three encodings of an NB201 cell (six edges ``i -> j`` of a four-node DAG, node 0 the input,
node 3 the output, :data:`proxybench.spaces.nb201.EDGES`):

* ``onehot`` — 6 edges × 5 ops, 1 where the edge carries the op (30 columns). The adjacency
  one-hot encoding of White et al. 2021 ("How powerful are performance predictors …").
* ``path`` — BANANAS' path encoding (White et al., AAAI 2021): for every sequence of non-``none``
  ops of length 1–3, the number of input→output paths whose edges carry exactly that sequence
  (4 + 16 + 64 = 84 columns). The cell has four input→output paths: 0→3, 0→1→3, 0→2→3 and
  0→1→2→3; a path through a ``none`` edge does not exist.
* ``graf`` — graph features in the spirit of GRAF (Kadlecová et al., "Surprisingly strong
  performance prediction with neural graph features", ICML 2024), computed here for each op
  group ``S`` of :data:`GRAF_GROUPS`: the number of edges with an op in ``S``; the length of the
  shortest input→output path using only ops in ``S`` (0 when there is none); the largest number
  of ``S``-edges on any input→output path; the number of ``S``-edges into the output (in-degree)
  and out of the input (out-degree). 7 groups × 5 = 35 columns. GRAF's paper defines these
  families (op counts, min path length, max ops on a path, node degrees); the exact groups
  here are ours, listed in :data:`GRAF_GROUPS`.

Every encoding is a pure function of the architecture string (no data, no weights), so a
predictor may use them for all 15,625 architectures without leaking any truth.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType

import numpy as np

from proxybench.errors import ProxybenchError
from proxybench.spaces.nb201 import EDGES, OPS, parse_arch

__all__ = ["ENCODINGS", "GRAF_GROUPS", "encode", "encoding_names"]

_NONE = "none"
_REAL_OPS = tuple(op for op in OPS if op != _NONE)
_SHORT = {"skip_connect": "skip", "nor_conv_1x1": "conv1", "nor_conv_3x3": "conv3", "avg_pool_3x3": "pool"}
_EDGE_INDEX = {edge: k for k, edge in enumerate(EDGES)}
#: The four input→output paths of the cell, as edge indices.
_PATHS: tuple[tuple[int, ...], ...] = tuple(
    tuple(_EDGE_INDEX[(a, b)] for a, b in zip(nodes, nodes[1:]))
    for nodes in ((0, 3), (0, 1, 3), (0, 2, 3), (0, 1, 2, 3))
)
_INPUT, _OUTPUT = 0, 3

#: Op groups of the ``graf`` encoding: name -> ops.
GRAF_GROUPS: Mapping[str, frozenset[str]] = MappingProxyType({
    "conv3": frozenset({"nor_conv_3x3"}),
    "conv1": frozenset({"nor_conv_1x1"}),
    "conv": frozenset({"nor_conv_1x1", "nor_conv_3x3"}),
    "pool": frozenset({"avg_pool_3x3"}),
    "skip": frozenset({"skip_connect"}),
    "conv_skip": frozenset({"nor_conv_1x1", "nor_conv_3x3", "skip_connect"}),
    "any": frozenset(_REAL_OPS),
})

_PATH_SEQUENCES = [seq for length in (1, 2, 3) for seq in itertools.product(_REAL_OPS, repeat=length)]
_PATH_COLUMN = {seq: i for i, seq in enumerate(_PATH_SEQUENCES)}


def _onehot(ops: Sequence[str]) -> list[float]:
    return [1.0 if ops[k] == op else 0.0 for k in range(len(EDGES)) for op in OPS]


def _path(ops: Sequence[str]) -> list[float]:
    counts = [0.0] * len(_PATH_SEQUENCES)
    for path in _PATHS:
        sequence = tuple(ops[k] for k in path)
        if _NONE not in sequence:
            counts[_PATH_COLUMN[sequence]] += 1.0
    return counts


def _graf(ops: Sequence[str]) -> list[float]:
    values: list[float] = []
    live_paths = [path for path in _PATHS if all(ops[k] != _NONE for k in path)]
    for group in GRAF_GROUPS.values():
        member = [op in group for op in ops]
        within = [len(path) for path in _PATHS if all(member[k] for k in path)]
        values.append(float(sum(member)))
        values.append(float(min(within)) if within else 0.0)
        values.append(float(max((sum(member[k] for k in path) for path in live_paths), default=0)))
        values.append(float(sum(member[k] for k, (_, dst) in enumerate(EDGES) if dst == _OUTPUT)))
        values.append(float(sum(member[k] for k, (src, _) in enumerate(EDGES) if src == _INPUT)))
    return values


def _onehot_names() -> list[str]:
    return [f"onehot:e{a}{b}={op}" for a, b in EDGES for op in OPS]


def _path_names() -> list[str]:
    return ["path:" + ">".join(_SHORT[op] for op in seq) for seq in _PATH_SEQUENCES]


def _graf_names() -> list[str]:
    kinds = ("count", "min_path", "max_on_path", "in_degree", "out_degree")
    return [f"graf:{kind}[{group}]" for group in GRAF_GROUPS for kind in kinds]


#: name -> (per-architecture function of the op tuple, column names).
ENCODINGS: Mapping[str, tuple[Callable[[Sequence[str]], list[float]], Callable[[], list[str]]]] = MappingProxyType({
    "onehot": (_onehot, _onehot_names),
    "path": (_path, _path_names),
    "graf": (_graf, _graf_names),
})


def encoding_names(name: str) -> list[str]:
    """Column names of encoding ``name``."""
    return _get(name)[1]()


def encode(name: str, archs: Sequence[str], space: str = "nb201") -> np.ndarray:
    """The ``len(archs) × columns`` float matrix of encoding ``name``.

    Raises:
        ProxybenchError: An unknown encoding, or a space without encodings (NB201 only so far).
    """
    if space != "nb201":
        raise ProxybenchError(f"architecture encodings exist for the nb201 space only, not {space!r}; "
                              "use proxy features alone (--features proxies)")
    function = _get(name)[0]
    cache: dict[str, list[float]] = {}
    rows = []
    for arch in archs:
        if arch not in cache:
            cache[arch] = function(parse_arch(arch))
        rows.append(cache[arch])
    width = len(encoding_names(name))
    return np.asarray(rows, dtype=np.float64).reshape(len(archs), width)


def _get(name: str) -> tuple[Callable[[Sequence[str]], list[float]], Callable[[], list[str]]]:
    try:
        return ENCODINGS[name]
    except KeyError:
        raise ProxybenchError(f"unknown encoding {name!r}; choose from {', '.join(ENCODINGS)}") from None
