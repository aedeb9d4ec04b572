"""Proxy registry and every proxy family.

Importing this package registers every proxy, through the one explicit import list below.
"""

from proxybench.proxies.registry import (
    NEEDS,
    PASSES,
    ProxySpec,
    get_proxy,
    list_proxies,
    proxy,
    reads_images,
    resolve_proxies,
)

# The explicit list of family modules; each registers its proxies at import.
from proxybench.proxies import cost  # noqa: E402,F401
from proxybench.proxies import gradient  # noqa: E402,F401
from proxybench.proxies import synflow  # noqa: E402,F401
from proxybench.proxies import activation  # noqa: E402,F401
from proxybench.proxies import flatness  # noqa: E402,F401
from proxybench.proxies import croze  # noqa: E402,F401
from proxybench.proxies import genas  # noqa: E402,F401
from proxybench.proxies import zico  # noqa: E402,F401
from proxybench.proxies import gradsign  # noqa: E402,F401
from proxybench.proxies import meco  # noqa: E402,F401
from proxybench.proxies import swap  # noqa: E402,F401
from proxybench.proxies import aznas  # noqa: E402,F401
from proxybench.proxies import tenas  # noqa: E402,F401
from proxybench.proxies import vkdnw  # noqa: E402,F401

__all__ = ["NEEDS", "PASSES", "ProxySpec", "get_proxy", "list_proxies", "proxy", "reads_images", "resolve_proxies"]
