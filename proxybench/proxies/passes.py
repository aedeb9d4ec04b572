"""Share one forward/backward pass between proxies that need the same one.

Several proxies compute the same pass of the same network on the same batch: grad_norm,
snip, plain and fisher all need ``dL/dW`` of the cross-entropy loss (fisher also the
activations' gradients of that backward pass), jacov and epe_nas both need the input
Jacobian ``d(sum y)/dx``. Run one proxy at a time, as the reference implementations do,
and that pass runs once per proxy.

A proxy asks for a pass through :func:`shared`, naming it and giving the function that
computes it. Outside a :func:`sharing` block (a proxy called on its own) the function just
runs. Inside one — the scoring engine opens a block per architecture, batch and network
preparation — the first proxy computes it and the others get the stored result. The
result must be a value that does not alias the network (detached tensors, numbers): the
stored values are exactly what each proxy would have computed itself on its own copy of
the network (``tests/test_passes.py`` checks the scores are identical). Proxies that only
read the network (``ProxySpec.shares_network``) are given one copy between them.

The engine must open a new block whenever the network or batch could differ: another
architecture, batch, BatchNorm variant, dtype or weights. :class:`PassCache` holds no
reference to a network, so nothing outlives the architecture.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

__all__ = ["PassCache", "sharing", "shared", "wanted_passes"]

T = TypeVar("T")


class PassCache:
    """Results of passes, keyed by (pass name, variant); one per architecture and batch.

    Attributes:
        hits: How many times a stored result was reused (the benchmark reports it).
        computed: How many passes ran.
    """

    def __init__(self, wanted: frozenset[str] | set[str] = frozenset()) -> None:
        """``wanted``: the passes (registry ``PASSES`` names) the proxies of this run declare,
        so a pass can serve several at once (:mod:`proxybench.proxies.bundle`)."""
        self._results: dict[tuple[str, Hashable], Any] = {}
        self.wanted = frozenset(wanted)
        self.hits = 0
        self.computed = 0

    def get(self, key: tuple[str, Hashable], compute: Callable[[], T]) -> T:
        if key in self._results:
            self.hits += 1
            return self._results[key]
        value = compute()
        self._results[key] = value
        self.computed += 1
        return value


_ACTIVE: ContextVar[tuple[PassCache, Hashable] | None] = ContextVar("proxybench_pass_cache", default=None)


@contextmanager
def sharing(cache: PassCache, variant: Hashable) -> Iterator[PassCache]:
    """Within the block, :func:`shared` passes are stored in ``cache`` under ``variant``.

    Args:
        cache: The architecture's cache.
        variant: What distinguishes networks built for different proxies of the same
            architecture (BatchNorm mode, dtype, ...): passes never cross variants.
    """
    token = _ACTIVE.set((cache, variant))
    try:
        yield cache
    finally:
        _ACTIVE.reset(token)


def shared(name: str, compute: Callable[[], T]) -> T:
    """The result of pass ``name``: computed now, or taken from the active cache.

    ``name`` must identify the pass *and every argument that changes it* (for example a
    temperature), because the network and batch are implied by the active block.
    """
    active = _ACTIVE.get()
    if active is None:
        return compute()
    cache, variant = active
    return cache.get((name, variant), compute)


def wanted_passes() -> frozenset[str]:
    """The passes the active cache was told are wanted (empty outside a :func:`sharing` block)."""
    active = _ACTIVE.get()
    return frozenset() if active is None else active[0].wanted
