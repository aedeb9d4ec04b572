"""The DARTS cell search space (Liu et al. 2019; NAS-Bench-301's space): genotypes, strings,
encodings, isomorphism key, sampling.

A DARTS architecture is a pair of cells, *normal* and *reduction*. Each cell has two inputs
(node 0: the output of the cell two back, node 1: of the previous cell) and four intermediate
nodes 2..5; node ``k`` sums two operations applied to two *different* earlier nodes
``j < k``, and the cell outputs the concatenation of nodes 2..5. The operations are the seven
of :data:`OPS` (DARTS's ``PRIMITIVES`` without ``none``, which no derived genotype uses). The
network that stacks the cells is :mod:`proxybench.spaces.darts_net`.

Spellings:

- **canonical string** (stored in every row)::

      normal=|sep_conv_3x3~0|sep_conv_3x3~1|+|...|+|...|+|...|;reduce=|max_pool_3x3~0|...|

  four ``+``-separated nodes per cell, each ``|op~j|op~j|`` with its two inputs in increasing
  ``j``. This is the one normalisation :func:`parse_arch` applies: the order in which a
  genotype lists a node's two inputs changes only the order of the modules (so which random
  numbers initialise which op), never the function, and NAS-Bench-301's data lists them in
  either order, so sorting them lets imported ground truth join on the string.
- **JSON** (:func:`to_json`): ``{"normal": [[op, j], ...8], "normal_concat": [2, 3, 4, 5],
  "reduce": [...], "reduce_concat": [2, 3, 4, 5]}``, the field names of DARTS's ``Genotype``.
- **Genotype repr**, as DARTS and NAS-Bench-301 print it (``Genotype(normal=[('sep_conv_3x3',
  0), ...], normal_concat=[2, 3, 4, 5], ...)``, ``range(2, 6)`` allowed), is parsed too.

The isomorphism key (:func:`arch_uid`) additionally forgets the numbering of the intermediate
nodes; see there for exactly what it proves.
"""

from __future__ import annotations

import ast
import itertools
import json
from collections.abc import Mapping, Sequence
from functools import lru_cache
from numbers import Integral
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from proxybench.errors import InvalidArchitectureError, InvalidSettingError
from proxybench.spaces._base import SearchSpace, register_space

if TYPE_CHECKING:  # torch is imported where a network is built, so listing spaces stays fast
    import torch

__all__ = [
    "OPS",
    "NUM_NODES",
    "CONCAT",
    "NETWORK_SETTINGS",
    "Genotype",
    "DARTS_V1",
    "DARTS_V2",
    "parse_arch",
    "format_arch",
    "to_json",
    "to_genotype",
    "arch_uid",
    "sample_archs",
    "DartsSpace",
]

OPS: tuple[str, ...] = (
    "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5",
)
"""The seven operations, in DARTS's ``PRIMITIVES`` order (``none`` dropped); the index is the op's gene value."""

NUM_NODES = 4
"""Intermediate nodes per cell (2..5)."""

CONCAT: tuple[int, ...] = (2, 3, 4, 5)
"""Nodes a cell concatenates into its output (every intermediate node, as in DARTS)."""

NETWORK_SETTINGS: dict[str, dict[str, Any]] = {
    "nb301": {"channels": 32, "layers": 8, "auxiliary": False},
    "darts": {"channels": 36, "layers": 20, "auxiliary": True},
}
"""Named network sizes: NAS-Bench-301's training network (C=32, 8 cells; the space's default)
and the DARTS paper's CIFAR-10 evaluation network (C=36, 20 cells, auxiliary head)."""

CellSpec = tuple[tuple[str, int], ...]  # eight (op, input) pairs, two per node


class Genotype(NamedTuple):
    """A DARTS genotype with the reference's field names (``cnn/genotypes.py``).

    ``normal``/``reduce`` hold eight ``(op, input)`` pairs, two per node 2..5, in the order the
    network builds their modules. The ``*_concat`` fields are always ``(2, 3, 4, 5)`` here.
    """

    normal: CellSpec
    normal_concat: tuple[int, ...]
    reduce: CellSpec
    reduce_concat: tuple[int, ...]


DARTS_V1 = Genotype(
    normal=(("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 0), ("sep_conv_3x3", 1),
            ("skip_connect", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 2)),
    normal_concat=CONCAT,
    reduce=(("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 0),
            ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("avg_pool_3x3", 0)),
    reduce_concat=CONCAT,
)
"""DARTS (first order), as listed in quark0/darts ``cnn/genotypes.py`` (module order kept)."""

DARTS_V2 = Genotype(
    normal=(("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)),
    normal_concat=CONCAT,
    reduce=(("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
            ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)),
    reduce_concat=CONCAT,
)
"""DARTS (second order), the paper's CIFAR-10 cell (quark0/darts ``cnn/genotypes.py``)."""

_CELLS = ("normal", "reduce")
_OP_INDEX = {op: i for i, op in enumerate(OPS)}
_EXPECTED = ("expected 'normal=|op~j|op~j|+|op~j|op~j|+|op~j|op~j|+|op~j|op~j|;reduce=...' (node k's inputs "
             "j < k distinct), a JSON genotype or a Genotype(...) repr")
# Input pairs of node k (k = 2..5), in the encoding's order.
_PAIRS: dict[int, tuple[tuple[int, int], ...]] = {
    k: tuple(itertools.combinations(range(k), 2)) for k in range(2, 2 + NUM_NODES)
}


# ----------------------------------------------------------------------------- parsing


def _fail(message: str) -> InvalidArchitectureError:
    return InvalidArchitectureError(message)


def _check_cell(cell: str, pairs: Any, source: str) -> CellSpec:
    """Validate one cell's eight ``(op, input)`` pairs and sort each node's two by input."""
    if isinstance(pairs, (str, bytes)) or not isinstance(pairs, Sequence) or len(pairs) != 2 * NUM_NODES:
        n = len(pairs) if isinstance(pairs, Sequence) and not isinstance(pairs, (str, bytes)) else type(pairs).__name__
        raise _fail(f"DARTS {cell} cell of {source} must list {2 * NUM_NODES} (op, input) pairs, two per node "
                    f"2..5, got {n}")
    out: list[tuple[str, int]] = []
    for position, pair in enumerate(pairs):
        node = 2 + position // 2
        if isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) != 2:
            raise _fail(f"DARTS {cell} cell, node {node}: entry {pair!r} of {source} is not an (op, input) pair")
        op, j = pair
        if op == "none":
            raise _fail(f"DARTS {cell} cell, node {node}: op 'none' is not in the space (no derived genotype "
                        f"uses it); valid ops: {', '.join(OPS)}")
        if op not in _OP_INDEX:
            raise _fail(f"DARTS {cell} cell, node {node}: unknown op {op!r}; valid ops: {', '.join(OPS)}")
        if isinstance(j, bool) or not isinstance(j, Integral) or not 0 <= j < node:
            raise _fail(f"DARTS {cell} cell, node {node}: input {j!r} is not an earlier node; valid inputs "
                        f"0..{node - 1} (0, 1: the cell's inputs)")
        out.append((str(op), int(j)))
    cells: list[tuple[str, int]] = []
    for k in range(NUM_NODES):
        a, b = out[2 * k], out[2 * k + 1]
        if a[1] == b[1]:
            raise _fail(f"DARTS {cell} cell, node {k + 2}: both inputs come from node {a[1]}; a node takes two "
                        "different inputs")
        cells.extend(sorted((a, b), key=lambda pair: pair[1]))
    return tuple(cells)


def _check_concat(cell: str, concat: Any, source: str) -> None:
    try:
        values = [int(v) for v in concat]
    except (TypeError, ValueError):
        values = None
    if values != list(CONCAT):
        raise _fail(f"DARTS {cell}_concat of {source} is {concat!r}; this space concatenates nodes 2..5 "
                    "([2, 3, 4, 5]) in every cell")


def _from_mapping(data: Mapping[str, Any], source: str) -> Genotype:
    unknown = sorted(set(data) - {"normal", "reduce", "normal_concat", "reduce_concat"})
    if unknown:
        raise _fail(f"DARTS genotype {source} has unknown field(s) {unknown}; fields: normal, normal_concat, "
                    "reduce, reduce_concat")
    cells = {}
    for cell in _CELLS:
        if cell not in data:
            raise _fail(f"DARTS genotype {source} lacks the {cell!r} cell; {_EXPECTED}")
        cells[cell] = _check_cell(cell, data[cell], source)
        if f"{cell}_concat" in data:
            _check_concat(cell, data[f"{cell}_concat"], source)
    return Genotype(cells["normal"], CONCAT, cells["reduce"], CONCAT)


def _literal(node: ast.expr, source: str) -> Any:
    """A literal, or ``range(a, b)`` (DARTS's genotypes write ``normal_concat=range(2, 6)``)."""
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range"
            and not node.keywords):
        return list(range(*(_literal(arg, source) for arg in node.args)))
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise _fail(f"DARTS genotype repr {source} holds a non-literal {ast.dump(node)[:60]}; {_EXPECTED}") from None


def _from_repr(text: str) -> Genotype:
    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError as exc:
        raise _fail(f"DARTS genotype repr {text[:80]!r}... does not parse ({exc.msg}); {_EXPECTED}") from None
    if not (isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name) and tree.func.id == "Genotype"):
        raise _fail(f"DARTS genotype repr {text[:80]!r} is not a Genotype(...) call; {_EXPECTED}")
    fields = ("normal", "normal_concat", "reduce", "reduce_concat")
    if len(tree.args) > len(fields):
        raise _fail(f"DARTS genotype repr has {len(tree.args)} positional fields, at most 4 ({', '.join(fields)})")
    data = {fields[i]: _literal(arg, "repr") for i, arg in enumerate(tree.args)}
    data.update({kw.arg or "**": _literal(kw.value, "repr") for kw in tree.keywords})
    return _from_mapping(data, "repr")


def _from_canonical(text: str) -> Genotype:
    parts = text.split(";")
    if len(parts) != 2:
        raise _fail(f"DARTS architecture {text!r} has {len(parts)} ';'-separated cell(s), needs 2; {_EXPECTED}")
    data: dict[str, Any] = {}
    for cell, part in zip(_CELLS, parts):
        name, sep, body = part.strip().partition("=")
        if not sep or name.strip() != cell:
            raise _fail(f"DARTS architecture {text!r}: cell {part[:20]!r}... must start with '{cell}='; {_EXPECTED}")
        nodes = body.strip().split("+")
        if len(nodes) != NUM_NODES:
            raise _fail(f"DARTS {cell} cell {body!r} has {len(nodes)} '+'-separated node(s), needs {NUM_NODES}; "
                        f"{_EXPECTED}")
        pairs: list[tuple[str, Any]] = []
        for k, group in enumerate(nodes, start=2):
            group = group.strip()
            edges = group[1:-1].split("|") if len(group) >= 2 and group[0] == group[-1] == "|" else []
            if len(edges) != 2:
                raise _fail(f"DARTS {cell} cell, node {k}: {group!r} must be '|op~j|op~j|'; {_EXPECTED}")
            for edge in edges:
                op, tilde, j = edge.partition("~")
                if not tilde or not j.isdigit():
                    raise _fail(f"DARTS {cell} cell, node {k}: edge {edge!r} must be 'op~j' with an input node "
                                f"index j; {_EXPECTED}")
                pairs.append((op, int(j)))
        data[cell] = pairs
    return _from_mapping(data, repr(text) if len(text) <= 60 else repr(text[:60] + "..."))


def to_genotype(arch: Any) -> Genotype:
    """The :class:`Genotype` of any spelling, each node's inputs sorted (see the module docstring).

    Args:
        arch: A canonical string, a JSON string, a ``Genotype(...)`` repr string, a mapping with
            the genotype's fields, or a genotype object (DARTS's namedtuple or :class:`Genotype`).

    Raises:
        InvalidArchitectureError: One line naming the cell, the node and what is wrong.

    Example:
        >>> to_genotype(DARTS_V2).normal[4:6]   # DARTS lists node 4 as (sep_conv_3x3, 1), (skip_connect, 0)
        (('skip_connect', 0), ('sep_conv_3x3', 1))
    """
    if isinstance(arch, str):
        text = arch.strip()
        if not text:
            raise _fail(f"DARTS architecture string is empty; {_EXPECTED}")
        if text.startswith("{"):
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise _fail(f"DARTS JSON genotype is not valid JSON ({exc.msg} at character {exc.pos}); "
                            f"{_EXPECTED}") from None
            if not isinstance(data, dict):
                raise _fail(f"DARTS JSON genotype must be an object, got {type(data).__name__}; {_EXPECTED}")
            return _from_mapping(data, "JSON")
        if text.startswith("Genotype("):
            return _from_repr(text)
        return _from_canonical(text)
    if isinstance(arch, Mapping):
        return _from_mapping(arch, "mapping")
    if all(hasattr(arch, f) for f in ("normal", "reduce")):
        data = {f: getattr(arch, f) for f in ("normal", "normal_concat", "reduce", "reduce_concat") if hasattr(arch, f)}
        return _from_mapping(data, type(arch).__name__)
    raise _fail(f"DARTS architecture must be a string, a mapping or a Genotype, got {type(arch).__name__}; "
                f"{_EXPECTED}")


def _format_cell(cell: CellSpec) -> str:
    return "+".join(f"|{cell[2 * k][0]}~{cell[2 * k][1]}|{cell[2 * k + 1][0]}~{cell[2 * k + 1][1]}|"
                    for k in range(NUM_NODES))


def format_arch(genotype: Genotype) -> str:
    """The canonical string of a *normalised* genotype (as :func:`to_genotype` returns)."""
    return f"normal={_format_cell(genotype.normal)};reduce={_format_cell(genotype.reduce)}"


def parse_arch(arch: Any) -> str:
    """The canonical string of ``arch`` (any spelling :func:`to_genotype` takes).

    Raises:
        InvalidArchitectureError: One line naming the cell, the node and what is wrong.

    Example:
        >>> parse_arch(DARTS_V1).split(";")[0]
        'normal=|sep_conv_3x3~0|sep_conv_3x3~1|+|skip_connect~0|sep_conv_3x3~1|+|skip_connect~0|sep_conv_3x3~1|+|sep_conv_3x3~0|skip_connect~2|'
    """
    return format_arch(to_genotype(arch))


def to_json(arch: Any) -> str:
    """The JSON form of ``arch`` (fields as DARTS's ``Genotype``; inputs sorted per node)."""
    g = to_genotype(arch)
    return json.dumps({"normal": [list(p) for p in g.normal], "normal_concat": list(CONCAT),
                       "reduce": [list(p) for p in g.reduce], "reduce_concat": list(CONCAT)},
                      separators=(",", ":"))


# ----------------------------------------------------------------------------- isomorphism


@lru_cache(maxsize=1)
def _relabelings() -> tuple[tuple[int, ...], ...]:
    """All orders of the four intermediate nodes (``order[new] = old``)."""
    return tuple(itertools.permutations(range(NUM_NODES)))


def _canonical_cell(cell: CellSpec) -> str:
    """The smallest string over every renumbering of the intermediate nodes that keeps each
    node's inputs earlier than itself (so the result is again a valid cell)."""
    best: str | None = None
    for order in _relabelings():
        new_of = {2 + old: 2 + new for new, old in enumerate(order)}
        new_of.update({0: 0, 1: 1})
        relabeled: list[tuple[str, int]] = []
        valid = True
        for new, old in enumerate(order):
            a, b = cell[2 * old], cell[2 * old + 1]
            pair = sorted(((a[0], new_of[a[1]]), (b[0], new_of[b[1]])), key=lambda p: p[1])
            if pair[1][1] >= 2 + new:
                valid = False
                break
            relabeled.extend(pair)
        if valid:
            text = _format_cell(tuple(relabeled))
            if best is None or text < best:
                best = text
    assert best is not None  # the identity order is always valid
    return best


def arch_uid(arch: Any) -> str:
    """The isomorphism key of ``arch``: a canonical string, itself a valid architecture.

    Per cell, the key is the lexicographically smallest canonical cell over every renumbering
    of the intermediate nodes 2..5 that keeps each node's inputs earlier than itself (at most
    4! = 24 orders), with each node's inputs sorted.

    What is proved (and tested in ``tests/test_darts_space.py`` by building both networks,
    mapping one's weights onto the other and comparing outputs): two architectures with equal
    keys differ only by (a) the order of a node's two inputs and (b) the numbering of the
    intermediate nodes, and both leave the network's function unchanged under a weight
    mapping. (a) swaps two modules and the two summands of a node (addition commutes: the
    outputs are bit-identical). (b) permutes the four ``C``-channel blocks of the cell's
    concatenated output; every consumer of a cell output (the next cell's ``preprocess1``, the
    cell after's ``preprocess0``, the auxiliary head, the classifier after global pooling)
    applies only per-channel operations (ReLU, pooling, spatial shift) before a channel-mixing
    1x1 convolution or linear layer, so permuting that layer's input channels the same way
    gives the same outputs (up to float summation order). Equal keys are therefore the same
    function family with a weight bijection, at every width, depth and initialisation.

    What is *not* claimed: different keys may still compute the same function (e.g. a pooling
    of a pooling, or cells whose differences cancel); the key merges only provable
    symmetries. Node expressions are not inlined into trees: a node read by two later nodes
    is not interchangeable with two copies of it, so inlining would merge different networks.

    Raises:
        InvalidArchitectureError: ``arch`` is malformed.
    """
    g = to_genotype(arch)
    return f"normal={_canonical_cell(g.normal)};reduce={_canonical_cell(g.reduce)}"


# ----------------------------------------------------------------------------- sampling


def _sample_cell(rng: np.random.Generator) -> CellSpec:
    pairs: list[tuple[str, int]] = []
    for k in range(2, 2 + NUM_NODES):
        inputs = sorted(int(j) for j in rng.choice(k, size=2, replace=False))
        ops = rng.integers(0, len(OPS), size=2)
        pairs.extend((OPS[int(o)], j) for o, j in zip(ops, inputs))
    return tuple(pairs)


def sample_archs(n: int, seed: int) -> list[str]:
    """``n`` distinct canonical strings drawn as DARTS's and NAS-Bench-301's random sampler draws.

    Per cell and node ``k``: two different inputs uniformly from ``0..k-1`` (``choice(k, 2,
    replace=False)``) and each of the two ops uniformly from the seven, independently; the
    normal cell first, then the reduction cell. Draws repeat until ``n`` distinct strings are
    collected (the space holds ~1.1e18, so repeats are rare), deterministic in ``seed``.

    Raises:
        InvalidArchitectureError: ``n`` is not a non-negative integer.
    """
    if isinstance(n, bool) or not isinstance(n, Integral) or n < 0:
        raise _fail(f"cannot sample {n!r} DARTS architectures: use an integer n >= 0")
    rng = np.random.default_rng(seed)
    seen: dict[str, None] = {}
    while len(seen) < n:
        normal = _sample_cell(rng)
        reduce = _sample_cell(rng)
        seen.setdefault(format_arch(Genotype(normal, CONCAT, reduce, CONCAT)), None)
    return list(seen)


# ----------------------------------------------------------------------------- the space


def _cell_genes(cell: CellSpec) -> list[int]:
    genes = [_OP_INDEX[cell[0][0]], _OP_INDEX[cell[1][0]]]  # node 2: inputs are always (0, 1)
    for k in range(1, NUM_NODES):
        a, b = cell[2 * k], cell[2 * k + 1]
        genes += [_PAIRS[k + 2].index((a[1], b[1])), _OP_INDEX[a[0]], _OP_INDEX[b[0]]]
    return genes


def _cell_bounds() -> list[int]:
    bounds = [len(OPS) - 1, len(OPS) - 1]
    for k in range(1, NUM_NODES):
        bounds += [len(_PAIRS[k + 2]) - 1, len(OPS) - 1, len(OPS) - 1]
    return bounds


_GENES_PER_CELL = len(_cell_bounds())  # 11


def _gene_name(position: int) -> str:
    cell = _CELLS[position // _GENES_PER_CELL]
    g = position % _GENES_PER_CELL
    if g < 2:
        return f"{cell} node 2 op of input {g}"
    node, part = 3 + (g - 2) // 3, (g - 2) % 3
    return f"{cell} node {node} " + ("input pair" if part == 0 else f"op of its {'lower' if part == 1 else 'higher'} input")


@register_space("darts")
class DartsSpace(SearchSpace):
    """The DARTS / NAS-Bench-301 cell space as a :class:`SearchSpace` (22 integer genes).

    Encoding, per cell (normal then reduction): node 2's two ops (its inputs are always 0, 1),
    then for nodes 3, 4, 5: the index of the input pair in ``itertools.combinations(range(k),
    2)`` order and the ops of the lower and the higher input. Every vector within ``[xl, xu]``
    is a valid architecture (no repair needed in a genetic search) and ``decode(encode(a)) ==
    parse(a)``.

    Args:
        channels: ``C`` of the network (stem ``3C``; 32 NAS-Bench-301, 36 DARTS evaluation).
        layers: Cells (8 NAS-Bench-301, 20 DARTS evaluation); reductions at ``layers // 3``
            and ``2 * layers // 3``.
        auxiliary: Build DARTS's auxiliary head (its parameters exist, ``forward`` still returns
            the main logits only; see :class:`~proxybench.spaces.darts_net.DartsNetwork`).
        preset: ``"nb301"`` or ``"darts"`` (:data:`NETWORK_SETTINGS`); explicit options win.

    Example:
        >>> space = get_space("darts", channels=8, layers=5)  # a small network for a CPU run
        >>> arch = space.sample(1, seed=0)[0]
        >>> space.decode(space.encode(arch)) == arch
        True
    """

    name = "darts"
    n_var = 2 * _GENES_PER_CELL

    def __init__(self, channels: int | None = None, layers: int | None = None, auxiliary: bool | None = None,
                 preset: str | None = None) -> None:
        if preset is not None and preset not in NETWORK_SETTINGS:
            raise InvalidSettingError(f"unknown DARTS network preset {preset!r}; valid: {', '.join(NETWORK_SETTINGS)}")
        base = NETWORK_SETTINGS[preset or "nb301"]
        self.channels = int(base["channels"] if channels is None else channels)
        self.layers = int(base["layers"] if layers is None else layers)
        self.auxiliary = bool(base["auxiliary"] if auxiliary is None else auxiliary)
        _check_size(self.channels, self.layers)
        self.xl = np.zeros(self.n_var, dtype=np.int64)
        self.xu = np.array(_cell_bounds() * 2, dtype=np.int64)

    def settings(self) -> dict[str, Any]:
        """The network size (recorded with every score and part of the resume key)."""
        return {"channels": self.channels, "layers": self.layers, "auxiliary": self.auxiliary}

    def parse(self, arch: Any) -> str:
        """The canonical string (:func:`parse_arch`)."""
        return parse_arch(arch)

    def to_json(self, arch: Any) -> str:
        """The JSON form (:func:`to_json`)."""
        return to_json(arch)

    def encode(self, arch: Any) -> np.ndarray:
        """The 22 genes of ``arch`` as an int64 array (layout in the class docstring)."""
        g = to_genotype(arch)
        return np.array(_cell_genes(g.normal) + _cell_genes(g.reduce), dtype=np.int64)

    def decode(self, x: Sequence[int] | np.ndarray) -> str:
        """The canonical string of a gene vector; integral floats (pymoo) are accepted.

        Raises:
            InvalidArchitectureError: Wrong length, a non-integer, or a gene outside its range
                (the message names the gene and its range).
        """
        try:
            values = None if isinstance(x, str) else np.asarray(x).ravel()
        except (TypeError, ValueError):
            values = None
        if values is None or values.size != self.n_var:
            raise _fail(f"DARTS encoding {x!r} must have {self.n_var} integers (11 per cell: node 2's two ops, "
                        "then input pair, lower op, higher op for nodes 3..5)")
        genes: list[int] = []
        for k, value in enumerate(values.tolist()):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer():
                raise _fail(f"DARTS encoding value {value!r} at position {k} ({_gene_name(k)}) is not an integer")
            if not self.xl[k] <= value <= self.xu[k]:
                raise _fail(f"DARTS encoding value {int(value)} at position {k} ({_gene_name(k)}) is out of range; "
                            f"valid range {self.xl[k]}..{self.xu[k]}")
            genes.append(int(value))
        cells = []
        for c in range(2):
            gs = genes[c * _GENES_PER_CELL:(c + 1) * _GENES_PER_CELL]
            pairs = [(OPS[gs[0]], 0), (OPS[gs[1]], 1)]
            for k in range(1, NUM_NODES):
                lo, hi = _PAIRS[k + 2][gs[2 + 3 * (k - 1)]]
                pairs += [(OPS[gs[3 + 3 * (k - 1)]], lo), (OPS[gs[4 + 3 * (k - 1)]], hi)]
            cells.append(tuple(pairs))
        return format_arch(Genotype(cells[0], CONCAT, cells[1], CONCAT))

    def uid(self, arch: Any) -> str:
        """Isomorphism key (:func:`arch_uid`)."""
        return arch_uid(arch)

    def sample(self, n: int, seed: int) -> list[str]:
        """``n`` distinct architectures (:func:`sample_archs`)."""
        return sample_archs(n, seed)

    def train_recipe(self, arch: Any, dataset: str) -> dict[str, Any]:
        """How a search's pick is trained (:func:`proxybench.search.loop.train_recipe` asks the space).

        FlatNAS's fine-tuning recipe, as for other spaces without a benchmark protocol: proxybench's
        trainer has no cutout, drop-path or auxiliary loss, so NAS-Bench-301's protocol is not
        offered. The command carries ``--space-option`` flags for this instance's network size, so
        ``proxybench evaluate`` rebuilds the network the search scored.
        """
        spec = "train:asam,rho=2,epochs=100,batch_size=128,lr=0.1,momentum=0.9,weight_decay=0.0005,schedule=cosine"
        flags = "".join(f" --space-option {key}={json.dumps(value)}" for key, value in self.settings().items())
        return {"dataset": dataset, "weights": spec,
                "note": "FlatNAS's fine-tuning (adaptive SAM, rho 2, over SGD lr 0.1, momentum 0.9, batch 128, wd "
                        "5e-4); NAS-Bench-301's protocol (cutout, drop-path, auxiliary loss) is not reproduced",
                "command": f"proxybench evaluate --space darts --arch '{self.parse(arch)}' --dataset {dataset} "
                           f"--weights '{spec}'{flags}"}

    def smallest(self) -> str:
        """Every op ``max_pool_3x3`` on inputs (0, 1): cells without parameters, so the network has
        only the stem, the preprocessing convolutions and the classifier. Part of a search's
        initial sample (the low end of a params/FLOPs objective)."""
        cell = tuple((OPS[0], j) for _ in range(NUM_NODES) for j in (0, 1))
        return format_arch(Genotype(cell, CONCAT, cell, CONCAT))

    def largest(self) -> str:
        """Every op ``sep_conv_5x5`` (the most parameters per op: 2(25C + C² + 2C)) on inputs (0, 1)."""
        cell = tuple(("sep_conv_5x5", j) for _ in range(NUM_NODES) for j in (0, 1))
        return format_arch(Genotype(cell, CONCAT, cell, CONCAT))

    def build(self, arch: Any, num_classes: int = 10, *, bn: str = "all", channels: int | None = None,
              layers: int | None = None, auxiliary: bool | None = None,
              cells_per_stage: int | None = None) -> "torch.nn.Module":
        """A freshly initialised DARTS ``NetworkCIFAR``
        (:class:`~proxybench.spaces.darts_net.DartsNetwork`) of the canonical genotype.

        Args:
            arch: Any spelling :func:`to_genotype` takes.
            num_classes: Logits of the classifier.
            bn: ``"all"``, ``"none"`` or ``"foresight"`` (both: no BatchNorm; see
                :data:`~proxybench.spaces.darts_net.BN_MODES`).
            channels, layers, auxiliary: Override the space's size.
            cells_per_stage: Normal cells per stage ``k``, i.e. ``layers = 3k + 2`` (NB301's 8
                cells are k = 2, DARTS's 20 are k = 6): the NB201 builder's keyword, which
                proxies that build thin networks of their own (TE-NAS) pass.

        Raises:
            InvalidArchitectureError: ``arch`` is malformed.
            InvalidSettingError: Unknown ``bn``, ``num_classes`` < 1, too few layers.
        """
        from proxybench.spaces.darts_net import BN_MODES, DartsNetwork  # torch-heavy; imported on use

        genotype = to_genotype(arch)
        if bn not in BN_MODES:
            raise InvalidSettingError(f"unknown DARTS bn mode {bn!r}; valid: {', '.join(BN_MODES)}")
        if isinstance(num_classes, bool) or not isinstance(num_classes, Integral) or num_classes < 1:
            raise InvalidSettingError(f"num_classes must be a positive integer, got {num_classes!r}")
        c = self.channels if channels is None else int(channels)
        if cells_per_stage is not None and layers is not None:
            raise InvalidSettingError("give DARTS build either layers or cells_per_stage (= (layers - 2) / 3), not both")
        n = self.layers if layers is None else int(layers)
        if cells_per_stage is not None:
            n = 3 * int(cells_per_stage) + 2
        _check_size(c, n)
        return DartsNetwork(genotype, int(num_classes), channels=c, layers=n,
                            auxiliary=self.auxiliary if auxiliary is None else bool(auxiliary), bn=bn)


def _check_size(channels: int, layers: int) -> None:
    if channels < 1:
        raise InvalidSettingError(f"DARTS channels must be a positive integer, got {channels}")
    if layers < 2:
        raise InvalidSettingError(f"DARTS layers must be >= 2 (reduction cells at layers//3 and 2*layers//3 must "
                                  f"differ), got {layers}")
