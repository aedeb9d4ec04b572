"""Reading architecture lists from files (``proxybench score --archs FILE``).

A file holds one architecture per line, or is a CSV whose first column holds them (the
output of ``proxybench space``). Accepted, so that the files researchers already have work:

* a UTF-8 byte-order mark (Excel, Windows editors), blank lines and ``#`` comments;
* a header line: a first record whose first field is a plain word (``arch``,
  ``architecture``, ``arch_str``, ...) and not an architecture;
* first fields that contain commas when they are bracketed: NASLib op-index tuples
  ``(0, 1, 2, 3, 4, 1)`` (NAS-Bench-Suite-Zero's own keys) and OFA's JSON form are read
  whole, not split at their commas;
* any notation the space's ``parse`` accepts; every architecture is stored in its
  canonical form.

A line that is not an architecture of the space is an error that names the file and line.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import TYPE_CHECKING

from proxybench.errors import InvalidArchitectureError, ProxybenchError

if TYPE_CHECKING:
    from proxybench.spaces import SearchSpace

__all__ = ["read_archs"]

_CLOSING = {"(": ")", "[": "]", "{": "}"}
_HEADER_WORD = re.compile(r"[A-Za-z_][\w .-]*")


def _first_field(text: str) -> str:
    """The first CSV field of ``text``; a bracketed first field is taken whole, commas included."""
    if text[0] in _CLOSING:
        depth = 0
        for i, ch in enumerate(text):
            if ch in _CLOSING:
                depth += 1
            elif ch in _CLOSING.values():
                depth -= 1
                if depth == 0:
                    rest = text[i + 1:].lstrip()
                    if rest and not rest.startswith(","):
                        raise ValueError(f"unexpected {rest[:20]!r} after {text[: i + 1]!r}")
                    return text[: i + 1]
        raise ValueError(f"unbalanced brackets in {text!r}")
    return next(csv.reader([text]))[0].strip()


def read_archs(path: str | Path, space: SearchSpace) -> list[str]:
    """The canonical architectures listed in ``path``, in file order (duplicates kept).

    Args:
        path: A text file, one architecture per line, or a CSV whose first column holds them.
        space: The search space whose ``parse`` reads (and canonicalises) each one.

    Returns:
        The canonical strings.

    Raises:
        ProxybenchError: The file cannot be read, lists nothing, or a line is not an
            architecture of ``space``; the message names ``FILE:LINE``.

    Example:
        >>> read_archs("archs.csv", get_space("nb201"))  # doctest: +SKIP
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: drop a byte-order mark
    except UnicodeDecodeError as exc:
        raise ProxybenchError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}); "
                              "save it as UTF-8, one architecture per line") from None
    except OSError as exc:
        raise ProxybenchError(f"cannot read {path}: {exc.strerror or exc}") from None
    archs: list[str] = []
    first_record = True
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            field = _first_field(stripped)
        except ValueError as exc:
            raise ProxybenchError(f"{path}:{number}: {exc}; write one architecture per line") from None
        try:
            archs.append(space.parse(field))
        except InvalidArchitectureError as exc:
            if first_record and _HEADER_WORD.fullmatch(field):
                first_record = False
                continue  # a header such as 'arch' or 'arch,uid'
            raise ProxybenchError(f"{path}:{number}: {exc}") from None
        first_record = False
    if not archs:
        raise ProxybenchError(f"{path} lists no architectures; write one per line or a CSV with an 'arch' column")
    return archs
