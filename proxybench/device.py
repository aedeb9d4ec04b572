"""CUDA determinism and precision: what proxybench sets before it scores on a GPU, and records.

Same seed → same scores is a promise the CPU path keeps for free. On CUDA it needs settings
that PyTorch leaves off by default, so :func:`configure_cuda_determinism` applies them (the
scoring engine calls it once per run, before the first tensor reaches the device) and returns
a dict of what it set; the engine stores that dict under ``"determinism"`` in every CUDA row's
``settings`` and hence in its ``settings_hash`` (CPU rows get no such key: their hashes stay
what they were).

What is set, and why:

* ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` -- cuBLAS (CUDA >= 10.2) is only reproducible with a
  fixed workspace; PyTorch reads the variable when it first sizes the workspace, so it must be
  in the environment before the first cuBLAS call (a value the user already set to one of the
  two deterministic configurations, ``:4096:8`` or ``:16:8``, is kept). Set too late (CUDA
  already initialised in this process) it is still set, with a :class:`RuntimeWarning`.
* ``torch.backends.cudnn.deterministic = True`` and ``benchmark = False`` -- cuDNN's
  autotuner may pick a different (non-deterministic or differently rounding) convolution
  algorithm on every run.
* ``torch.use_deterministic_algorithms(True, warn_only=True)`` -- ops that have a
  deterministic CUDA variant use it (``scatter_add_``, ``index_add``, ``index_put`` with
  accumulation, ...). ``warn_only``: an op with *no* deterministic CUDA kernel
  (:data:`NO_DETERMINISTIC_CUDA_KERNEL`) warns instead of raising, so a proxy using one is
  still scored (its scores may then differ between runs in the last bits, which the two-run
  identity check of ``tests/test_cuda.py`` and ``benchmarks/device_check.sh`` would show).
  The zero-cost suite uses none of them (``tests/test_device.py`` records the aten ops it
  dispatches; the ``strict`` mode of ``tests/test_cuda.py`` checks it on a GPU).
* TF32 off for cuDNN convolutions and cuBLAS matmuls -- not a determinism matter (TF32 is
  reproducible) but an agreement one: PyTorch lets cuDNN convolve float32 in TF32 by default
  on Ampere and later GPUs (10 mantissa bits, about 1e-3 relative error per product), an
  error of its own on top of float32's that the CPU never makes. What all of these settings
  together cost in speed is measured by ``benchmarks/device_check.sh`` (its ``rate_nodet``
  step scores with mode ``off``).

The mode comes from ``PROXYBENCH_CUDA_DETERMINISM``: ``warn`` (default, the above),
``strict`` (``warn_only=False``: an op without a deterministic kernel raises, so the row
becomes an ``error``), ``off`` (proxybench touches nothing: PyTorch's defaults, typically
faster and not reproducible; recorded as ``{"mode": "off"}``). The mode is part of the
settings hash, so scores of different modes never resume into each other.

The settings are process-wide (PyTorch has no per-call switch) and stay set after the run.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from proxybench.errors import InvalidSettingError

__all__ = [
    "CUBLAS_ENV",
    "DETERMINISM_ENV",
    "MODES",
    "NO_DETERMINISTIC_CUDA_KERNEL",
    "TorchDeterminismState",
    "configure_cuda_determinism",
    "determinism_mode",
    "determinism_settings",
    "nondeterministic_alerts",
]

DETERMINISM_ENV = "PROXYBENCH_CUDA_DETERMINISM"
MODES = ("warn", "strict", "off")
CUBLAS_ENV = "CUBLAS_WORKSPACE_CONFIG"
#: The two values PyTorch accepts as deterministic (its check ``checkCuBLASConfigDeterministic``).
CUBLAS_DETERMINISTIC = (":4096:8", ":16:8")
_CUBLAS_DEFAULT = ":4096:8"

#: aten ops that PyTorch documents as having no deterministic CUDA implementation (they raise
#: under ``use_deterministic_algorithms(True)``; torch 2.11-2.14 docstring of that function),
#: by the overload-packet name a ``TorchDispatchMode`` sees. The docs' "NLLLoss" is the
#: spatial kernel ``nll_loss2d_forward`` (reduction mean/sum; ``NLLLoss2d.cu``); the (N, C)
#: classification loss every gradient proxy uses dispatches ``nll_loss_forward``, which is
#: not in the list. A proxy whose ops meet this set is only reproducible in its last bits by
#: luck on CUDA.
NO_DETERMINISTIC_CUDA_KERNEL: frozenset[str] = frozenset({
    "avg_pool3d_backward",
    "_adaptive_avg_pool2d_backward",
    "_adaptive_avg_pool3d_backward",
    "adaptive_avg_pool3d_backward",
    "adaptive_max_pool2d_backward",
    "fractional_max_pool2d_backward",
    "fractional_max_pool3d_backward",
    "max_unpool2d",
    "max_unpool3d",
    "upsample_linear1d_backward",
    "upsample_bilinear2d_backward",
    "_upsample_bilinear2d_aa_backward",
    "upsample_bicubic2d_backward",
    "_upsample_bicubic2d_aa_backward",
    "upsample_trilinear3d_backward",
    "reflection_pad1d_backward",
    "reflection_pad2d_backward",
    "reflection_pad3d_backward",
    "nll_loss2d_forward",
    "_ctc_loss_backward",
    "_embedding_bag_backward",
    "_embedding_bag_dense_backward",
    "put_",
    "put",
    "histc",
    "bincount",
    "median",
    "nanmedian",
    "kthvalue",
    "grid_sampler_2d_backward",
    "grid_sampler_3d_backward",
    "scatter_reduce",
    "scatter_reduce_",
})

_ALERT = re.compile(r"^(\S+) does not have a deterministic implementation")


def determinism_mode(mode: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """The mode to apply: ``mode`` if given, else ``PROXYBENCH_CUDA_DETERMINISM``, else ``warn``.

    Raises:
        InvalidSettingError: For a mode other than ``warn``, ``strict`` or ``off`` (a one-line error).
    """
    env = os.environ if environ is None else environ
    chosen = (mode if mode is not None else env.get(DETERMINISM_ENV, "") or "warn").strip().lower()
    if chosen not in MODES:
        raise InvalidSettingError(f"{DETERMINISM_ENV} must be one of {', '.join(MODES)}, got {chosen!r}")
    return chosen


def determinism_settings(mode: str | None = None, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """What :func:`configure_cuda_determinism` sets for ``mode``, without setting anything.

    The dict is JSON-able and stable (no timestamps, no device names): it becomes part of
    every CUDA row's settings and of their hash.
    """
    env = os.environ if environ is None else environ
    chosen = determinism_mode(mode, env)
    if chosen == "off":
        return {"mode": "off"}
    current = env.get(CUBLAS_ENV)
    return {
        "mode": chosen,
        "cublas_workspace_config": current if current in CUBLAS_DETERMINISTIC else _CUBLAS_DEFAULT,
        "cudnn_deterministic": True,
        "cudnn_benchmark": False,
        "deterministic_algorithms": True,
        "warn_only": chosen == "warn",
        "tf32": False,
    }


def configure_cuda_determinism(mode: str | None = None,
                               environ: MutableMapping[str, str] | None = None) -> dict[str, Any]:
    """Apply :func:`determinism_settings` to this process and return them.

    Call it before the first CUDA operation of the process (the scoring engine does, in
    ``_prepare``); calling it again is harmless. With mode ``off`` nothing is changed.

    Raises:
        InvalidSettingError: For an unknown mode.
    """
    env = os.environ if environ is None else environ
    settings = determinism_settings(mode, env)
    if settings["mode"] == "off":
        return settings
    wanted = settings["cublas_workspace_config"]
    if env.get(CUBLAS_ENV) != wanted:
        if env.get(CUBLAS_ENV):
            warnings.warn(f"{CUBLAS_ENV}={env[CUBLAS_ENV]!r} is not deterministic; proxybench sets {wanted}",
                          RuntimeWarning, stacklevel=2)
        if torch.cuda.is_initialized():
            warnings.warn(f"{CUBLAS_ENV} set after CUDA was initialised in this process: cuBLAS may already have "
                          f"sized its workspace; export {CUBLAS_ENV}={wanted} before starting Python to be sure",
                          RuntimeWarning, stacklevel=2)
        env[CUBLAS_ENV] = wanted
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True, warn_only=settings["warn_only"])
    # The legacy switches: they set conv and RNN alike (mixing them with the per-op
    # fp32_precision API makes PyTorch's own getters raise).
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    return settings


@dataclass(frozen=True)
class TorchDeterminismState:
    """The process-wide switches :func:`configure_cuda_determinism` changes, to put them back.

    Tests use it so that a test that configures CUDA determinism does not change the
    behaviour of every later test in the same process.
    """

    cublas: str | None
    cudnn_deterministic: bool
    cudnn_benchmark: bool
    deterministic: bool
    warn_only: bool
    cudnn_tf32: bool | None  # None: unreadable (the legacy getter raises once the per-op API was mixed in)
    matmul_tf32: bool | None

    @classmethod
    def capture(cls) -> TorchDeterminismState:
        return cls(
            cublas=os.environ.get(CUBLAS_ENV),
            cudnn_deterministic=bool(torch.backends.cudnn.deterministic),
            cudnn_benchmark=bool(torch.backends.cudnn.benchmark),
            deterministic=torch.are_deterministic_algorithms_enabled(),
            warn_only=torch.is_deterministic_algorithms_warn_only_enabled(),
            cudnn_tf32=_read_flag(lambda: torch.backends.cudnn.allow_tf32),
            matmul_tf32=_read_flag(lambda: torch.backends.cuda.matmul.allow_tf32),
        )

    def restore(self) -> None:
        if self.cublas is None:
            os.environ.pop(CUBLAS_ENV, None)
        else:
            os.environ[CUBLAS_ENV] = self.cublas
        torch.backends.cudnn.deterministic = self.cudnn_deterministic
        torch.backends.cudnn.benchmark = self.cudnn_benchmark
        torch.use_deterministic_algorithms(self.deterministic, warn_only=self.warn_only)
        if self.cudnn_tf32 is not None:
            torch.backends.cudnn.allow_tf32 = self.cudnn_tf32
        if self.matmul_tf32 is not None:
            torch.backends.cuda.matmul.allow_tf32 = self.matmul_tf32


def _read_flag(read: Callable[[], bool]) -> bool | None:
    try:
        return bool(read())
    except RuntimeError:
        return None


@contextmanager
def nondeterministic_alerts() -> Iterator[list[str]]:
    """Collect the ops that warned "does not have a deterministic implementation" inside the block.

    With mode ``warn`` PyTorch issues a ``UserWarning`` for each such call; when the block
    exits, the yielded list holds the op names (``adaptive_avg_pool2d_backward_cuda``, ...)
    once each, in order of first appearance. Other warnings are re-issued.
    """
    seen: list[str] = []
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as recorded:
            warnings.simplefilter("always")
            try:
                yield seen
            finally:
                caught = list(recorded)
    finally:
        # Outside the recording block, so a re-issued warning reaches the caller's filters.
        for item in caught:
            match = _ALERT.match(str(item.message))
            if match is None:
                warnings.warn_explicit(item.message, item.category, item.filename, item.lineno)
            elif match.group(1) not in seen:
                seen.append(match.group(1))
