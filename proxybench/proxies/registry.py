"""The proxy registry: one decorator registers a proxy function with its metadata.

Modelled on timm's ``register_model`` and zero-cost-nas's ``@measure``: the function body is
only the maths; what the network and inputs must look like before the call (BatchNorm
removed, float64, trained weights, a data batch) is declared in ``needs`` and prepared by
the scoring engine, and which passes the proxy performs is declared in ``passes`` so an
engine can group proxies that share a pass.

A proxy is called as ``fn(net, batch, **settings) -> float`` and raises when it fails;
it never prints and returns NaN. The engine turns exceptions and non-finite values into a
row status.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from proxybench._naming import filter_names, suggest
from proxybench.errors import UnknownProxyError

__all__ = [
    "NEEDS",
    "PASSES",
    "ZERO_COST_FAMILIES",
    "MODERN_FAMILIES",
    "ProxySpec",
    "proxy",
    "get_proxy",
    "list_proxies",
    "resolve_proxies",
    "reads_images",
]

#: Families of the zero-cost suite (``--proxies zero-cost``).
ZERO_COST_FAMILIES = frozenset({"cost", "gradient", "synflow", "activation"})

#: Families of the proxies published since 2021 (``--proxies modern``): ZiCo, GradSign, MeCo,
#: SWAP, AZ-NAS's components, TE-NAS's components and VKDNW.
MODERN_FAMILIES = frozenset({"zico", "gradsign", "meco", "swap", "aznas", "tenas", "vkdnw"})

#: What a proxy needs prepared before it is called.
NEEDS: Mapping[str, str] = MappingProxyType(
    {
        "batch": "a batch of real, normalised training images",
        "labels": "the true labels of that batch",
        "no_bn": "a copy of the network without BatchNorm (which BNs go is the preset's choice)",
        "float64": "the network and inputs cast to float64",
        "trained_weights": "weights from a weight provider instead of the initialisation",
        "builder": "a callable that builds the same architecture afresh at other sizes (keyword `builder`), "
                   "for proxies that score a network of their own (TE-NAS's linear regions)",
    }
)

#: The distinct computations a proxy performs; an engine can run each once per architecture.
PASSES: Mapping[str, str] = MappingProxyType(
    {
        "weights": "reads the parameters only, no forward pass",
        "shape_forward": "one forward pass of a single input to count operations",
        "forward": "forward pass of the batch with activation hooks",
        "loss_backward": "forward + backward of the cross-entropy loss on the batch",
        "hvp": "a Hessian-vector product (second backward through the loss gradient)",
        "input_grad": "backward of the summed outputs to the input (Jacobian rows)",
        "abs_ones": "forward + backward of the |theta| network on an all-ones input",
        "gaussian_forward": "forward passes on Gaussian inputs with Gaussian-redrawn weights",
        "perturbed_pair": "loss passes of the |theta| network and of a weight-perturbed copy on a stepped input (CRoZe)",
        "feature_forward": "forward pass recording per-block feature maps (MeCo, SWAP, AZ-NAS)",
        "feature_backward": "backward of a loss through recorded per-block feature maps (AZ-NAS trainability)",
        "multi_batch_grads": "loss gradients of several batches, kept per batch (ZiCo)",
        "per_sample_grads": "gradients of each sample's loss or outputs to the weights (GradSign, TE-NAS NTK, VKDNW)",
        "own_network": "passes through a network the proxy builds itself from the architecture (TE-NAS linear regions)",
        "reinit_input_grad": "the input Jacobian of the proxy's own re-initialised copy (jacov_kaiming)",
    }
)


@dataclass(frozen=True)
class ProxySpec:
    """Everything known about a registered proxy.

    Attributes:
        name: Registry key, ``proxy`` column value and CLI spelling (``grad_norm``).
        fn: ``fn(net, batch, **settings) -> float``.
        description: One line saying what the proxy measures.
        higher_is_better: Orientation: ``True`` when a larger score predicts a better network.
        needs: Subset of :data:`NEEDS`.
        passes: Subset of :data:`PASSES`, in the order the proxy performs them.
        paper: Citation (arXiv id or venue) of the paper that defines it.
        family: Module family (``cost``, ``gradient``, ``synflow``, ``activation``, ...).
        defaults: Settings bound at registration; overridable per run and recorded per row.
        shares_network: The proxy never changes the network's parameters and its result does
            not depend on BatchNorm's running statistics (it runs the network in train mode,
            or counts shapes), so with shared passes the engine gives every such proxy of an
            architecture one copy of the network instead of a copy each (copying a network
            costs about a tenth of the whole suite). Default False: a private copy.
    """

    name: str
    fn: Callable[..., float]
    description: str
    higher_is_better: bool
    needs: frozenset[str]
    passes: tuple[str, ...]
    paper: str
    family: str
    defaults: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    shares_network: bool = False

    def __call__(self, net: Any, batch: Any, **settings: Any) -> float:
        """Run the proxy with its defaults overridden by ``settings``."""
        return self.fn(net, batch, **{**self.defaults, **settings})

    def settings(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The effective settings for one call: defaults updated with ``overrides``."""
        unknown = set(overrides or {}) - set(self.defaults)
        if unknown:
            raise UnknownProxyError(
                f"proxy '{self.name}' has no setting {sorted(unknown)}; "
                f"its settings are {sorted(self.defaults) or 'none'}"
            )
        return {**self.defaults, **(overrides or {})}


_REGISTRY: dict[str, ProxySpec] = {}


def proxy(
    name: str | None = None,
    *,
    higher_is_better: bool,
    paper: str,
    needs: Iterable[str] = (),
    passes: Sequence[str] = (),
    description: str | None = None,
    family: str | None = None,
    shares_network: bool = False,
    **defaults: Any,
) -> Callable[[Callable[..., float]], Callable[..., float]]:
    """Register ``fn`` as a proxy; stack the decorator to register bound variants.

    Args:
        name: Public name; defaults to the function's name.
        higher_is_better: Orientation of the score.
        paper: Citation of the defining paper.
        needs: Keys of :data:`NEEDS`.
        passes: Keys of :data:`PASSES`.
        description: One line; defaults to the first line of the docstring.
        family: Defaults to the defining module's last name component.
        shares_network: See :class:`ProxySpec`; leave False unless the proxy only reads the
            network (the engine's bit-identity test then covers it).
        **defaults: Settings passed to ``fn`` as keyword arguments.

    Returns:
        The undecorated function, so decorators can be stacked.

    Raises:
        ValueError: On a duplicate name, an unknown need or pass, or a missing description.

    Example:
        >>> @proxy("my_norm", higher_is_better=True, paper="me 2026", passes=("weights",))
        ... def my_norm(net, batch):
        ...     '''Sum of parameter norms.'''
        ...     return float(sum(p.norm() for p in net.parameters()))
    """

    def register(fn: Callable[..., float]) -> Callable[..., float]:
        key = name or fn.__name__
        if key in _REGISTRY:
            raise ValueError(f"proxy '{key}' is registered twice ({_REGISTRY[key].fn.__module__} and {fn.__module__})")
        bad_needs = set(needs) - set(NEEDS)
        bad_passes = set(passes) - set(PASSES)
        if bad_needs or bad_passes:
            raise ValueError(f"proxy '{key}': unknown needs {sorted(bad_needs)} or passes {sorted(bad_passes)}")
        text = description or (inspect.getdoc(fn) or "").split("\n", 1)[0].strip()
        if not text:
            raise ValueError(f"proxy '{key}' needs a description or a docstring")
        params = inspect.signature(fn).parameters
        missing = [k for k in defaults if k not in params and not any(
            p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())]
        if missing:
            raise ValueError(f"proxy '{key}': defaults {missing} are not parameters of {fn.__name__}")
        _REGISTRY[key] = ProxySpec(
            name=key,
            fn=fn,
            description=text,
            higher_is_better=higher_is_better,
            needs=frozenset(needs),
            passes=tuple(passes),
            paper=paper,
            family=family or fn.__module__.rsplit(".", 1)[-1],
            defaults=MappingProxyType(dict(defaults)),
            shares_network=shares_network,
        )
        return fn

    return register


def _loaded() -> dict[str, ProxySpec]:
    # Importing the package loads every family module (one explicit list in __init__).
    import proxybench.proxies  # noqa: F401

    return _REGISTRY


def get_proxy(name: str) -> ProxySpec:
    """The spec registered under ``name``.

    Raises:
        UnknownProxyError: With the closest registered names.
    """
    registry = _loaded()
    try:
        return registry[name]
    except KeyError:
        raise UnknownProxyError(
            f"unknown proxy '{name}'{suggest(name, registry)} See: proxybench proxies"
        ) from None


def list_proxies(
    include: str | Sequence[str] | None = None,
    exclude: str | Sequence[str] | None = None,
    needs: Iterable[str] | None = None,
    family: str | None = None,
) -> list[str]:
    """Registered proxy names matching the wildcards, naturally sorted.

    Args:
        include: fnmatch pattern(s) a name must match (any of them).
        exclude: fnmatch pattern(s) a name must not match.
        needs: Keep only proxies whose needs are a subset of these (``()`` = data-free ones).
        family: Keep only this family.
    """
    registry = _loaded()
    names = [
        n
        for n, spec in registry.items()
        if (needs is None or spec.needs <= set(needs)) and (family is None or spec.family == family)
    ]
    return filter_names(names, include, exclude)


def reads_images(spec: ProxySpec, settings: Mapping[str, Any] | None = None) -> bool:
    """Whether ``spec``, called with ``settings``, reads the pixels or labels of its batch.

    It does when it needs ``batch``. A data-free proxy only reads the batch's shape, dtype
    and device, unless its ``inputs`` setting is switched to ``"images"`` (AZ-NAS and VKDNW
    draw Gaussian inputs by default). The scoring engine loads the dataset only when some
    requested proxy reads images.
    """
    if "batch" in spec.needs:
        return True
    effective = {**spec.defaults, **(settings or {})}
    return effective.get("inputs") == "images"


def resolve_proxies(selection: str | Sequence[str] | None) -> list[ProxySpec]:
    """Turn ``"all"``, ``None``, a comma-separated string or a list (wildcards allowed) into specs.

    ``all`` means every proxy that does not need trained weights (the zero-cost suite and
    CRoZe); ``zero-cost`` only the zero-cost suite of Abdelfattah et al. / NAS-Bench-Suite-Zero
    (families in :data:`ZERO_COST_FAMILIES`), the set the speed benchmarks measure; ``modern``
    the proxies published since (families in :data:`MODERN_FAMILIES`).

    Raises:
        UnknownProxyError: When a name or pattern matches nothing.
    """
    if selection is None or selection == "all":
        return [spec for spec in map(get_proxy, list_proxies()) if "trained_weights" not in spec.needs]
    if selection in ("zero-cost", "modern"):
        families = ZERO_COST_FAMILIES if selection == "zero-cost" else MODERN_FAMILIES
        return [spec for spec in map(get_proxy, list_proxies()) if spec.family in families]
    items = [s.strip() for s in selection.split(",")] if isinstance(selection, str) else list(selection)
    chosen: list[str] = []
    for item in filter(None, items):
        matches = list_proxies(item) if any(ch in item for ch in "*?[") else [get_proxy(item).name]
        if not matches:
            raise UnknownProxyError(f"no proxy matches '{item}'; See: proxybench proxies")
        chosen.extend(m for m in matches if m not in chosen)
    if not chosen:
        raise UnknownProxyError("no proxy selected; pass --proxies NAME[,NAME...] or 'all'")
    return [get_proxy(n) for n in chosen]
