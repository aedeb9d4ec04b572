"""Exceptions raised by proxybench.

Every expected failure is a :class:`ProxybenchError` subclass whose message is one line
that says what is wrong and what to do about it. The command line turns them into a
single ``Error: ...`` line (exit code 1); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

__all__ = [
    "ProxybenchError",
    "InvalidArchitectureError",
    "UnknownProxyError",
    "UnknownSpaceError",
    "UnknownPresetError",
    "DataNotFoundError",
    "UnknownDatasetError",
    "StoreError",
    "InvalidSettingError",
    "TruthImportError",
    "CorrelationError",
]


class ProxybenchError(Exception):
    """Base class of every error proxybench expects and explains."""


class InvalidArchitectureError(ProxybenchError, ValueError):
    """An architecture string or encoding is malformed or out of range."""


class UnknownProxyError(ProxybenchError, KeyError):
    """A proxy name is not registered."""

    def __str__(self) -> str:  # KeyError would otherwise wrap the message in quotes
        return str(self.args[0]) if self.args else ""


class UnknownSpaceError(ProxybenchError, KeyError):
    """A search-space name is not registered."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class UnknownPresetError(ProxybenchError, KeyError):
    """A settings preset name is not known."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class DataNotFoundError(ProxybenchError, FileNotFoundError):
    """A dataset could be neither found locally nor downloaded."""


class UnknownDatasetError(ProxybenchError, ValueError):
    """A dataset or split name that the data loaders do not support."""


class StoreError(ProxybenchError):
    """A results directory or Parquet file is missing, corrupt or inconsistent."""


class TruthImportError(ProxybenchError, ValueError):
    """A ground-truth source cannot be read: unknown format, corrupt file or a bad row.

    The message is one line that names the file and, for a bad row, the row and column.
    """


class CorrelationError(ProxybenchError, ValueError):
    """A correlation cannot be computed as asked (nothing matches, duplicates, bad option)."""


class InvalidSettingError(ProxybenchError, ValueError):
    """A setting is out of range (batch size larger than the data, a zero std, ...)."""
