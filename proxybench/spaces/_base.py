"""The search-space interface and its registry (``get_space("nb201")``)."""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from proxybench._naming import filter_names, suggest
from proxybench.errors import InvalidSettingError, UnknownSpaceError

if TYPE_CHECKING:  # torch is imported when a network is built, not to list, sample or parse
    import torch.nn as nn

__all__ = ["SearchSpace", "register_space", "get_space", "list_spaces", "space_option_names"]


class SearchSpace(ABC):
    """A family of architectures with a canonical string id, an integer encoding and a builder.

    Subclasses set ``name``, ``n_var``, ``xl`` and ``xu`` and implement the abstract methods.
    ``encode``/``decode`` are the integer view used by search algorithms; ``uid`` is the
    isomorphism key (architectures with equal uids compute the same function).
    """

    name: str
    n_var: int
    xl: np.ndarray
    xu: np.ndarray

    @abstractmethod
    def parse(self, arch: str) -> str:
        """Validate ``arch`` and return its canonical string; raise InvalidArchitectureError."""

    @abstractmethod
    def encode(self, arch: str) -> np.ndarray:
        """Integer vector of ``arch``, within ``[xl, xu]``."""

    @abstractmethod
    def decode(self, x: Sequence[int] | np.ndarray) -> str:
        """Canonical string of an integer vector; raise InvalidArchitectureError when out of range."""

    @abstractmethod
    def uid(self, arch: str) -> str:
        """Isomorphism key of ``arch``."""

    @abstractmethod
    def sample(self, n: int, seed: int) -> list[str]:
        """``n`` distinct architectures drawn uniformly with ``seed`` (deterministic)."""

    @abstractmethod
    def build(self, arch: str, num_classes: int = 10, *, bn: str = "all") -> nn.Module:
        """A freshly initialised network. ``bn`` names which BatchNorm layers exist
        (``"all"``, ``"none"``, or a space-specific variant such as ``"foresight"``)."""

    def __iter__(self) -> Iterator[str]:
        raise TypeError(f"search space '{self.name}' is too large to enumerate")

    def check_build(self) -> None:
        """Raise a :class:`~proxybench.errors.ProxybenchError` when :meth:`build` cannot work here.

        Called before long runs (``proxybench search``) so that a missing package or missing
        weights fail once, before the first candidate, instead of once per candidate. The
        default can always build.
        """

    def settings(self) -> dict[str, Any]:
        """The options this instance was configured with that change its networks or encoding
        (e.g. OFA's resolutions and supernet weights); empty for a space without options.

        Scoring records them (``space_settings``) and keys resumption on them, so scores of
        differently configured instances of one space never mix.
        """
        return {}


_SPACES: dict[str, Callable[[], SearchSpace]] = {}


def register_space(name: str) -> Callable[[Callable[[], SearchSpace]], Callable[[], SearchSpace]]:
    """Register a zero-argument factory (usually the class) under ``name``."""

    def register(factory: Callable[[], SearchSpace]) -> Callable[[], SearchSpace]:
        if name in _SPACES:
            raise ValueError(f"search space '{name}' is registered twice")
        _SPACES[name] = factory
        return factory

    return register


def _loaded() -> dict[str, Callable[[], SearchSpace]]:
    import proxybench.spaces  # noqa: F401  (registers the built-in spaces)

    return _SPACES


def get_space(name: str, **options: Any) -> SearchSpace:
    """An instance of the space registered under ``name``, configured with ``options``.

    ``options`` go to the space's factory (for ``ofa``: ``resolutions``, ``supernet_weights``,
    ``random_init``), as timm's ``create_model(name, **kwargs)``; None values are dropped, so
    callers can pass unset command-line options through.

    Raises:
        UnknownSpaceError: With the closest registered names.
        InvalidSettingError: An option the space does not take.
    """
    spaces = _loaded()
    if name not in spaces:
        raise UnknownSpaceError(f"unknown search space '{name}'{suggest(name, spaces)} See: proxybench space")
    given = {k: v for k, v in options.items() if v is not None}
    factory = spaces[name]
    if given:
        accepted = space_option_names(name)
        unknown = sorted(k for k in given if k not in accepted)
        if unknown:
            takes = ", ".join(accepted) or "none"
            raise InvalidSettingError(f"search space '{name}' has no option {unknown}; its options: {takes}")
    return factory(**given)


def space_option_names(name: str) -> list[str]:
    """The options :func:`get_space` accepts for space ``name`` (empty for a space without any)."""
    spaces = _loaded()
    if name not in spaces:
        raise UnknownSpaceError(f"unknown search space '{name}'{suggest(name, spaces)} See: proxybench space")
    return [p for p in inspect.signature(spaces[name]).parameters if not p.startswith("_")]


def list_spaces(include: str | Sequence[str] | None = None) -> list[str]:
    """Registered space names, naturally sorted."""
    return filter_names(_loaded(), include)
