"""proxybench: how well do cheap proxies predict how good an architecture really is?

Public entry points::

    from proxybench import score_architectures, get_space, list_proxies, get_proxy
"""

from __future__ import annotations

# Before anything imports torch: passive OpenMP waiting and threads = the CPUs we may use
# (proxybench._threads says why: two jobs on shared cores otherwise slow each other ~8x).
from proxybench._threads import configure as _configure_threads

_configure_threads()

from importlib.metadata import PackageNotFoundError, version  # noqa: E402

try:
    __version__ = version("proxybench")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

from proxybench.errors import ProxybenchError  # noqa: E402

# The rest of the public API is imported on first use (PEP 562): the proxies and the scoring
# engine import torch (2-3 s), which commands that only read metadata (``proxybench --help``,
# ``proxies``, ``presets``, ``space``, ``status``) never need.
_LAZY = {
    "ScoreSummary": "proxybench.scoring",
    "score_architectures": "proxybench.scoring",
    "get_proxy": "proxybench.proxies",
    "list_proxies": "proxybench.proxies",
    "proxy": "proxybench.proxies",
    "get_space": "proxybench.spaces",
    "list_spaces": "proxybench.spaces",
}


def __getattr__(name: str):  # noqa: ANN202 - module-level __getattr__
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'proxybench' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "__version__",
    "ProxybenchError",
    "ScoreSummary",
    "get_proxy",
    "get_space",
    "list_proxies",
    "list_spaces",
    "proxy",
    "score_architectures",
]
