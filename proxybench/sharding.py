"""Deterministic partitions of an architecture list: shards (``--shard I/N``) and worker splits.

Both split by **isomorphism class** (``space.uid(arch)``), never inside one: with
isomorphism dedup a class is computed once and copied to its other members, so a class
that lives in one shard never needs another shard's work, and N shards writing into one
results directory produce exactly the rows one unsharded run would.

* A shard is chosen by a stable hash of the class key: ``sha256(uid)`` read as a big-endian
  integer (first 8 bytes), modulo N. It depends on nothing but the uid, so every process,
  machine and Python version (``hash()`` is salted per process) agrees on it, whatever
  order or subset of architectures each shard is given.
* Workers inside one process split their (shard's) list round-robin by class in order of
  first appearance: deterministic for a given list and balanced to within one class,
  which a hash only is on average.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Sequence

from proxybench.errors import ProxybenchError

__all__ = ["group_by_class", "parse_shard", "select_shard", "shard_of", "split_classes"]

_SHARD_TEXT = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def parse_shard(value: str | Sequence[int] | None) -> tuple[int, int] | None:
    """``"I/N"`` or ``(I, N)`` as a validated ``(I, N)`` tuple; ``None`` stays ``None``.

    Raises:
        ProxybenchError: Not of the form ``I/N`` with integers ``0 <= I < N`` (one line).
    """
    if value is None:
        return None
    if isinstance(value, str):
        match = _SHARD_TEXT.match(value)
        if not match:
            raise ProxybenchError(f"--shard must be I/N with integers 0 <= I < N (e.g. 0/4), got {value!r}")
        index, count = int(match.group(1)), int(match.group(2))
    else:
        try:
            index, count = (int(v) for v in value)
        except (TypeError, ValueError):
            raise ProxybenchError(f"shard must be (I, N) with integers 0 <= I < N, got {value!r}") from None
    if count < 1 or not 0 <= index < count:
        raise ProxybenchError(f"--shard must be I/N with 0 <= I < N (e.g. 0/4), got {index}/{count}")
    return index, count


def shard_of(uid: str, count: int) -> int:
    """The shard (``0..count-1``) of isomorphism class ``uid``: ``sha256(uid) mod count``."""
    digest = hashlib.sha256(uid.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count


def select_shard(archs: Iterable[str], uid: Callable[[str], str], shard: tuple[int, int]) -> list[str]:
    """The architectures of ``archs`` (order kept) whose class falls into ``shard = (I, N)``."""
    index, count = shard
    return [a for a in archs if shard_of(uid(a), count) == index]


def group_by_class(archs: Iterable[str], uid: Callable[[str], str]) -> list[tuple[str, list[str]]]:
    """``[(uid, members)]``: classes in order of first appearance, members in the given order."""
    groups: dict[str, list[str]] = {}
    for arch in archs:
        groups.setdefault(uid(arch), []).append(arch)
    return list(groups.items())


def split_classes(groups: Sequence[tuple[str, list[str]]], parts: int) -> list[list[str]]:
    """Round-robin the classes of ``groups`` over ``parts`` lists of architectures."""
    out: list[list[str]] = [[] for _ in range(parts)]
    for i, (_, members) in enumerate(groups):
        out[i % parts].extend(members)
    return out
