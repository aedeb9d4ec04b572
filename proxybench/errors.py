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
    "ScoringStoppedError",
    "ScoringInterrupted",
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


class _Stopped:
    """What a scoring run that stopped early saved: the ``rows_saved`` rows of run ``run_id`` in ``out``.

    ``problem`` says why it stopped and ``fix`` (may be empty) what to do before resuming,
    which is running the same command again (:mod:`proxybench.scoring`).
    """

    def _init_stopped(self, problem: str, out: object, run_id: str, rows_saved: int, fix: str = "") -> None:
        self.problem, self.out, self.run_id, self.rows_saved, self.fix = problem, out, run_id, rows_saved, fix

    def describe(self, command: str | None = None) -> str:
        """One line: the problem, the rows saved, the fix, and how to resume (``command``, the
        command line that resumes, when known)."""
        fix = f"{self.fix}, then " if self.fix else ""
        rows = "1 row" if self.rows_saved == 1 else f"{self.rows_saved} rows"
        resume = f"resume with: {command}" if command else "run the same command again to resume"
        return f"{self.problem}: {rows} of this run saved in {self.out}; {fix}{resume}"


class ScoringStoppedError(_Stopped, StoreError):
    """A scoring run could not go on writing (disk full); the rows it journaled are kept and
    running the same command again resumes it. Attributes: ``problem``, ``out``, ``run_id``,
    ``rows_saved``, ``fix``."""

    def __init__(self, problem: str, out: object, run_id: str, rows_saved: int, fix: str = "") -> None:
        self._init_stopped(problem, out, run_id, rows_saved, fix)
        super().__init__(self.describe())


class ScoringInterrupted(_Stopped, KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped a scoring run: a ``KeyboardInterrupt`` that says what was saved.

    It stays a ``KeyboardInterrupt`` (code that catches those still does); ``proxybench score``
    prints :meth:`describe` with its own command line. Attributes as :class:`ScoringStoppedError`.
    """

    def __init__(self, problem: str, out: object, run_id: str, rows_saved: int, fix: str = "") -> None:
        self._init_stopped(problem, out, run_id, rows_saved, fix)
        super().__init__(self.describe())
