"""The NAS-Bench-201 cell search space: strings, encodings, isomorphism, NASLib indices.

An NB201 cell is a DAG on four nodes (node 0 is the cell input, node 3 its output) with one
operation on each of its six edges ``i -> j`` (``i < j``), chosen from :data:`OPS`. The
benchmark names a cell by its *canonical string*

    ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``

one ``+``-separated group per node 1, 2, 3, each listing ``op~i`` for its inputs ``i = 0..j-1``
in order, so the six ops appear in the *canonical edge order* ``e01 | e02 e12 | e03 e13 e23``
(:data:`EDGES`). Every function here that takes or returns a tuple of six ops or ints uses
that order, except the NASLib tuples, which have their own (see :func:`to_naslib_tuple`).

The benchmark's own architecture index is not derivable from the ops (its order is arbitrary);
it arrives with imported ground truth and is joined on the canonical string (DESIGN.md §4).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from functools import lru_cache
from numbers import Integral
from typing import TYPE_CHECKING

import numpy as np

from proxybench.errors import InvalidArchitectureError
from proxybench.spaces._base import SearchSpace, register_space

if TYPE_CHECKING:  # torch is imported when a network is built, not to list, sample or parse
    import torch.nn as nn

__all__ = [
    "OPS",
    "EDGES",
    "NUM_ARCHS",
    "NASLIB_OPS",
    "NASLIB_EDGES",
    "parse_arch",
    "format_arch",
    "all_archs",
    "sample_archs",
    "arch_uid",
    "live_edges",
    "to_naslib_tuple",
    "from_naslib_tuple",
    "NB201Space",
]

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
"""The five NB201 operations; an op's index here is its value in :meth:`NB201Space.encode`."""

EDGES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
"""``(source, target)`` node pairs in canonical edge order (the order ops appear in a string)."""

NUM_ARCHS = len(OPS) ** len(EDGES)  # 15,625

NASLIB_OPS: tuple[str, ...] = ("skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3")
"""NASLib's op indices (its ``OP_NAMES`` Identity, Zero, ReLUConvBN3x3, ReLUConvBN1x1, AvgPool)."""

NASLIB_EDGES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3))
"""NASLib's edge order (its ``EDGE_LIST`` (1,2),(1,3),(1,4),(2,3),(2,4),(3,4), nodes renumbered from 0)."""

_EXPECTED = "expected '|op~0|+|op~0|op~1|+|op~0|op~1|op~2|' with op in " + ", ".join(OPS)
_OP_INDEX = {op: i for i, op in enumerate(OPS)}
_EDGE_POS = {edge: k for k, edge in enumerate(EDGES)}
# NASLib tuple position k holds the op of canonical position _NASLIB_TO_CANONICAL[k].
_NASLIB_TO_CANONICAL = tuple(_EDGE_POS[edge] for edge in NASLIB_EDGES)


# ----------------------------------------------------------------------------- strings


def parse_arch(arch: str) -> tuple[str, ...]:
    """The six ops of an NB201 string, in canonical edge order.

    Only surrounding whitespace is tolerated: anything else that differs from the canonical
    form is an error, so that one architecture has exactly one spelling in stored results.

    Args:
        arch: A canonical string such as ``|nor_conv_3x3~0|+|none~0|skip_connect~1|+|...|``.

    Returns:
        ``(e01, e02, e12, e03, e13, e23)``.

    Raises:
        InvalidArchitectureError: One line naming what is wrong and the expected form.

    Example:
        >>> parse_arch("|nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|avg_pool_3x3~2|")
        ('nor_conv_3x3', 'none', 'skip_connect', 'none', 'none', 'avg_pool_3x3')
    """
    if not isinstance(arch, str):
        raise InvalidArchitectureError(
            f"NB201 architecture must be a string, got {type(arch).__name__} {arch!r}; {_EXPECTED}"
        )
    text = arch.strip()
    if not text:
        raise InvalidArchitectureError(f"NB201 architecture string is empty; {_EXPECTED}")
    groups = text.split("+")
    if len(groups) != 3:
        raise InvalidArchitectureError(
            f"NB201 architecture {text!r} has {len(groups)} '+'-separated node(s), needs 3; {_EXPECTED}"
        )
    ops: list[str] = []
    for node, group in enumerate(groups, start=1):
        if len(group) < 2 or not (group.startswith("|") and group.endswith("|")):
            raise InvalidArchitectureError(
                f"node {node} {group!r} of {text!r} must start and end with '|'; {_EXPECTED}"
            )
        edges = group[1:-1].split("|")
        if len(edges) != node:
            raise InvalidArchitectureError(
                f"node {node} {group!r} of {text!r} has {len(edges)} edge(s), needs {node} "
                f"(one from each of nodes 0..{node - 1}); {_EXPECTED}"
            )
        for position, edge in enumerate(edges):
            op, sep, source = edge.partition("~")
            if not sep or "~" in source:
                raise InvalidArchitectureError(
                    f"edge {edge!r} (node {node}, position {position}) of {text!r} must be 'op~{position}'; "
                    f"{_EXPECTED}"
                )
            if op not in _OP_INDEX:
                raise InvalidArchitectureError(
                    f"unknown op {op!r} in edge {edge!r} (node {node}, position {position}) of {text!r}; "
                    f"valid ops: {', '.join(OPS)}"
                )
            if source != str(position):
                raise InvalidArchitectureError(
                    f"edge {edge!r} (node {node}, position {position}) of {text!r} must come from node "
                    f"{position} ('{op}~{position}'), got node index {source!r}; {_EXPECTED}"
                )
            ops.append(op)
    return tuple(ops)


def format_arch(ops: Sequence[str]) -> str:
    """The canonical string of six ops given in canonical edge order (inverse of :func:`parse_arch`).

    Raises:
        InvalidArchitectureError: Wrong number of ops or an unknown op.

    Example:
        >>> format_arch(["nor_conv_3x3"] * 6)
        '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|'
    """
    if isinstance(ops, str) or len(ops) != len(EDGES):
        raise InvalidArchitectureError(
            f"NB201 needs {len(EDGES)} ops (edges e01, e02, e12, e03, e13, e23), got {ops!r}"
        )
    for k, op in enumerate(ops):
        if op not in _OP_INDEX:
            raise InvalidArchitectureError(
                f"unknown op {op!r} at position {k} (edge e{EDGES[k][0]}{EDGES[k][1]}); valid ops: {', '.join(OPS)}"
            )
    return _format(tuple(ops))


def _format(ops: tuple[str, ...]) -> str:
    e01, e02, e12, e03, e13, e23 = ops
    return f"|{e01}~0|+|{e02}~0|{e12}~1|+|{e03}~0|{e13}~1|{e23}~2|"


@lru_cache(maxsize=1)
def all_archs() -> tuple[str, ...]:
    """All 15,625 canonical strings, in a fixed order (cached).

    The order is lexicographic over the encoding (op indices in :data:`OPS` order per
    canonical edge, ``e01`` varying slowest, ``e23`` fastest), so architecture ``i`` has
    encoding = the six base-5 digits of ``i``. It is *not* the benchmark's index order.
    """
    return tuple(_format(ops) for ops in itertools.product(OPS, repeat=len(EDGES)))


def sample_archs(n: int, seed: int) -> list[str]:
    """``n`` distinct architectures drawn uniformly without replacement (deterministic in ``seed``).

    Uses ``numpy.random.default_rng(seed).choice(15625, n, replace=False)`` over
    :func:`all_archs`, so the same ``(n, seed)`` gives the same list on every machine.

    Raises:
        InvalidArchitectureError: ``n`` is negative or larger than the space.
    """
    if isinstance(n, bool) or not isinstance(n, Integral) or n < 0:
        raise InvalidArchitectureError(f"the number of NB201 architectures to sample must be an integer >= 0, got {n!r}")
    if n > NUM_ARCHS:
        raise InvalidArchitectureError(
            f"cannot sample {n} distinct NB201 architectures: the space has {NUM_ARCHS}; ask for at most "
            f"{NUM_ARCHS}, or take all of them (proxybench score --all; in Python, iterate the space)"
        )
    rng = np.random.default_rng(seed)
    archs = all_archs()
    return [archs[i] for i in rng.choice(NUM_ARCHS, size=int(n), replace=False)]


# ----------------------------------------------------------------------------- isomorphism


def arch_uid(arch: str) -> str:
    """The benchmark's isomorphism key of ``arch`` (NB201's ``UniqueString``).

    The cell's output is written as an expression over the input ``0``, built node by node:
    an edge contributes ``#`` (a zero term) when its op is ``none`` or its source node's
    expression is exactly ``#``; ``skip_connect`` contributes its source's expression
    unchanged; any other op contributes ``(source)@op``. A node's expression is its terms
    sorted and joined with ``+`` (summation is commutative); the key is node 3's expression.
    So ``none`` edges drop out, nodes that reach the output only through ``none`` never
    appear, and skip connections are transparent, e.g.
    ``((0)@nor_conv_3x3)@avg_pool_3x3+(0)@nor_conv_3x3+0``.

    This is exactly the rule behind the benchmark's ``UniqueString`` (NAS-Bench-201's
    ``to_unique_str(consider_zero=True)``): the strings are identical, giving 6,466 classes
    over 15,625 architectures, and the key follows the benchmark so that per-class ground
    truth joins exactly. Equal keys mean the same function (taking an op applied to an
    all-zero node as zero, which holds at initialisation: BN's shift β starts at 0). The
    converse is the benchmark's, not the strictest one: it counts zero summands (``#+#+#``,
    ``#+#+#+#`` and ``#+#+(#+#)@avg_pool_3x3`` are all the zero function, yet three classes),
    collapses only a node that is exactly ``#``, and inserts a node's sorted sum into its
    successors as one string, so the same summands grouped differently across nodes stay
    apart (``#+#+0+(0)@nor_conv_1x1`` and ``#+#+(0)@nor_conv_1x1+0`` both compute
    x + conv1x1(x)). Flattening sums and dropping zeros would give 4,930 classes instead.

    Raises:
        InvalidArchitectureError: ``arch`` is malformed.
    """
    return _uid(parse_arch(arch))


@lru_cache(maxsize=None)
def _uid(ops: tuple[str, ...]) -> str:
    nodes = ["0"]
    for target in (1, 2, 3):
        terms = []
        for source in range(target):
            op, expr = ops[_EDGE_POS[(source, target)]], nodes[source]
            if op == "none" or expr == "#":
                terms.append("#")
            elif op == "skip_connect":
                terms.append(expr)
            else:
                terms.append(f"({expr})@{op}")
        nodes.append("+".join(sorted(terms)))
    return nodes[3]


def live_edges(arch: str) -> tuple[bool, ...]:
    """Which edges (canonical order) can change the cell's output.

    An edge is live when its op is not ``none``, its source is reached from node 0 along
    non-``none`` edges, and its target reaches node 3 along non-``none`` edges. Dead edges
    still exist as modules in the built network (as in the benchmark, so parameter counts
    match), but their parameters get no gradient. A cell with no live edge outputs zeros.
    """
    ops = parse_arch(arch)
    on = [ops[k] != "none" for k in range(len(EDGES))]
    reached = {0}
    for k in sorted(range(len(EDGES)), key=lambda k: EDGES[k]):  # sources in increasing order
        if on[k] and EDGES[k][0] in reached:
            reached.add(EDGES[k][1])
    reaches = {3}
    for k in sorted(range(len(EDGES)), key=lambda k: EDGES[k], reverse=True):
        if on[k] and EDGES[k][1] in reaches:
            reaches.add(EDGES[k][0])
    return tuple(on[k] and EDGES[k][0] in reached and EDGES[k][1] in reaches for k in range(len(EDGES)))


# ----------------------------------------------------------------------------- NASLib


def to_naslib_tuple(arch: str) -> tuple[int, ...]:
    """The NASLib / NAS-Bench-Suite-Zero op-index tuple of ``arch``.

    NASLib numbers ops ``0 skip_connect, 1 none, 2 nor_conv_3x3, 3 nor_conv_1x1,
    4 avg_pool_3x3`` (:data:`NASLIB_OPS`) and orders edges ``e01 e02 e03 e12 e13 e23``
    (:data:`NASLIB_EDGES`; NASLib's ``EDGE_LIST`` with 1-based nodes). Its
    ``zc_nasbench201.json`` keys are ``str()`` of this tuple.

    Example:
        >>> to_naslib_tuple("|nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|avg_pool_3x3~2|")
        (2, 1, 1, 0, 1, 4)
    """
    ops = parse_arch(arch)
    return tuple(NASLIB_OPS.index(ops[k]) for k in _NASLIB_TO_CANONICAL)


def from_naslib_tuple(indices: Sequence[int] | str) -> str:
    """The canonical string of a NASLib op-index tuple (inverse of :func:`to_naslib_tuple`).

    Args:
        indices: Six ints, or their ``str()`` as in NAS-Bench-Suite-Zero's JSON keys,
            e.g. ``"(0, 2, 3, 2, 3, 1)"``.

    Raises:
        InvalidArchitectureError: Not six integers in 0..4.
    """
    values: Sequence[object]
    if isinstance(indices, str):
        text = indices.strip()
        if not (text.startswith("(") and text.endswith(")")) and not (text.startswith("[") and text.endswith("]")):
            raise InvalidArchitectureError(
                f"NASLib op-index tuple {indices!r} must look like '(0, 2, 3, 2, 3, 1)'"
            )
        try:
            values = [int(part) for part in text[1:-1].split(",")]
        except ValueError:
            raise InvalidArchitectureError(
                f"NASLib op-index tuple {indices!r} must hold six integers, like '(0, 2, 3, 2, 3, 1)'"
            ) from None
    else:
        values = list(indices)
    if len(values) != len(EDGES):
        raise InvalidArchitectureError(
            f"NASLib op-index tuple {indices!r} has {len(values)} entries, needs {len(EDGES)}"
        )
    ops: list[str | None] = [None] * len(EDGES)
    for k, value in enumerate(values):
        if isinstance(value, bool) or not isinstance(value, Integral) or not 0 <= value < len(NASLIB_OPS):
            raise InvalidArchitectureError(
                f"NASLib op index {value!r} at position {k} of {indices!r} is out of range; valid: 0..4 "
                f"({', '.join(f'{i} {op}' for i, op in enumerate(NASLIB_OPS))})"
            )
        ops[_NASLIB_TO_CANONICAL[k]] = NASLIB_OPS[int(value)]
    return _format(tuple(ops))  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- the space


@register_space("nb201")
class NB201Space(SearchSpace):
    """NAS-Bench-201 as a :class:`SearchSpace`: six integer variables in ``0..4``.

    The encoding is the op index in :data:`OPS` order for each edge in canonical order, so
    ``decode(encode(a)) == parse(a)`` and the space is iterable (:func:`all_archs` order).

    Example:
        >>> space = get_space("nb201")
        >>> space.decode([3, 3, 3, 3, 3, 3]) == format_arch(["nor_conv_3x3"] * 6)
        True
    """

    name = "nb201"
    n_var = len(EDGES)

    def __init__(self) -> None:
        self.xl = np.zeros(self.n_var, dtype=np.int64)
        self.xu = np.full(self.n_var, len(OPS) - 1, dtype=np.int64)

    def parse(self, arch: str) -> str:
        """The canonical string of ``arch``: a canonical string (surrounding whitespace removed) or the
        ``str()`` of a NASLib op-index tuple, e.g. ``"(0, 2, 3, 2, 3, 1)"`` (:func:`from_naslib_tuple`).
        """
        if isinstance(arch, str) and arch.strip().startswith(("(", "[")):
            return from_naslib_tuple(arch)
        return _format(parse_arch(arch))

    def encode(self, arch: str) -> np.ndarray:
        """Op indices (in :data:`OPS` order) per canonical edge, as an int64 array."""
        return np.array([_OP_INDEX[op] for op in parse_arch(arch)], dtype=np.int64)

    def decode(self, x: Sequence[int] | np.ndarray) -> str:
        """The canonical string of an encoding; integral floats (pymoo) are accepted.

        Raises:
            InvalidArchitectureError: Wrong length, non-integral values or values outside 0..4.
        """
        try:
            values = None if isinstance(x, str) else np.asarray(x).ravel()
        except (TypeError, ValueError):  # ragged input
            values = None
        if values is None or values.size != self.n_var:
            raise InvalidArchitectureError(
                f"NB201 encoding {x!r} must have {self.n_var} integers in 0..4 (edges e01, e02, e12, e03, e13, e23)"
            )
        ops = []
        for k, value in enumerate(values.tolist()):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer():
                raise InvalidArchitectureError(
                    f"NB201 encoding value {value!r} at position {k} is not an integer; valid range 0..4"
                )
            if not 0 <= value <= len(OPS) - 1:
                raise InvalidArchitectureError(
                    f"NB201 encoding value {int(value)} at position {k} (edge e{EDGES[k][0]}{EDGES[k][1]}) is out "
                    f"of range; valid range 0..4 ({', '.join(f'{i} {op}' for i, op in enumerate(OPS))})"
                )
            ops.append(OPS[int(value)])
        return _format(tuple(ops))

    def uid(self, arch: str) -> str:
        """Isomorphism key (:func:`arch_uid`)."""
        return arch_uid(arch)

    def sample(self, n: int, seed: int) -> list[str]:
        """``n`` distinct architectures (:func:`sample_archs`)."""
        return sample_archs(n, seed)

    def smallest(self) -> str:
        """The cheapest architecture whose output depends on its input: every edge ``skip_connect``
        (cells without parameters or convolutions). The all-``none`` cell is cheaper still but
        disconnects the network, so its proxies are undefined. Part of a search's initial sample."""
        return format_arch(["skip_connect"] * 6)

    def largest(self) -> str:
        """The architecture with the most parameters and FLOPs: every edge ``nor_conv_3x3``."""
        return format_arch(["nor_conv_3x3"] * 6)

    def build(self, arch: str, num_classes: int = 10, *, bn: str = "all", channels: int = 16,
              cells_per_stage: int = 5) -> nn.Module:
        """A freshly initialised benchmark network (:class:`~proxybench.spaces.nb201_net.NB201Network`).

        Args:
            arch: NB201 string.
            num_classes: Output logits (10 CIFAR-10, 100 CIFAR-100, 120 ImageNet16-120).
            bn: ``"all"`` (the benchmark's network), ``"none"`` (no BatchNorm; NASLib's SynFlow
                copy) or ``"foresight"`` (zero-cost-nas's SynFlow copy); see
                :data:`~proxybench.spaces.nb201_net.BN_MODES`.
            channels: Stem width (the benchmark's 16). Proxies that score a network of their
                own (TE-NAS's linear regions on a thin copy) ask for others.
            cells_per_stage: Cells per stage (the benchmark's 5).
        """
        from proxybench.spaces.nb201_net import NB201Network  # torch-heavy; imported on use

        return NB201Network(parse_arch(arch), num_classes, bn=bn, channels=channels, cells_per_stage=cells_per_stage)

    def __iter__(self) -> Iterator[str]:
        return iter(all_archs())

    def __len__(self) -> int:
        return NUM_ARCHS
