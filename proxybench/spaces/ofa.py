"""The Once-for-All MobileNetV3 search space (FlatNAS / CNAS, MSuNAS, NSGANetV2).

Architectures are subnets of the OFA MobileNetV3 supernet ``ofa_mbv3_d234_e346_k357_w1.0``
(the ``ofa`` package's ``OFAMobileNetV3`` with ``width_mult=1.0``, ``ks_list=[3, 5, 7]``,
``expand_ratio_list=[3, 4, 6]``, ``depth_list=[2, 3, 4]``): after a fixed stem, five stages of
up to four MBConv blocks ("slots"), each stage with its own depth and each active slot with
its own kernel size and expand ratio, plus the input resolution.

**Readable form** (the canonical architecture string used in tables, ``uid`` and ``parse``):
compact JSON with sorted keys that lists only the active slots::

    {"resolution":160,"stages":[{"depth":2,"expand":[3,6],"kernel":[5,3]}, ... 5 stages]}

**Integer encoding** (``encode``/``decode``/``canonical``; 46 genes, MSuNAS's layout): per stage,
one depth index then four kernel indices then four expand indices, then one resolution index::

    [d0, k0 k1 k2 k3, e0 e1 e2 e3,  d1, ...,  d4, k..., e...,  r]

with values indexing :data:`DEPTHS` (2, 3, 4), :data:`KERNELS` (3, 5, 7), :data:`EXPANDS`
(3, 4, 6) and the space's resolution list (default 128..224 step 4, 25 values; settable, e.g. a
small list for CPU runs). A stage of depth ``d`` uses its first ``d`` slots; the other slots are
*inactive* and are 0 in a canonical genome. :meth:`OFASpace.canonical` rounds, clips, decodes and
re-encodes, so a surrogate never sees two genomes for one network.

**Subnet extraction** (:meth:`OFASpace.build`). ``OFAMobileNetV3.set_active_subnet(ks, e, d)``
(``ofa/imagenet_classification/elastic_nn/networks/ofa_mbv3.py``) assigns kernel sizes and
expand ratios *per slot, by position*: ``val2list`` returns a list unchanged (no padding, no
length check) and ``zip(self.blocks[1:], ks, expand_ratio)`` sets ``active_kernel_size`` /
``active_expand_ratio`` on blocks 1..len(list) and stops there, so any block past the end of the
list keeps whatever the *previous* call set (``None`` entries are skipped the same way). Depth
only sets ``runtime_depth[stage]``; blocks beyond it are skipped by ``forward`` and by
``get_active_subnet``, so the values in inactive slots have no effect *when every list has one
entry per slot (20)*. The public CNAS/MSuNAS code passes the compact lists of active values only
(length ``sum(depths)``): those values land on the wrong blocks (stage 2's first kernel goes to
stage 1's third slot, ...) and the tail blocks keep the previous candidate's settings, so the
extracted network depends on what was evaluated before. Here every list has 20 entries, the
inactive slots filled with the fixed value 3 (:func:`subnet_settings`), so the supernet's state
after the call, and the subnet, are functions of the genome alone. The subnet comes from
``get_active_subnet(preserve_weight=True)``; its 1000-way ImageNet head is replaced by a fresh,
seeded ``Linear(1280, num_classes)`` (CNAS keeps the first ``num_classes`` rows of the ImageNet
head; DESIGN.md §7 asks for a reset).

**Weights.** A supernet state dict (``--supernet-weights PATH``), the ``ofa`` model zoo file
(``supernet="zoo"``, downloaded once into ``torch.hub.get_dir()/ofa_nets``), or, only when asked
(``random_init=True``, ``--random-init``), PyTorch's default initialisation; :meth:`OFASpace.weights_info`
says which, for a run's metadata.

**Cost.** :meth:`OFASpace.cost` gives (params, MACs) in millions with the ``ofa`` counters
(``ofa.utils.count_parameters``, ``ofa.utils.count_net_flops`` at the architecture's resolution),
cached per canonical architecture in memory and optionally in a JSON file.
"""

from __future__ import annotations

import json
import os
from itertools import pairwise
import threading
from types import SimpleNamespace
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from numbers import Integral
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from proxybench.errors import InvalidArchitectureError, InvalidSettingError, ProxybenchError
from proxybench.spaces._base import SearchSpace, register_space

if TYPE_CHECKING:  # torch is imported where a network is built: encoding, sampling and parsing work without it
    import torch
    from torch import nn

__all__ = [
    "SUPERNET_ID",
    "ZOO",
    "ZOO_URL",
    "DEPTHS",
    "KERNELS",
    "EXPANDS",
    "NUM_STAGES",
    "MAX_DEPTH",
    "STAGE_GENES",
    "INACTIVE_FILL",
    "DEFAULT_RESOLUTIONS",
    "BN_MODES",
    "OFASpace",
    "CostCacheInfo",
    "subnet_settings",
    "recalibrate_bn",
]

SUPERNET_ID = "ofa_mbv3_d234_e346_k357_w1.0"
"""The ``ofa`` model-zoo name of the supernet this space is defined on."""

ZOO = "zoo"
"""``supernet=ZOO`` downloads :data:`SUPERNET_ID`'s ImageNet weights from the ``ofa`` model zoo."""

ZOO_URL = "https://raw.githubusercontent.com/han-cai/files/master/ofa/ofa_nets/" + SUPERNET_ID
"""Where ``ofa.model_zoo.ofa_net`` downloads :data:`SUPERNET_ID` from."""

DEPTHS: tuple[int, ...] = (2, 3, 4)
KERNELS: tuple[int, ...] = (3, 5, 7)
EXPANDS: tuple[int, ...] = (3, 4, 6)
NUM_STAGES = 5
MAX_DEPTH = 4
STAGE_GENES = 1 + 2 * MAX_DEPTH  # depth, 4 kernels, 4 expands
N_VAR = NUM_STAGES * STAGE_GENES + 1  # 46
DEFAULT_RESOLUTIONS: tuple[int, ...] = tuple(range(128, 225, 4))  # 128..224, 25 values
INACTIVE_FILL = 3
"""Kernel size and expand ratio given to ``set_active_subnet`` for inactive slots (any legal value
works; a fixed one makes the supernet's state a function of the genome)."""

BN_MODES: dict[str, str] = {
    "all": "the OFA subnet as extracted (BatchNorm after every conv but the feature-mix 1x1)",
    "none": "every BatchNorm replaced by Identity (NASLib's SynFlow copy)",
    "foresight": "same as 'none': zero-cost-nas builds SynFlow's copy of a non-NB201 network without BatchNorm",
}

#: The ``ofa`` release the space is written and tested against (a core dependency of proxybench).
OFA_REQUIREMENT = "ofa==0.1.0.post202307202001"
_INSTALL_HINT = (f"the OFA search space needs the 'ofa' package (a dependency of proxybench): "
                 f"pip install {OFA_REQUIREMENT}")
_WEIGHTS_HINT = (
    f"pass --supernet-weights PATH (a state dict of {SUPERNET_ID}; supernet=PATH in Python), "
    f"--supernet-weights {ZOO} to download it from the ofa model zoo, or --random-init to use untrained "
    "random weights (random_init=True)"
)
_EXPECTED = (
    'expected JSON like {"resolution":R,"stages":[{"depth":D,"expand":[..D values],"kernel":[..D values]}, '
    f"x{NUM_STAGES}]}} with depth in {DEPTHS}, kernel in {KERNELS}, expand in {EXPANDS}"
)


def _ofa() -> Any:
    """The ``ofa`` modules this space uses (imported on first use)."""
    from torch import nn
    try:
        from ofa.imagenet_classification.elastic_nn.networks import OFAMobileNetV3
        from ofa.imagenet_classification.networks import MobileNetV3
        from ofa.utils import count_net_flops, count_parameters
        from ofa.utils.layers import LinearLayer
    except ImportError as error:
        raise ProxybenchError(f"{_INSTALL_HINT} ({error})") from None

    global _SUBNET_CLASS
    if _SUBNET_CLASS is None:

        class OFASubnet(MobileNetV3):
            """``ofa``'s MobileNetV3 with ``nn.Module.load_state_dict`` (strict, missing/unexpected keys).

            ``MobileNetV3.load_state_dict`` renames old checkpoint keys, asserts on any other
            unknown key, ignores ``strict`` and returns nothing, which breaks loading a network's
            weights into its BatchNorm-free copy (``strict=False``).
            """

            load_state_dict = nn.Module.load_state_dict

        OFASubnet.__module__, OFASubnet.__qualname__ = __name__, "OFASubnet"  # picklable (see __getattr__)
        _SUBNET_CLASS = OFASubnet
    return SimpleNamespace(
        OFAMobileNetV3=OFAMobileNetV3, MobileNetV3=MobileNetV3, OFASubnet=_SUBNET_CLASS,
        count_net_flops=count_net_flops, count_parameters=count_parameters, LinearLayer=LinearLayer,
    )


_SUBNET_CLASS: type | None = None


def __getattr__(name: str) -> Any:
    """``OFASubnet`` (the class of :meth:`OFASpace.build`'s networks), created on first use with ``ofa``."""
    if name == "OFASubnet":
        return _ofa().OFASubnet
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ----------------------------------------------------------------------------- readable form


def _format(resolution: int, stages: Sequence[tuple[int, tuple[int, ...], tuple[int, ...]]]) -> str:
    return json.dumps(
        {"resolution": resolution,
         "stages": [{"depth": d, "kernel": list(k), "expand": list(e)} for d, k, e in stages]},
        sort_keys=True, separators=(",", ":"),
    )


def _is_int(value: object) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def _parse(arch: str | Mapping[str, Any], resolutions: Sequence[int]) -> tuple[int, tuple]:
    """``(resolution, ((depth, kernels, expands), ...))`` of a readable architecture."""
    if isinstance(arch, str):
        text = arch.strip()
        if not text:
            raise InvalidArchitectureError(f"OFA architecture string is empty; {_EXPECTED}")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise InvalidArchitectureError(f"OFA architecture {text[:80]!r} is not JSON ({error.msg}); {_EXPECTED}") from None
    elif isinstance(arch, Mapping):
        data = arch
    else:
        raise InvalidArchitectureError(
            f"OFA architecture must be a JSON string or a dict, got {type(arch).__name__}; {_EXPECTED}"
        )
    if not isinstance(data, Mapping) or set(data) != {"resolution", "stages"}:
        keys = sorted(data) if isinstance(data, Mapping) else type(data).__name__
        raise InvalidArchitectureError(f"OFA architecture needs exactly the keys 'resolution' and 'stages', got {keys}; {_EXPECTED}")
    resolution = data["resolution"]
    if not _is_int(resolution) or resolution not in resolutions:
        raise InvalidArchitectureError(
            f"OFA resolution {resolution!r} is not in this space's resolutions "
            f"({_describe_resolutions(resolutions)}); set OFASpace(resolutions=...) (on the command line "
            "--resolution: MIN:MAX:STEP for score and search, the architecture's R for evaluate) to change them"
        )
    stages = data["stages"]
    if not isinstance(stages, Sequence) or isinstance(stages, str) or len(stages) != NUM_STAGES:
        raise InvalidArchitectureError(f"OFA 'stages' must be a list of {NUM_STAGES} stages, got {stages!r}; {_EXPECTED}")
    parsed = []
    for s, stage in enumerate(stages):
        if not isinstance(stage, Mapping) or set(stage) != {"depth", "kernel", "expand"}:
            raise InvalidArchitectureError(
                f"OFA stage {s} must have exactly the keys 'depth', 'kernel', 'expand', got {stage!r}; {_EXPECTED}"
            )
        depth = stage["depth"]
        if not _is_int(depth) or depth not in DEPTHS:
            raise InvalidArchitectureError(f"OFA stage {s} depth {depth!r} is not one of {DEPTHS}")
        genes = []
        for key, allowed in (("kernel", KERNELS), ("expand", EXPANDS)):
            values = stage[key]
            if not isinstance(values, Sequence) or isinstance(values, str) or len(values) != depth:
                raise InvalidArchitectureError(
                    f"OFA stage {s} {key} must list one value per active block ({depth}), got {values!r}"
                )
            for value in values:
                if not _is_int(value) or value not in allowed:
                    raise InvalidArchitectureError(f"OFA stage {s} {key} {value!r} is not one of {allowed}")
            genes.append(tuple(int(v) for v in values))
        parsed.append((int(depth), genes[0], genes[1]))
    return int(resolution), tuple(parsed)


def _describe_resolutions(resolutions: Sequence[int]) -> str:
    values = list(resolutions)
    steps = {b - a for a, b in pairwise(values)}
    if len(values) > 4 and len(steps) == 1:
        return f"{values[0]}..{values[-1]} step {steps.pop()}"
    return ", ".join(map(str, values))


def subnet_settings(arch: str | Mapping[str, Any], resolutions: Sequence[int] = DEFAULT_RESOLUTIONS) -> dict[str, list[int]]:
    """The per-slot arguments of ``OFAMobileNetV3.set_active_subnet`` for ``arch``.

    Returns:
        ``{"ks": 20 kernel sizes, "e": 20 expand ratios, "d": 5 depths}``, one entry per slot
        (4 per stage); inactive slots hold :data:`INACTIVE_FILL`, so no value of a previously
        active subnet survives the call (see the module docstring).

    Example:
        >>> s = subnet_settings(OFASpace().smallest())
        >>> len(s["ks"]), len(s["e"]), s["d"]
        (20, 20, [2, 2, 2, 2, 2])
    """
    _, stages = _parse(arch, resolutions)
    ks: list[int] = []
    e: list[int] = []
    for depth, kernels, expands in stages:
        pad = [INACTIVE_FILL] * (MAX_DEPTH - depth)
        ks += list(kernels) + pad
        e += list(expands) + pad
    return {"ks": ks, "e": e, "d": [depth for depth, _, _ in stages]}


# ----------------------------------------------------------------------------- BN recalibration


def recalibrate_bn(net: nn.Module, batches: Iterable[Any], *, device: torch.device | str | None = None) -> nn.Module:
    """Recompute every BatchNorm's running statistics from ``batches`` (in place).

    Running statistics are reset, momentum set to ``None`` (an exact average over the batches,
    as ``ofa``'s ``set_running_statistics`` does), and the batches forwarded in train mode
    without gradients; momenta and the training flag are restored afterwards. A supernet
    subnet needs this: the statistics it inherits belong to the supernet's other paths.

    Args:
        net: Any network; a network without BatchNorm is returned unchanged.
        batches: Input tensors, or ``(inputs, labels, ...)`` tuples whose first item is used.
        device: Where to move each batch; default: the device of ``net``'s first parameter.

    Returns:
        ``net``.

    Raises:
        InvalidSettingError: ``batches`` is empty.
    """
    import torch
    from torch import nn
    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not norms:
        return net
    if device is None:
        first = next(net.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
    momenta = [m.momentum for m in norms]
    training = net.training
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    seen = 0
    try:
        net.train()
        with torch.no_grad():
            for batch in batches:
                x = batch[0] if isinstance(batch, (tuple, list)) else batch
                net(x.to(device))
                seen += 1
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        net.train(training)
    if seen == 0:
        raise InvalidSettingError("BN recalibration got no batches; pass at least one training batch")
    return net


def _remove_bn(net: nn.Module) -> nn.Module:
    from torch import nn
    for parent in list(net.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.modules.batchnorm._BatchNorm):
                setattr(parent, name, nn.Identity())
    return net


# ----------------------------------------------------------------------------- the space


class CostCacheInfo(NamedTuple):
    """Hit and miss counts of :meth:`OFASpace.cost` (like ``functools.lru_cache``'s)."""

    hits: int
    misses: int
    currsize: int


@register_space("ofa")
class OFASpace(SearchSpace):
    """The OFA MobileNetV3 space: 46 integer genes, readable JSON strings, subnets of the supernet.

    Args:
        resolutions: Allowed input resolutions, ascending (default 128..224 step 4; a small list
            such as ``(32, 64)`` makes CPU runs and tests cheap). The resolution gene indexes it.
        supernet_weights: Default for :meth:`build`'s ``supernet`` (a state-dict path or
            :data:`ZOO`); the CLI's ``--supernet-weights``.
        random_init: Default for :meth:`build`'s ``random_init`` (``--random-init``).
        cost_cache: Optional JSON file that keeps :meth:`cost` results across runs.

    Example:
        >>> space = OFASpace(resolutions=(32, 64))
        >>> arch = space.sample(1, seed=0)[0]
        >>> space.decode(space.encode(arch)) == arch
        True
        >>> net = space.build(arch, 10, random_init=True)  # untrained: say so in the run's metadata
    """

    name = "ofa"
    n_var = N_VAR

    def __init__(
        self,
        resolutions: Sequence[int] | None = None,
        *,
        supernet_weights: str | os.PathLike[str] | None = None,
        random_init: bool = False,
        cost_cache: str | os.PathLike[str] | None = None,
    ) -> None:
        values = list(DEFAULT_RESOLUTIONS if resolutions is None else resolutions)
        if not values or any(not _is_int(r) or r < 32 for r in values) or values != sorted(set(values)):
            raise InvalidSettingError(
                f"OFA resolutions {values!r} must be distinct integers >= 32 in ascending order, e.g. 128..224 step 4"
            )
        self.resolutions: tuple[int, ...] = tuple(int(r) for r in values)
        self.supernet_weights = supernet_weights
        self.random_init = bool(random_init)
        self.cost_cache = None if cost_cache is None else Path(cost_cache)
        self.xl = np.zeros(self.n_var, dtype=np.int64)
        self.xu = self.gene_bounds()
        self._lock = threading.RLock()
        self._supernets: OrderedDict[tuple, nn.Module] = OrderedDict()
        self._structure: nn.Module | None = None
        self._costs: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._cost_hits = 0
        self._cost_misses = 0
        self._cost_file_loaded = False

    def settings(self) -> dict[str, Any]:
        """Resolutions and where the supernet weights come from (recorded with every score)."""
        weights = self.supernet_weights
        return {"resolutions": list(self.resolutions),
                "supernet_weights": None if weights is None else str(weights),
                "random_init": self.random_init}

    # ------------------------------------------------------------------ strings and genomes

    def gene_bounds(self) -> np.ndarray:
        """Per-gene inclusive upper bounds (lower bounds are 0): 2 for stage genes, the resolution gene its own."""
        bounds = np.full(self.n_var, len(DEPTHS) - 1, dtype=np.int64)
        for s in range(NUM_STAGES):
            base = s * STAGE_GENES
            bounds[base + 1: base + 1 + MAX_DEPTH] = len(KERNELS) - 1
            bounds[base + 1 + MAX_DEPTH: base + STAGE_GENES] = len(EXPANDS) - 1
        bounds[-1] = len(self.resolutions) - 1
        return bounds

    @property
    def size(self) -> int:
        """Number of distinct architectures (canonical genomes)."""
        per_stage = sum((len(KERNELS) * len(EXPANDS)) ** d for d in DEPTHS)
        return per_stage**NUM_STAGES * len(self.resolutions)

    def parse(self, arch: str | Mapping[str, Any]) -> str:
        """The canonical string of ``arch`` (a readable JSON string or dict in any key order / spacing).

        Raises:
            InvalidArchitectureError: One line naming what is wrong.
        """
        resolution, stages = _parse(arch, self.resolutions)
        return _format(resolution, stages)

    def format(self, arch: str | Mapping[str, Any]) -> str:
        """Alias of :meth:`parse` for dicts: the canonical string (compact JSON, sorted keys)."""
        return self.parse(arch)

    def to_dict(self, arch: str | Mapping[str, Any]) -> dict[str, Any]:
        """The readable form as a dict: ``{"resolution": r, "stages": [{"depth", "kernel", "expand"}, ...]}``."""
        return json.loads(self.parse(arch))

    def encode(self, arch: str | Mapping[str, Any]) -> np.ndarray:
        """The canonical 46-gene int64 genome of ``arch`` (inactive slots 0)."""
        resolution, stages = _parse(arch, self.resolutions)
        genome = np.zeros(self.n_var, dtype=np.int64)
        for s, (depth, kernels, expands) in enumerate(stages):
            base = s * STAGE_GENES
            genome[base] = DEPTHS.index(depth)
            for slot, (k, e) in enumerate(zip(kernels, expands)):
                genome[base + 1 + slot] = KERNELS.index(k)
                genome[base + 1 + MAX_DEPTH + slot] = EXPANDS.index(e)
        genome[-1] = self.resolutions.index(resolution)
        return genome

    def _values(self, x: Sequence[float] | np.ndarray) -> np.ndarray:
        try:
            values = None if isinstance(x, (str, Mapping)) else np.asarray(x, dtype=float).ravel()
        except (TypeError, ValueError):
            values = None
        if values is None or values.size != self.n_var:
            raise InvalidArchitectureError(
                f"OFA genome must have {self.n_var} numbers ({NUM_STAGES} stages x [depth, 4 kernel, 4 expand] "
                f"+ resolution), got {x!r}"
            )
        if not np.all(np.isfinite(values)):
            raise InvalidArchitectureError(f"OFA genome has non-finite values at positions {np.flatnonzero(~np.isfinite(values)).tolist()}")
        return values

    def decode(self, x: Sequence[int] | np.ndarray) -> str:
        """The canonical string of a genome; integral floats (pymoo) are accepted, inactive slots ignored.

        Raises:
            InvalidArchitectureError: Wrong length, non-integral values or values outside
                ``[0, gene_bounds()]`` (use :meth:`canonical` to round and clip first).
        """
        values = self._values(x)
        bad = np.flatnonzero(values != np.rint(values))
        if bad.size:
            raise InvalidArchitectureError(
                f"OFA genome value {values[bad[0]]!r} at position {bad[0]} is not an integer "
                "(round with OFASpace.canonical first)"
            )
        bad = np.flatnonzero((values < self.xl) | (values > self.xu))
        if bad.size:
            k = int(bad[0])
            raise InvalidArchitectureError(
                f"OFA genome value {int(values[k])} at position {k} ({self._gene_name(k)}) is out of range; "
                f"valid range 0..{int(self.xu[k])}"
            )
        return self._format_genome(values.astype(np.int64))

    def decode_dict(self, x: Sequence[int] | np.ndarray) -> dict[str, Any]:
        """The readable dict of a genome (:meth:`decode` then :meth:`to_dict`)."""
        return json.loads(self.decode(x))

    def _format_genome(self, genome: np.ndarray) -> str:
        stages = []
        for s in range(NUM_STAGES):
            base = s * STAGE_GENES
            depth = DEPTHS[int(genome[base])]
            kernels = tuple(KERNELS[int(i)] for i in genome[base + 1: base + 1 + depth])
            expands = tuple(EXPANDS[int(i)] for i in genome[base + 1 + MAX_DEPTH: base + 1 + MAX_DEPTH + depth])
            stages.append((depth, kernels, expands))
        return _format(self.resolutions[int(genome[-1])], stages)

    def _gene_name(self, k: int) -> str:
        if k == self.n_var - 1:
            return "resolution"
        stage, offset = divmod(k, STAGE_GENES)
        if offset == 0:
            return f"stage {stage} depth"
        if offset <= MAX_DEPTH:
            return f"stage {stage} kernel slot {offset - 1}"
        return f"stage {stage} expand slot {offset - 1 - MAX_DEPTH}"

    def canonical(self, x: Sequence[float] | np.ndarray) -> np.ndarray:
        """Round, clip to the per-gene bounds, decode and re-encode: the canonical int64 genome.

        Every genome should pass through here before a surrogate or an archive sees it, so that
        one network has one genome (inactive slots are 0).

        Raises:
            InvalidArchitectureError: Wrong length or non-finite values.
        """
        values = np.clip(np.rint(self._values(x)), self.xl, self.xu).astype(np.int64)
        return self.encode(self._format_genome(values))

    def uid(self, arch: str | Mapping[str, Any]) -> str:
        """The canonical string (two canonical genomes never build the same subnet)."""
        return self.parse(arch)

    def input_resolution(self, arch: str | Mapping[str, Any]) -> int:
        """The input resolution (pixels) of ``arch``."""
        return _parse(arch, self.resolutions)[0]

    def smallest(self, resolution: int | None = None) -> str:
        """Depth 2, kernel 3, expand 3 everywhere; the smallest resolution unless given."""
        r = self.resolutions[0] if resolution is None else resolution
        return self.parse({"resolution": r, "stages": [{"depth": 2, "kernel": [3, 3], "expand": [3, 3]}] * NUM_STAGES})

    def largest(self, resolution: int | None = None) -> str:
        """Depth 4, kernel 7, expand 6 everywhere; the largest resolution unless given."""
        r = self.resolutions[-1] if resolution is None else resolution
        return self.parse({"resolution": r, "stages": [{"depth": 4, "kernel": [7] * 4, "expand": [6] * 4}] * NUM_STAGES})

    def sample(self, n: int, seed: int, *, by: str = "arch") -> list[str]:
        """``n`` distinct architectures, deterministic in ``seed`` (``numpy.random.default_rng``).

        Args:
            n: How many.
            seed: Seed of the numpy Generator.
            by: ``"arch"`` (default): uniform over distinct architectures (canonical genomes), so
                a stage has depth d with probability 9^d / (9^2 + 9^3 + 9^4), mostly 4.
                ``"gene"``: every gene uniform (depth uniform over 2, 3, 4), as MSuNAS / CNAS
                draw their initial population.

        Raises:
            InvalidArchitectureError: ``n`` is negative or not an integer, or ``by`` is unknown.
        """
        if isinstance(n, bool) or not isinstance(n, Integral) or n < 0:
            raise InvalidArchitectureError(f"cannot sample {n!r} OFA architectures: use an integer n >= 0")
        if by not in ("arch", "gene"):
            raise InvalidArchitectureError(f"unknown OFA sampling mode {by!r}; use 'arch' or 'gene'")
        rng = np.random.default_rng(seed)
        counts = np.array([(len(KERNELS) * len(EXPANDS)) ** d for d in DEPTHS], dtype=float)
        p_depth = counts / counts.sum() if by == "arch" else None
        found: dict[str, None] = {}
        while len(found) < n:
            genome = np.zeros(self.n_var, dtype=np.int64)
            for s in range(NUM_STAGES):
                base = s * STAGE_GENES
                d_index = int(rng.choice(len(DEPTHS), p=p_depth))
                depth = DEPTHS[d_index]
                genome[base] = d_index
                genome[base + 1: base + 1 + depth] = rng.integers(0, len(KERNELS), size=depth)
                genome[base + 1 + MAX_DEPTH: base + 1 + MAX_DEPTH + depth] = rng.integers(0, len(EXPANDS), size=depth)
            genome[-1] = rng.integers(0, len(self.resolutions))
            found.setdefault(self._format_genome(genome), None)
        return list(found)

    # ------------------------------------------------------------------ supernet and subnets

    def weights_info(self, supernet: Any = None, random_init: bool | None = None) -> dict[str, Any]:
        """Where :meth:`build`'s weights come from, for a run's metadata.

        Raises:
            InvalidSettingError: Neither weights nor ``random_init`` (the same error as :meth:`build`).
        """
        from torch import nn
        source, random = self._resolve(supernet, random_init)
        info: dict[str, Any] = {"supernet_id": SUPERNET_ID, "head": "reset", "random_init": random}
        if random:
            info["supernet_weights"] = None
            info["note"] = "untrained supernet (--random-init): scores are not those of the trained OFA supernet"
        elif isinstance(source, nn.Module):
            info["supernet_weights"] = f"<in-memory {type(source).__name__}>"
        else:
            info["supernet_weights"] = str(source)
        return info

    def check_build(self) -> None:
        """Fail when subnets cannot be built: no ``ofa`` package, no weights (nor ``random_init``), or a
        weights file that does not exist.

        Raises:
            ProxybenchError: With the command that fixes it.
        """
        _ofa()
        source, _ = self._resolve(None, None)
        if isinstance(source, (str, os.PathLike)) and str(source) != ZOO:
            self._weights_path(source)  # the zoo is downloaded on first use, not here

    def _resolve(self, supernet: Any, random_init: bool | None) -> tuple[Any, bool]:
        source = self.supernet_weights if supernet is None else supernet
        random = self.random_init if random_init is None else bool(random_init)
        if source is None and not random:
            raise InvalidSettingError(f"no OFA supernet weights: {_WEIGHTS_HINT}")
        return source, source is None and random

    def load_supernet(self, supernet: Any = None, *, random_init: bool | None = None, seed: int = 0) -> nn.Module:
        """The ``OFAMobileNetV3`` supernet that :meth:`build` extracts from (cached, two at most).

        Args:
            supernet: A state-dict path, :data:`ZOO`, a state dict, or an ``OFAMobileNetV3``
                (used as is); default: the space's ``supernet_weights``.
            random_init: Without weights, build a randomly initialised supernet (seeded by ``seed``).
            seed: Seed of the random initialisation.

        Raises:
            InvalidSettingError: No weights and no ``random_init``, a missing or unreadable file, a
                state dict of another network, or an incompatible supernet object.
        """
        import torch
        from torch import nn
        source, random = self._resolve(supernet, random_init)
        ofa = _ofa()
        if isinstance(source, nn.Module):
            if not isinstance(source, ofa.OFAMobileNetV3) or (
                source.ks_list, source.expand_ratio_list, source.depth_list, source.width_mult
            ) != (list(KERNELS), list(EXPANDS), list(DEPTHS), 1.0):
                raise InvalidSettingError(
                    f"the OFA space needs an OFAMobileNetV3 with width_mult=1.0, ks_list={list(KERNELS)}, "
                    f"expand_ratio_list={list(EXPANDS)}, depth_list={list(DEPTHS)} ({SUPERNET_ID})"
                )
            return source
        if isinstance(source, Mapping):  # an in-memory state dict: loaded each time, not cached
            return self._from_state(ofa, source, "the given state dict")
        if random:
            key: tuple = ("random", int(seed))
        else:
            path = self._weights_path(source)
            key = ("file", str(path), path.stat().st_mtime_ns)
        with self._lock:
            if key in self._supernets:
                self._supernets.move_to_end(key)
                return self._supernets[key]
            if random:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(int(seed))
                    net = self._new_supernet(ofa, 1000)
            else:
                net = self._from_state(ofa, self._read_state(path), str(source))
            self._supernets[key] = net
            while len(self._supernets) > 2:
                self._supernets.popitem(last=False)
            return net

    def _from_state(self, ofa: Any, state: Mapping[str, Any], where: str) -> nn.Module:
        net = self._new_supernet(ofa, _num_classes(state))
        try:
            net.load_state_dict(state)
        except (AssertionError, ValueError, RuntimeError, KeyError) as error:
            text = str(error).strip()
            first = text.splitlines()[0] if text else type(error).__name__
            raise InvalidSettingError(f"{where} is not a state dict of {SUPERNET_ID}: {first}") from None
        return net

    @staticmethod
    def _new_supernet(ofa: Any, n_classes: int) -> nn.Module:
        return ofa.OFAMobileNetV3(
            n_classes=n_classes, dropout_rate=0, width_mult=1.0,
            ks_list=list(KERNELS), expand_ratio_list=list(EXPANDS), depth_list=list(DEPTHS),
        )

    @staticmethod
    def _weights_path(source: Any) -> Path:
        if isinstance(source, str) and source == ZOO:
            return _download_zoo()
        if not isinstance(source, (str, os.PathLike)):
            raise InvalidSettingError(f"OFA supernet {source!r} is not a path, '{ZOO}', a state dict or an OFAMobileNetV3")
        path = Path(source).expanduser()
        if not path.is_file():
            raise InvalidSettingError(f"OFA supernet weights file {str(path)!r} does not exist; {_WEIGHTS_HINT}")
        return path

    @staticmethod
    def _read_state(path: Path) -> Mapping[str, Any]:
        import torch
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # noqa: BLE001  (pickle, zip and IO errors all mean "unreadable")
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise InvalidSettingError(
                f"cannot read OFA supernet weights {str(path)!r} as a tensor state dict: {first}"
            ) from None
        if isinstance(data, Mapping) and isinstance(data.get("state_dict"), Mapping):
            data = data["state_dict"]  # the ofa model zoo's checkpoint layout
        if not isinstance(data, Mapping):
            raise InvalidSettingError(f"OFA supernet weights {str(path)!r} hold a {type(data).__name__}, not a state dict")
        return data

    def _extract(self, supernet: nn.Module, arch: str, num_classes: int, seed: int, preserve_weight: bool) -> nn.Module:
        import torch
        ofa = _ofa()
        settings = subnet_settings(arch, self.resolutions)
        with self._lock:  # set_active_subnet mutates the shared supernet
            supernet.set_active_subnet(ks=settings["ks"], e=settings["e"], d=settings["d"])
            net = supernet.get_active_subnet(preserve_weight=preserve_weight)
        net.__class__ = ofa.OFASubnet  # same modules and forward; standard load_state_dict
        in_features = net.classifier.in_features
        device = next(net.parameters()).device
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            net.classifier = ofa.LinearLayer(in_features, int(num_classes), dropout_rate=0).to(device)
        return net

    def build(
        self,
        arch: str | Mapping[str, Any],
        num_classes: int = 10,
        *,
        bn: str = "all",
        supernet: Any = None,
        random_init: bool | None = None,
        seed: int = 0,
    ) -> nn.Module:
        """The subnet of ``arch`` with the supernet's weights and a fresh ``num_classes`` head.

        ``set_active_subnet`` gets one kernel size and expand ratio per slot (inactive slots
        padded, :func:`subnet_settings`), so the result does not depend on what was built
        before; ``get_active_subnet(preserve_weight=True)`` copies the weights. The returned
        ``MobileNetV3`` is in train mode on the supernet's device; its BatchNorm statistics are
        the supernet's, so call :func:`recalibrate_bn` on a few training batches before
        evaluating it.

        Args:
            arch: Readable string or dict.
            num_classes: Outputs of the new head (``Linear(1280, num_classes)``, seeded).
            bn: A key of :data:`BN_MODES` (``"none"``/``"foresight"`` replace BatchNorm by Identity).
            supernet: See :meth:`load_supernet`; default: the space's ``supernet_weights``.
            random_init: Allow a randomly initialised supernet when there are no weights.
            seed: Seeds the head (and a random supernet).

        Raises:
            InvalidArchitectureError: ``arch`` is malformed.
            InvalidSettingError: No weights without ``random_init`` (the message names
                ``--supernet-weights`` and ``--random-init``), unreadable weights, unknown ``bn``.
        """
        canonical = self.parse(arch)
        if bn not in BN_MODES:
            raise InvalidSettingError(f"unknown OFA bn mode {bn!r}; valid: {', '.join(BN_MODES)}")
        if not _is_int(num_classes) or num_classes < 1:
            raise InvalidSettingError(f"num_classes must be a positive integer, got {num_classes!r}")
        net = self._extract(self.load_supernet(supernet, random_init=random_init, seed=seed), canonical,
                            num_classes, seed, preserve_weight=True)
        if bn != "all":
            _remove_bn(net)
        return net.train()

    # ------------------------------------------------------------------ cost

    def cost(self, arch: str | Mapping[str, Any], num_classes: int = 10) -> tuple[float, float]:
        """``(params, MACs)`` in millions of the subnet with a ``num_classes`` head, at its resolution.

        Counted by ``ofa.utils.count_parameters`` and ``ofa.utils.count_net_flops`` (conv and
        linear multiply-accumulates, input ``1 x 3 x r x r``) on a structure-only subnet (no
        weights needed), cached per (canonical architecture, ``num_classes``) in memory and, when
        the space has a ``cost_cache`` file, on disk. ImageNet papers quote ``num_classes=1000``.
        """
        key = f"{self.parse(arch)}|{int(num_classes)}"
        with self._lock:
            self._load_cost_file()
            if key in self._costs:
                self._cost_hits += 1
                self._costs.move_to_end(key)
                return self._costs[key]
        ofa = _ofa()
        canonical = key.rsplit("|", 1)[0]
        with self._lock:
            if self._structure is None:  # weights are irrelevant to the counts
                self._structure = self._new_supernet(ofa, 1000)
            structure = self._structure
        net = self._extract(structure, canonical, num_classes, 0, preserve_weight=False)
        resolution = self.input_resolution(canonical)
        value = (ofa.count_parameters(net) / 1e6, ofa.count_net_flops(net, (1, 3, resolution, resolution)) / 1e6)
        with self._lock:
            self._cost_misses += 1
            self._costs[key] = value
            while len(self._costs) > 100_000:
                self._costs.popitem(last=False)
            self._save_cost_file()
        return value

    def cost_cache_info(self) -> CostCacheInfo:
        """Hits, misses and size of the :meth:`cost` cache."""
        return CostCacheInfo(self._cost_hits, self._cost_misses, len(self._costs))

    def _load_cost_file(self) -> None:
        if self._cost_file_loaded or self.cost_cache is None:
            return
        self._cost_file_loaded = True
        if not self.cost_cache.is_file():
            return
        try:
            data = json.loads(self.cost_cache.read_text())
            for key, (params, macs) in data.items():
                self._costs.setdefault(key, (float(params), float(macs)))
        except (ValueError, TypeError, AttributeError) as error:
            raise InvalidSettingError(f"OFA cost cache {str(self.cost_cache)!r} is not a JSON object of [params, macs] ({error}); delete it") from None

    def _save_cost_file(self) -> None:
        if self.cost_cache is None:
            return
        self.cost_cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.cost_cache.with_name(f".{self.cost_cache.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({k: list(v) for k, v in self._costs.items()}, sort_keys=True))
        os.replace(tmp, self.cost_cache)


def _num_classes(state: Mapping[str, Any]) -> int:
    """Rows of the classifier in a supernet state dict (1000 for the ImageNet supernet)."""
    import torch
    for key in ("classifier.linear.weight", "classifier.linear.linear.weight"):
        weight = state.get(key)
        if isinstance(weight, torch.Tensor) and weight.dim() == 2:
            return int(weight.shape[0])
    return 1000


def _download_zoo() -> Path:
    """The ofa model zoo's supernet file, downloaded once into ``torch.hub.get_dir()/ofa_nets``.

    ``ofa.model_zoo.ofa_net`` is not used: it imports ``gdown`` (not a dependency of ``ofa``),
    writes into ``./.torch`` relative to the working directory and returns ``None`` on failure.
    """
    import torch
    path = Path(torch.hub.get_dir()) / "ofa_nets" / SUPERNET_ID
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(ZOO_URL, str(path), progress=True)
    except Exception as error:  # noqa: BLE001  (any network failure)
        raise InvalidSettingError(
            f"cannot download {SUPERNET_ID} from {ZOO_URL} ({type(error).__name__}: {error}); "
            "pass --supernet-weights PATH to a local copy, or --random-init"
        ) from None
    return path

