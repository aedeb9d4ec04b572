"""Importer for the NAS-Bench-201 robustness dataset (Jung, Lukasik, Keuper, ICLR 2023).

"Neural Architecture Design and Robustness: A Dataset" evaluates the NAS-Bench-201 networks
(the weights NB201 trained for 200 epochs) against adversarial attacks and common
corruptions. Data: http://data.robustness.vision/ (``meta.zip`` plus one zip per dataset);
code: github.com/steffen-jung/robustness-dataset. This loader is written from the layout
described there; it does not use the authors' helper class.

Layout of the source directory (the folder the zips are unpacked into):

* ``meta.json``: ``{"ids": {"<id>": {"nb201-string": "|...|", "isomorph": "<id>"}, ...},
  "epsilons": {"<attack>@Linf": [e1, e2, ...], ...}}``. There is one id per NB201
  architecture (15,625), and the id is NAS-Bench-201's own index (id ``0`` is
  ``|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|...|``, the benchmark's
  architecture 0), so it becomes ``arch_id``. ``isomorph`` points to the id of the
  architecture's canonical isomorph; a canonical architecture points to itself. The
  dataset evaluated only the 6,466 canonical ones. Epsilons are in units of 1/255
  (FGSM: 0.1, 0.5, 1, ..., 8 and 255; PGD and AutoAttack: 0.1, 0.5, 1, 2, 3, 4, 8).
* ``<dataset>/<key>_<measure>.json`` with ``<dataset>`` one of ``cifar10``,
  ``cifar100``, ``ImageNet16-120`` and ``<measure>`` one of ``accuracy``,
  ``confidence``, ``cm`` (confusion matrix). Each file holds
  ``{dataset: {key: {measure: {"<id>": value}}}}`` for the canonical ids. The value is
  one number for ``clean``, a list with one entry per epsilon (in ``meta.json``'s
  order) for an attack, and a list of five entries, severities 1 to 5, for a
  corruption. Accuracies are fractions (0.893), not percent. ImageNet16-120 has no
  corruption files.

Mapping to the truth table (:mod:`proxybench.truth.schema`):

* ``clean`` → metric ``clean_acc``, the clean test accuracy.
* ``fgsm@Linf``, ``pgd@Linf``, ``aa_apgd-ce@Linf``, ``aa_square@Linf`` → metric
  ``<attack>@<eps>``, with eps in units of 1/255 written as the shortest exact decimal:
  ``fgsm@8``, ``pgd@0.5``, ``fgsm@255``.
* The 15 CIFAR-10-C corruptions (:data:`CORRUPTIONS`) → ``cc:<corruption>@<severity>``,
  e.g. ``cc:gaussian_noise@3``. Severity ``i`` is list position ``i - 1``, unless
  ``meta.json`` has a ``severities`` list (or a ``{key: list}`` object), which then wins.
* ``value`` = fraction × 100 (percent); ``dataset`` is the directory's dataset;
  ``epochs`` 200 (NB201's schedule of the evaluated weights); ``seed`` ``unknown``: the
  README and helper do not say which of NB201's training seeds the weights came from;
  ``source`` ``robustness:<directory name>``.
* **Isomorph expansion.** Every one of the ids in ``meta.json`` (all 15,625 strings) gets
  its own rows. A non-canonical architecture takes the values of the canonical isomorph
  its ``isomorph`` field names, because only those were evaluated; a value that the file
  gives for the id itself would win. The file metadata says how many rows were inherited
  this way (``inherited_rows``), how many ids had no value at all (``missing_rows``) and
  in how many pairs the dataset's isomorph map disagrees with
  :func:`proxybench.spaces.nb201.arch_uid` (``isomorph_uid_mismatches``, 0 is expected:
  both follow NB201's own rule).
* Measures other than ``accuracy`` (``confidence``, ``cm``) are not read; their files
  are listed in the metadata under ``skipped`` with the reason, as are keys this
  importer does not know.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pyarrow as pa

from proxybench.errors import InvalidArchitectureError
from proxybench.spaces.nb201 import arch_uid, format_arch, parse_arch
from proxybench.truth._common import ReadOutput, SourceInfo, TruthImportError
from proxybench.truth.schema import TRUTH_SCHEMA

__all__ = [
    "IMPORTER_VERSION",
    "DATASETS",
    "ATTACKS",
    "CORRUPTIONS",
    "EPOCHS",
    "format_eps",
    "read_robustness",
    "claims",
    "read",
]

#: Bumped whenever the importer's output for the same input changes.
IMPORTER_VERSION = "1"

#: Dataset directories the dataset ships (names as the proxies see them, too).
DATASETS = ("cifar10", "cifar100", "ImageNet16-120")

#: Adversarial attacks; the files are ``<attack>@Linf_<measure>.json``.
ATTACKS = ("fgsm", "pgd", "aa_apgd-ce", "aa_square")

#: The 15 CIFAR-10-C / CIFAR-100-C corruptions (Hendrycks & Dietterich), as the files name them.
CORRUPTIONS = (
    "brightness", "contrast", "defocus_blur", "elastic_transform", "fog", "frost", "gaussian_noise",
    "glass_blur", "impulse_noise", "jpeg_compression", "motion_blur", "pixelate", "shot_noise", "snow",
    "zoom_blur",
)

#: Training length of the NB201 weights that were evaluated.
EPOCHS = 200

_MEASURE = "accuracy"
_NORM = "Linf"
_SEVERITIES = (1, 2, 3, 4, 5)
_FILE = re.compile(r"^(?P<key>.+)_(?P<measure>[A-Za-z]+)\.json$")


def format_eps(eps: float) -> str:
    """Epsilon (units of 1/255) as the shortest decimal that reads back exactly.

    Example:
        >>> format_eps(8.0), format_eps(0.5), format_eps(0.1)
        ('8', '0.5', '0.1')
    """
    return repr(float(eps)).removesuffix(".0")


def _load_json(path: Path, root: Path) -> Any:
    name = path.relative_to(root).as_posix()
    try:
        return json.loads(path.read_bytes())
    except UnicodeDecodeError:
        raise TruthImportError(f"{name} is not a UTF-8 JSON file") from None
    except json.JSONDecodeError as exc:
        raise TruthImportError(f"{name} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except OSError as exc:
        raise TruthImportError(f"cannot read {name}: {exc.strerror or exc}") from None


class _Meta:
    """``meta.json``: ids in index order, their strings, canonical ids and epsilons."""

    def __init__(self, root: Path):
        path = root / "meta.json"
        if not path.is_file():
            raise TruthImportError(
                f"{root.name} has no meta.json; unpack meta.zip from http://data.robustness.vision/ into it "
                "(the robustness dataset needs it for the architecture ids)"
            )
        data = _load_json(path, root)
        if not isinstance(data, dict) or not isinstance(data.get("ids"), dict) or not data["ids"]:
            raise TruthImportError(
                'meta.json has no "ids" object; expected {"ids": {"<id>": {"nb201-string": ..., "isomorph": ...}}, '
                '"epsilons": {...}} from the robustness dataset\'s meta.zip'
            )
        entries: dict[str, Any] = data["ids"]
        self.ids: list[str] = sorted(entries, key=lambda i: (not i.isdigit(), int(i) if i.isdigit() else 0, i))
        self.arch: dict[str, str] = {}
        self.canonical: dict[str, str] = {}
        seen: dict[str, str] = {}
        for ident in self.ids:
            entry = entries[ident]
            where = f"meta.json, id {ident}"
            if not isinstance(entry, dict) or "nb201-string" not in entry or "isomorph" not in entry:
                raise TruthImportError(f'{where}: expected {{"nb201-string": ..., "isomorph": ...}}, got {entry!r:.80}')
            try:
                arch = format_arch(parse_arch(entry["nb201-string"]))
            except InvalidArchitectureError as exc:
                raise TruthImportError(f"{where}: {exc}") from None
            if arch in seen:
                raise TruthImportError(f"{where}: {arch} is also id {seen[arch]}; each string must have one id")
            seen[arch] = ident
            self.arch[ident] = arch
            self.canonical[ident] = str(entry["isomorph"])
        for ident, target in self.canonical.items():
            if target not in self.arch:
                raise TruthImportError(f"meta.json, id {ident}: its isomorph {target!r} is not an id in meta.json")
            if self.canonical[target] != target:
                raise TruthImportError(
                    f"meta.json, id {ident}: its isomorph {target} is not canonical (points to "
                    f"{self.canonical[target]}); isomorph must name a canonical id"
                )
        self.arch_id: list[int | None] = [int(i) if i.isdigit() else None for i in self.ids]
        self.uid: dict[str, str] = {ident: arch_uid(arch) for ident, arch in self.arch.items()}
        self.uid_mismatches = sum(self.uid[i] != self.uid[c] for i, c in self.canonical.items())
        epsilons = data.get("epsilons", {})
        if not isinstance(epsilons, dict):
            raise TruthImportError(f'meta.json: "epsilons" must be an object {{"<attack>@Linf": [...]}}, got {epsilons!r:.60}')
        self.epsilons: dict[str, list[float]] = {}
        for key, values in epsilons.items():
            if not isinstance(values, list) or not values or not all(_is_number(v) for v in values):
                raise TruthImportError(f'meta.json: epsilons of {key!r} must be a list of numbers, got {values!r:.60}')
            self.epsilons[key] = [float(v) for v in values]
        self.severities = data.get("severities")

    def severities_of(self, key: str) -> tuple[list[int], str]:
        """Severity levels of corruption ``key`` and where they came from."""
        given = self.severities
        if isinstance(given, dict):
            given = given.get(key)
        if given is None:
            return list(_SEVERITIES), "list position + 1 (CIFAR-C severities 1-5)"
        if not isinstance(given, list) or not all(_is_number(v) and float(v) == int(v) for v in given):
            raise TruthImportError(f'meta.json: severities for {key!r} must be a list of integers, got {given!r:.60}')
        return [int(v) for v in given], "meta.json severities"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _metrics_of(key: str, meta: _Meta, name: str) -> list[str] | str:
    """Metric names of a value list for ``key`` (one per entry), or a reason to skip the key."""
    if key == "clean":
        return ["clean_acc"]
    attack, sep, norm = key.partition("@")
    if sep:
        if attack not in ATTACKS or norm != _NORM:
            return f"unknown attack key {key!r}"
        if key not in meta.epsilons:
            raise TruthImportError(f"{name}: meta.json has no epsilons for {key!r}; add meta.json from meta.zip")
        metrics = [f"{attack}@{format_eps(eps)}" for eps in meta.epsilons[key]]
        if len(set(metrics)) != len(metrics):
            raise TruthImportError(f"meta.json: epsilons of {key!r} repeat a value: {meta.epsilons[key]}")
        return metrics
    if key in CORRUPTIONS:
        severities, _ = meta.severities_of(key)
        return [f"cc:{key}@{s}" for s in severities]
    return f"unknown key {key!r}"


def read_robustness(root: Path, source: str) -> tuple[pa.Table, dict[str, str]]:
    """Read the robustness dataset directory ``root`` into truth rows (see the module docstring).

    Args:
        root: The directory holding ``meta.json`` and the dataset folders.
        source: Value of the ``source`` column (``robustness:<directory name>``).

    Returns:
        The truth table and metadata entries (mapping, skipped files, isomorph expansion).

    Raises:
        TruthImportError: meta.json missing or malformed, a file that is not JSON or not in
            the layout, an id that meta.json does not know, a value that is not a fraction,
            or no accuracy file at all. One line naming the file and id.
    """
    meta = _Meta(root)
    n = len(meta.ids)
    arch_col = pa.array([meta.arch[i] for i in meta.ids], pa.string())
    uid_col = pa.array([meta.uid[i] for i in meta.ids], pa.string())
    id_col = pa.array(meta.arch_id, pa.int64())
    position = {ident: k for k, ident in enumerate(meta.ids)}
    canonical_pos = [position[meta.canonical[i]] for i in meta.ids]

    chunks: list[pa.Table] = []
    imported: list[str] = []
    skipped: list[str] = []
    inherited = missing = 0
    severity_origin: set[str] = set()
    for dataset in DATASETS:
        folder = root / dataset
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.json")):
            name = f"{dataset}/{path.name}"
            match = _FILE.match(path.name)
            if match is None:
                skipped.append(f"{name} (not <key>_<measure>.json)")
                continue
            key, measure = match["key"], match["measure"]
            if measure != _MEASURE:
                skipped.append(f"{name} (measure {measure}: not an accuracy)")
                continue
            metrics = _metrics_of(key, meta, name)
            if isinstance(metrics, str):
                skipped.append(f"{name} ({metrics})")
                continue
            if key in CORRUPTIONS:
                severity_origin.add(meta.severities_of(key)[1])
            values = _values(_load_json(path, root), dataset, key, name)
            per_metric = [[math.nan] * n for _ in metrics]
            given = [False] * n
            for ident, value in values.items():
                if ident not in position:
                    raise TruthImportError(f"{name}: architecture id {ident!r} is not in meta.json's ids")
                entries = _entries(value, len(metrics), key, f"{name}, id {ident}")
                k = position[ident]
                given[k] = True
                for column, fraction in zip(per_metric, entries):
                    column[k] = fraction * 100.0
            take = []
            for k in range(n):
                if given[k]:
                    take.append((k, k))
                elif given[canonical_pos[k]]:
                    take.append((k, canonical_pos[k]))
                    inherited += len(metrics)
                else:
                    missing += len(metrics)
            rows = pa.array([k for k, _ in take], pa.int64())
            m = len(take)
            for metric, column in zip(metrics, per_metric):
                chunks.append(pa.Table.from_arrays([
                    pa.array(["nb201"] * m, pa.string()), arch_col.take(rows), uid_col.take(rows), id_col.take(rows),
                    pa.array([dataset] * m, pa.string()), pa.array([metric] * m, pa.string()),
                    pa.array([column[src] for _, src in take], pa.float64()), pa.array([EPOCHS] * m, pa.int64()),
                    pa.array(["unknown"] * m, pa.string()), pa.array([source] * m, pa.string()),
                ], schema=TRUTH_SCHEMA))
            imported.append(f"{name}={len(metrics)}")
    if not chunks:
        raise TruthImportError(
            f"{root.name} has no <dataset>/<key>_accuracy.json file (datasets: {', '.join(DATASETS)}); "
            "unpack the robustness dataset's <dataset>.zip or <dataset>-accuracies.zip next to meta.json"
        )
    metadata = {
        "imported_files": ";".join(imported),
        "skipped": ";".join(skipped),
        "ids": str(n),
        "canonical_ids": str(sum(1 for i in meta.ids if meta.canonical[i] == i)),
        "isomorph_expansion": "non-canonical architectures take their canonical isomorph's values "
                              "(meta.json 'isomorph'); the dataset evaluated only canonical ones",
        "inherited_rows": str(inherited),
        "missing_rows": str(missing),
        "isomorph_uid_mismatches": str(meta.uid_mismatches),
        "arch_id_from": "meta.json id (NAS-Bench-201 index)",
        "value_unit": "percent (the files hold fractions, multiplied by 100)",
        "epsilon_unit": "1/255 (metric <attack>@<eps>)",
        "severities_from": ";".join(sorted(severity_origin)),
        "epochs": f"{EPOCHS} (NB201 weights)",
        "seed": "unknown (not stated by the dataset)",
    }
    return pa.concat_tables(chunks), metadata


def _values(data: Any, dataset: str, key: str, name: str) -> dict[str, Any]:
    try:
        values = data[dataset][key][_MEASURE]
    except (KeyError, TypeError, IndexError):
        raise TruthImportError(
            f'{name} does not hold ["{dataset}"]["{key}"]["{_MEASURE}"]; expected '
            f'{{"{dataset}": {{"{key}": {{"{_MEASURE}": {{"<id>": value}}}}}}}}'
        ) from None
    if not isinstance(values, dict):
        raise TruthImportError(f"{name}: [{dataset}][{key}][{_MEASURE}] must map ids to values, got {type(values).__name__}")
    return values


def _entries(value: Any, expected: int, key: str, where: str) -> list[float]:
    if key == "clean":
        items = [value]
    elif isinstance(value, list):
        items = value
    else:
        raise TruthImportError(f"{where}: expected a list of {expected} accuracies, got {value!r:.60}")
    if len(items) != expected:
        what = "severities" if key in CORRUPTIONS else "epsilons in meta.json"
        raise TruthImportError(f"{where}: {len(items)} values, but there are {expected} {what}")
    out = []
    for item in items:
        if not _is_number(item) or not math.isfinite(item):
            raise TruthImportError(f"{where}: {item!r} is not a finite accuracy")
        if not 0.0 <= item <= 1.0:
            raise TruthImportError(f"{where}: {item!r} is outside 0..1 (the robustness dataset stores fractions)")
        out.append(float(item))
    return out


def claims(path: Path) -> bool:
    """``auto`` detection: a directory with ``meta.json`` and a ``cifar10``/``cifar100``/``ImageNet16-120`` folder."""
    return (path / "meta.json").is_file() and any((path / d).is_dir() for d in DATASETS)


def read(path: Path, info: SourceInfo) -> ReadOutput:
    """The :class:`~proxybench.truth.importers.Reader` entry point (see :func:`read_robustness`)."""
    truth, metadata = read_robustness(path, info.label)
    return ReadOutput(truth=truth, metadata=metadata)
