"""Small helpers shared by the registries: natural sort, wildcard filters, close matches."""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Iterable, Sequence

__all__ = ["natural_key", "filter_names", "suggest"]


def natural_key(name: str) -> list[object]:
    """Sort key that orders ``resnet9`` before ``resnet10``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def filter_names(
    names: Iterable[str],
    include: str | Sequence[str] | None = None,
    exclude: str | Sequence[str] | None = None,
) -> list[str]:
    """Names matching any ``include`` wildcard and no ``exclude`` wildcard, naturally sorted."""
    includes = [include] if isinstance(include, str) else list(include or [])
    excludes = [exclude] if isinstance(exclude, str) else list(exclude or [])
    kept = [
        name
        for name in names
        if (not includes or any(fnmatch.fnmatchcase(name, pat) for pat in includes))
        and not any(fnmatch.fnmatchcase(name, pat) for pat in excludes)
    ]
    return sorted(kept, key=natural_key)


def suggest(name: str, candidates: Iterable[str], n: int = 3) -> str:
    """A ``"; did you mean 'x'?"`` suffix for error messages, or ``""`` when nothing is close."""
    close = difflib.get_close_matches(name, list(candidates), n=n, cutoff=0.5)
    if not close:
        return ""
    return "; did you mean " + " or ".join(f"'{c}'" for c in close) + "?"
