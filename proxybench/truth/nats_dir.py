"""Importer for NATS-Bench's topology-search-space directory (fast mode), e.g. ``NATS-tss-v1_0-3ffb9-simple/``.

Layout (``nats_bench/api_topology.py``, AutoDL-Projects ``exps/NATS-Bench/tss-collect.py``):

* ``meta.pickle.pbz2``: ``{"meta_archs": [arch string per index], "total_archs": 15625,
  "arch2infos": None, "evaluated_indexes": set()}``;
* one ``<index>.pickle.pbz2`` per architecture (``000123.pickle.pbz2``; the API also accepts
  ``123.pickle.pbz2``): ``OrderedDict({"12": ArchResults state, "200": ArchResults state})``,
  the same ArchResults/ResultsCount states as NAS-Bench-201's ``.pth`` (NATS-Bench's topology
  search space is NAS-Bench-201's; its 12-epoch schedule covers all four training sets).

Each file is bz2-compressed pickle. It is read once with :class:`SafeUnpickler`, whose
``find_class`` allows only what these files contain: ``collections.OrderedDict``, ``set``,
``_codecs.encode`` (bytes in protocol 2) and numpy scalars of numeric dtypes (``params`` is a
``numpy.float64``); everything else in them is a plain container, number or string. The
``-full`` directory also holds the trained weights (``net_state_dict``, torch tensors pickled
with plain pickle); their rebuild functions (``torch._utils._rebuild_tensor_v2``,
``torch.storage._load_from_bytes``) resolve to a stub that drops them without loading
anything, so ``-full`` and ``-simple`` import the same rows. Any other global stops the import
with a one-line :class:`TruthImportError` naming the file: a file can make the reader call
nothing but the functions of that list.

Rows, columns and the split/metric table are those of :mod:`proxybench.truth.nb201_pth`:
seed means after the last epoch of each schedule (``hp`` 200 and 12 as separate rows with
``epochs`` 200 and 12), ``arch_id`` = the benchmark index (from the file name, checked
against the state's ``arch_index``), ``arch`` from ``meta_archs`` (checked against the state's
``arch_str``; without ``meta.pickle.pbz2`` the ``arch_str`` is used).

Memory: one architecture's file at a time (a few kB for ``-simple``, a few MB for ``-full``).
Extract once: the Parquet file written by ``proxybench truth import DIR`` is the extract, so
the slow API is never needed again. A progress bar is shown when stderr is a terminal.
"""

from __future__ import annotations

import bz2
import codecs
import collections
import pickle
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from proxybench.spaces.nb201 import arch_uid
from proxybench.truth._common import ReadOutput, SourceInfo, TruthImportError
from proxybench.truth.nb201_pth import (
    SPLITS,
    TruthRows,
    arch_results_rows,
    canonical_arch,
    numpy_scalar,
)

__all__ = [
    "IMPORTER_VERSION",
    "META_FILE",
    "SUFFIX",
    "SafeUnpickler",
    "claims",
    "load_pickle_bz2",
    "read",
    "read_nats_dir",
]

IMPORTER_VERSION = "1"
SUFFIX = ".pickle.pbz2"
META_FILE = "meta" + SUFFIX
_INDEX_FILE = re.compile(r"^(\d+)\.pickle\.pbz2$")


class _Dropped:
    """What a trained weight tensor of a ``-full`` file becomes: nothing is loaded."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<dropped tensor>"


_DROPPED = _Dropped()


def _drop(*args: Any, **kwargs: Any) -> _Dropped:
    """Stands in for torch's tensor/storage rebuild functions: discards the serialized weights."""
    return _DROPPED


_ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,  # the per-file dict, train_times
    ("builtins", "set"): set,  # meta's evaluated_indexes (protocol 2 spells a set as a call)
    ("_codecs", "encode"): codecs.encode,  # bytes in protocol 2 (the numpy scalar's payload)
    ("numpy", "dtype"): np.dtype,  # params is a numpy.float64 ...
    ("numpy.core.multiarray", "scalar"): numpy_scalar,  # ... pickled by numpy 1.x
    ("numpy._core.multiarray", "scalar"): numpy_scalar,  # ... or 2.x; numeric dtypes only
    # -full: trained weights (torch tensors pickled with plain pickle) are dropped unread
    ("torch._utils", "_rebuild_tensor"): _drop,
    ("torch._utils", "_rebuild_tensor_v2"): _drop,
    ("torch._utils", "_rebuild_parameter"): _drop,
    ("torch.storage", "_load_from_bytes"): _drop,
}


class SafeUnpickler(pickle.Unpickler):
    """A pickle reader that resolves only the globals in an explicit allow-list.

    Plain containers and numbers need no globals; everything a NATS-Bench file refers to by
    name must be in ``_ALLOWED``. Anything else raises :class:`pickle.UnpicklingError`
    instead of being imported, so a crafted file cannot run code.
    """

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed") from None

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("persistent ids are not allowed")


def load_pickle_bz2(path: Path) -> Any:
    """One ``.pickle.pbz2`` file through :class:`SafeUnpickler`.

    Raises:
        TruthImportError: Not bz2, not a pickle, truncated, or it names a class outside the
            allow-list (the message names the file).
    """
    try:
        with bz2.open(path, "rb") as fh:
            return SafeUnpickler(fh).load()
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if text.startswith("global "):
            raise TruthImportError(
                f"{path.name}: refused to unpickle it: {text} (a NATS-Bench topology file needs only "
                "containers and numbers); this is not a NATS-Bench file, or it was modified"
            ) from None
        raise TruthImportError(f"{path.name} is not a readable pickle: {text}") from None
    except (OSError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            MemoryError, RecursionError) as exc:
        raise TruthImportError(
            f"{path.name} is not a readable bz2-compressed pickle ({type(exc).__name__}: {str(exc)[:200] or 'no message'})"
        ) from None


def _arch(text: Any, where: str) -> str:
    try:
        return canonical_arch(text, where)
    except TruthImportError as exc:
        raise TruthImportError(f"{exc}; the nats format reads NATS-Bench's topology search space (NATS-tss-*)") from None


def _index_files(directory: Path) -> list[tuple[int, Path]]:
    files: dict[int, Path] = {}
    for member in sorted(directory.iterdir()):
        if not member.name.endswith(SUFFIX) or member.name == META_FILE:
            continue
        match = _INDEX_FILE.match(member.name)
        if match is None or not member.is_file():
            raise TruthImportError(
                f"{directory.name}/{member.name}: unexpected file; a NATS-Bench directory holds {META_FILE} and "
                f"<index>{SUFFIX} files only"
            )
        index = int(match[1])
        if index in files:
            raise TruthImportError(f"{directory.name}: {files[index].name} and {member.name} are both index {index}")
        files[index] = member
    return sorted(files.items())


def _progress(items: list[tuple[int, Path]], name: str):  # type: ignore[no-untyped-def]
    if not sys.stderr.isatty():
        return items
    from tqdm import tqdm

    return tqdm(items, desc=f"reading {name}", unit="arch", file=sys.stderr)


def read_nats_dir(directory: Path, source: str) -> tuple[pa.Table, dict[str, str]]:
    """Read a NATS-Bench topology directory into truth rows (see the module docstring).

    Args:
        directory: The directory (``NATS-tss-v1_0-3ffb9-simple`` or ``-full``).
        source: Value of the ``source`` column (``nats:<directory name>``).

    Returns:
        The truth table and metadata entries.

    Raises:
        TruthImportError: No architecture files, an unreadable or refused file, or a
            malformed entry (the message names the file, schedule, training set and seed).
    """
    name = directory.name
    meta_archs: list[Any] | None = None
    meta_path = directory / META_FILE
    if meta_path.is_file():
        meta = load_pickle_bz2(meta_path)
        if not isinstance(meta, Mapping) or not isinstance(meta.get("meta_archs"), (list, tuple)):
            raise TruthImportError(f"{name}/{META_FILE}: expected a dict with a meta_archs list, got "
                                   f"{type(meta).__name__}")
        meta_archs = list(meta["meta_archs"])
        del meta
    files = _index_files(directory)
    if not files:
        raise TruthImportError(f"{name} holds no <index>{SUFFIX} files; expected a NATS-Bench topology directory "
                               "such as NATS-tss-v1_0-3ffb9-simple")

    rows = TruthRows(source)
    skipped: dict[str, int] = {}
    hps: set[str] = set()
    for index, path in _progress(files, name):
        where = f"{name}/{path.name}"
        if meta_archs is not None and index >= len(meta_archs):
            raise TruthImportError(f"{where}: index {index} is beyond meta_archs ({len(meta_archs)} architectures)")
        data = load_pickle_bz2(path)
        if not isinstance(data, Mapping) or not data:
            raise TruthImportError(f"{where}: expected {{hp: ArchResults state}} (hp '12', '200'), got "
                                   f"{type(data).__name__}")
        arch = None
        if meta_archs is not None:
            arch = _arch(meta_archs[index], f"{name}/{META_FILE}, meta_archs[{index}]")
        for hp, state in data.items():
            if not isinstance(state, Mapping):
                raise TruthImportError(f"{where}, hp {hp}: expected an ArchResults state, got {type(state).__name__}")
            if arch is None:
                arch = _arch(state.get("arch_str"), f"{where}, hp {hp}, arch_str")
            stored = state.get("arch_index", index)
            if isinstance(stored, bool) or not isinstance(stored, (int, np.integer)) or int(stored) != index:
                raise TruthImportError(f"{where}, hp {hp}: arch_index is {stored!r}, but the file name says {index}")
            arch_results_rows(state, rows=rows, arch=arch, uid=arch_uid(arch), arch_id=index, hp=str(hp),
                              where=where, skipped=skipped)
            hps.add(str(hp))
        del data
    if not len(rows):
        raise TruthImportError(f"{name} holds no accuracies (no known training set in any architecture)")
    metadata = {
        "architectures": str(len(files)),
        "meta_archs": "meta.pickle.pbz2" if meta_archs is not None else "absent (arch_str of each file)",
        "schedules": ";".join(sorted(hps, key=lambda h: (len(h), h))),
        "splits": ";".join(f"{t}/{e}={d}/{m}" for t, e, d, m in SPLITS),
        "seed": "mean over the benchmark's seeds (is_random=False), last epoch of each schedule",
        "skipped_metrics": ";".join(f"{k}:{n}" for k, n in sorted(skipped.items())),
    }
    return rows.table(), metadata


def claims(path: Path) -> bool:
    """``auto`` detection: a directory holding ``meta.pickle.pbz2`` or ``*.pickle.pbz2`` files."""
    if not path.is_dir():
        return False
    try:
        return (path / META_FILE).is_file() or next(path.glob("*" + SUFFIX), None) is not None
    except OSError:
        return False


def read(path: Path, info: SourceInfo) -> ReadOutput:
    """The :class:`~proxybench.truth.importers.Reader` entry point (see :func:`read_nats_dir`)."""
    truth, metadata = read_nats_dir(path, info.label)
    return ReadOutput(truth=truth, metadata=metadata)
