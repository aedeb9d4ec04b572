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
from proxybench.proxies import get_proxy, list_proxies, proxy  # noqa: E402
from proxybench.scoring import ScoreSummary, score_architectures  # noqa: E402
from proxybench.spaces import get_space, list_spaces  # noqa: E402

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
