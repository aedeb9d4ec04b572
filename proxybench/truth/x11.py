"""Importer for NAS-Bench-x11's NAS-Bench-201 surrogate (Yan, White, Savani, Hutter, NeurIPS 2021).

NAS-Bench-x11 (github.com/automl/nas-bench-x11) predicts whole learning curves. Its
NB201 model ("NAS-Bench-211") is an ensemble trained on NB201's ``cifar10-valid`` curves
(``eval_acc1es``, 200 epochs, percent; x11's ``surrogate_model.py`` reads
``nb201_cifar10_full_training.pickle`` for ``nb201``, and its NASLib only queries it for
cifar10). The package is **not on PyPI** and is an optional extra that proxybench does not
declare; install it with ``pip install git+https://github.com/automl/nas-bench-x11``.
It is imported only when an x11 source is read.

Source: the surrogate directory that x11's ``load_ensemble`` takes, e.g.
``checkpoints/nb211-v0.5`` (older code: ``checkpoints/surrogate-nb201-v0.5``). It holds one
folder per ensemble member, each with ``surrogate_model.model``, ``model_config.json`` and
``data_config.json``; ``load_ensemble`` finds the members by globbing
``*surrogate_model.model``.

For each NB201 string (all 15,625 by default) the importer calls
``api.predict(config=arch, representation="arch_str", search_space="nb201",
with_noise=False)``, the call x11's NASLib makes: ``arch_str`` makes x11 encode the
canonical string itself, and ``with_noise=False`` returns the ensemble mean, so the
import is deterministic. Rows: dataset ``cifar10``, metric ``valid_acc`` = the curve's
last value (percent), ``epochs`` = the curve's length (200), ``seed`` ``surrogate``,
``arch_id`` null (the surrogate knows no benchmark index), ``source``
``x11:<surrogate directory name>``; the file metadata records the surrogate's full path,
its member count and model type and the predict arguments, so every value says which
surrogate produced it.

Tested against a stand-in module that mimics the ``load_ensemble``/``predict`` signatures
(``tests/test_truth_x11.py``), not against the real package and a real surrogate.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from proxybench.errors import InvalidArchitectureError
from proxybench.spaces.nb201 import all_archs, arch_uid, format_arch, parse_arch
from proxybench.truth._common import ReadOutput, SourceInfo, TruthImportError
from proxybench.truth.schema import TRUTH_SCHEMA

__all__ = ["IMPORTER_VERSION", "MODEL_FILE", "INSTALL_HINT", "find_members", "read_x11", "claims", "read"]

#: Bumped whenever the importer's output for the same input changes.
IMPORTER_VERSION = "1"

#: File each ensemble member stores (x11's ``load_ensemble`` globs ``*surrogate_model.model``).
MODEL_FILE = "surrogate_model.model"

INSTALL_HINT = "pip install git+https://github.com/automl/nas-bench-x11"

_PREDICT = {"representation": "arch_str", "search_space": "nb201", "with_noise": False}
_OTHER_SPACES = ("nb101", "nb111", "nb301", "nb311", "darts", "nlp")


def find_members(path: Path) -> list[Path]:
    """Ensemble member folders under ``path`` (the folder itself, or up to two levels down)."""
    found = [*path.glob(MODEL_FILE), *path.glob(f"*/{MODEL_FILE}"), *path.glob(f"*/*/{MODEL_FILE}")]
    return sorted(p.parent for p in found if p.is_file())


def _load_api(path: Path) -> Any:
    try:
        from nas_bench_x11.api import load_ensemble
    except ImportError:
        raise TruthImportError(
            f"reading nas-bench-x11 surrogates needs the nas_bench_x11 package (not on PyPI): {INSTALL_HINT} "
            "and its requirements"
        ) from None
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # load_ensemble prints the directory
            return load_ensemble(str(path))
    except Exception as exc:  # noqa: BLE001 - any failure of the third-party loader is one line
        raise TruthImportError(
            f"nas_bench_x11 could not load the surrogate in {path.name}: {type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")
        ) from None


def _member_model(members: list[Path]) -> str:
    try:
        config = json.loads((members[0] / "model_config.json").read_text())
        return str(config.get("model", "unknown"))
    except (OSError, ValueError, AttributeError):
        return "unknown"


def read_x11(path: Path, source: str, archs: Sequence[str] | None = None) -> tuple[pa.Table, dict[str, str]]:
    """Predict each architecture's final validation accuracy with the x11 surrogate in ``path``.

    Args:
        path: The surrogate directory (ensemble members with ``surrogate_model.model``).
        source: Value of the ``source`` column (``x11:<directory name>``).
        archs: NB201 strings to predict; default all 15,625.

    Returns:
        The truth table and metadata naming the surrogate and how it was queried.

    Raises:
        TruthImportError: ``nas_bench_x11`` is not installed, the directory holds no
            surrogate, a string is malformed, or a prediction is not a curve of finite
            percentages. One line.
    """
    members = find_members(path)
    if not members:
        raise TruthImportError(
            f"{path.name} holds no {MODEL_FILE}; expected a nas-bench-x11 surrogate directory such as "
            "checkpoints/nb211-v0.5 (ensemble members with surrogate_model.model, model_config.json, data_config.json)"
        )
    wanted = list(all_archs()) if archs is None else list(archs)
    canonical = []
    for arch in wanted:
        try:
            canonical.append(format_arch(parse_arch(arch)))
        except InvalidArchitectureError as exc:
            raise TruthImportError(f"{exc}") from None
    if not canonical:
        raise TruthImportError("no architectures to predict")
    api = _load_api(path)

    finals: list[float] = []
    length: int | None = None
    for arch in canonical:
        try:
            curve = api.predict(config=arch, **_PREDICT)
        except Exception as exc:  # noqa: BLE001
            first = str(exc).splitlines()[0] if str(exc) else ""
            raise TruthImportError(
                f"the x11 surrogate in {path.name} failed on {arch}: {type(exc).__name__}: {first} "
                "(is it an NB201 surrogate?)"
            ) from None
        values = _curve(curve, path.name, arch)
        if length is None:
            length = len(values)
        elif len(values) != length:
            raise TruthImportError(
                f"the x11 surrogate in {path.name} returned a curve of {len(values)} epochs for {arch}, "
                f"{length} for the others"
            )
        finals.append(values[-1])
    if max(finals) <= 1.0:
        raise TruthImportError(
            f"every accuracy the surrogate in {path.name} predicts is <= 1 (largest {max(finals):g}); these look "
            "like fractions, but NB201 surrogates predict percent"
        )
    n = len(canonical)
    columns: dict[str, list[Any]] = {
        "space": ["nb201"] * n, "arch": canonical, "arch_uid": [arch_uid(a) for a in canonical], "arch_id": [None] * n,
        "dataset": ["cifar10"] * n, "metric": ["valid_acc"] * n, "value": finals, "epochs": [length] * n,
        "seed": ["surrogate"] * n, "source": [source] * n,
    }
    metadata = {
        "surrogate": str(path.resolve()),
        "surrogate_members": str(len(members)),
        "surrogate_model": _member_model(members),
        "nas_bench_x11_version": _package_version(),
        "predict": "predict(config=<arch>, representation='arch_str', search_space='nb201', with_noise=False)",
        "value": "last epoch of the predicted cifar10-valid learning curve (ensemble mean), percent",
        "curve_length": str(length),
        "archs": "all 15625" if archs is None else str(n),
    }
    return pa.Table.from_pydict(columns, schema=TRUTH_SCHEMA), metadata


def _curve(curve: Any, name: str, arch: str) -> list[float]:
    try:
        values = [float(v) for v in (curve.tolist() if hasattr(curve, "tolist") else curve)]
    except (TypeError, ValueError):
        raise TruthImportError(
            f"the x11 surrogate in {name} returned {type(curve).__name__} for {arch}, not a learning curve"
        ) from None
    if not values:
        raise TruthImportError(f"the x11 surrogate in {name} returned an empty curve for {arch}")
    if not all(math.isfinite(v) for v in values):
        raise TruthImportError(f"the x11 surrogate in {name} returned a non-finite accuracy for {arch}")
    return values


def _package_version() -> str:
    from importlib import metadata

    for dist in ("nas-bench-x11", "nas_bench_x11", "nasbench_x11"):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return "unknown"


def claims(path: Path) -> bool:
    """``auto`` detection: a directory with ``surrogate_model.model`` members whose name names no other space."""
    if any(space in path.name.lower() for space in _OTHER_SPACES):
        return False
    return bool(find_members(path))


def read(path: Path, info: SourceInfo) -> ReadOutput:
    """The :class:`~proxybench.truth.importers.Reader` entry point (see :func:`read_x11`)."""
    truth, metadata = read_x11(path, info.label)
    return ReadOutput(truth=truth, metadata=metadata)
