"""Benchmark-table definitions: one ``.sql`` file per table, with its caption and layout in a header.

A definition is plain SQL a researcher can read, edit and run in any DuckDB session. Its
first comment lines are ``-- key: value`` fields:

* ``title`` (required) — one line, the table's heading.
* ``caption`` — may repeat; the lines are joined. States what the numbers are.
* ``needs`` — comma-separated views the query reads: ``scores``, ``truth``, ``archive``,
  ``predictions`` (the ``predictor_metrics`` of ``proxybench combine``)
  (``correlations`` is built from ``scores`` and ``truth``; see :mod:`proxybench.tables.build`).
* ``metrics`` — comma-separated truth metrics (shell wildcards allowed, ``fgsm@*``) for which
  the ``correlations`` table is computed. Without it no correlations are computed.
* ``decimals`` — digits after the point (default 3).

The body is the query, optionally preceded by a ``-- @derived-truth`` section: a query whose
rows (truth columns) are added to the ``truth`` view before correlations are computed (for
example the mean accuracy over a group of corruptions). The query itself follows
``-- @table`` (or makes up the whole body when there are no sections). It returns long rows:

=============  ============================================================================
``row``        row label (required)
``col``        column label (required)
``value``      the number (required; NULL renders as "—", never as an invented number)
``row_group``  optional block of rows (a rule between blocks; marks are per block)
``col_group``  optional header spanning columns
``better``     optional ``max`` / ``min``: best in bold, second underlined, per column
               within a row block; NULL: no marks
=============  ============================================================================

Row and column order is the order of first appearance, so ``ORDER BY`` decides the layout.
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from proxybench._naming import natural_key, suggest
from proxybench.errors import ProxybenchError

__all__ = [
    "TableDefinitionError",
    "UnknownTableError",
    "TableDefinition",
    "parse_definition",
    "load_definitions",
    "get_table",
    "list_tables",
    "VIEWS",
]

#: Views a definition may name in ``needs``.
VIEWS = ("scores", "truth", "archive", "predictions")

_FIELD = re.compile(r"^--\s*([a-z_-]+)\s*:\s?(.*)$")
_SECTION = re.compile(r"^--\s*@([a-z-]+)\s*$")
_SECTIONS = ("derived-truth", "table")
_KNOWN_FIELDS = ("title", "caption", "needs", "metrics", "decimals")


class TableDefinitionError(ProxybenchError):
    """A table definition file is malformed (the message names the file and the line)."""


class UnknownTableError(ProxybenchError):
    """No table definition of that name."""


@dataclass(frozen=True)
class TableDefinition:
    """One benchmark table: what it shows and the SQL that computes it.

    Attributes:
        name: The file's stem, the name ``proxybench tables render`` takes.
        title: Heading.
        caption: What the numbers are (rendered under/over the table).
        needs: Views the query reads.
        metrics: Truth-metric patterns the ``correlations`` table covers (empty: none).
        decimals: Digits after the point.
        query: The table query (long rows, see the module docstring).
        derived_truth: Optional query whose rows extend the ``truth`` view.
        path: Where the definition was read from.
    """

    name: str
    title: str
    caption: str
    needs: tuple[str, ...]
    metrics: tuple[str, ...]
    decimals: int
    query: str
    derived_truth: str | None
    path: Path

    def wants_metric(self, metric: str) -> bool:
        """Whether the correlations table should cover truth metric ``metric``."""
        return any(fnmatch.fnmatchcase(metric, pattern) for pattern in self.metrics)


def parse_definition(text: str, name: str, path: Path) -> TableDefinition:
    """Parse one definition file's text (see the module docstring for the format).

    Raises:
        TableDefinitionError: Missing title or query, an unknown field, view or section.
    """
    fields: dict[str, list[str]] = {}
    sections: dict[str, list[str]] = {}
    current: str | None = None
    in_header = True
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        section = _SECTION.match(stripped)
        if section:
            in_header = False
            current = section.group(1)
            if current not in _SECTIONS:
                raise TableDefinitionError(
                    f"{path} line {number}: unknown section @{current}; sections: "
                    + ", ".join(f"@{s}" for s in _SECTIONS))
            if current in sections:
                raise TableDefinitionError(f"{path} line {number}: section @{current} appears twice")
            sections[current] = []
            continue
        field = _FIELD.match(stripped) if in_header else None
        if field:
            key, value = field.group(1), field.group(2).strip()
            if key not in _KNOWN_FIELDS:
                raise TableDefinitionError(
                    f"{path} line {number}: unknown field {key!r}; fields: {', '.join(_KNOWN_FIELDS)}")
            fields.setdefault(key, []).append(value)
            continue
        if in_header and (not stripped or stripped.startswith("--")):
            continue  # blank lines and free comments in the header
        in_header = False
        sections.setdefault(current or "table", []).append(line)

    def single(key: str, default: str | None = None) -> str | None:
        values = fields.get(key)
        if not values:
            return default
        if len(values) > 1:
            raise TableDefinitionError(f"{path}: field {key!r} given {len(values)} times; give it once")
        return values[0]

    title = single("title")
    if not title:
        raise TableDefinitionError(f"{path}: no '-- title:' line; every table needs a title")
    query = "\n".join(sections.get("table", [])).strip()
    if not _has_sql(query):
        raise TableDefinitionError(f"{path}: no query; write the SQL after the header (or after '-- @table')")
    derived = "\n".join(sections.get("derived-truth", [])).strip() or None
    if derived is not None and not _has_sql(derived):
        derived = None
    needs = _split(single("needs", "scores, truth") or "")
    unknown = [v for v in needs if v not in VIEWS]
    if unknown:
        raise TableDefinitionError(f"{path}: unknown view(s) in needs: {', '.join(unknown)}; views: {', '.join(VIEWS)}")
    metrics = _split(single("metrics", "") or "")
    if metrics and not {"scores", "truth"} <= set(needs):
        raise TableDefinitionError(f"{path}: 'metrics' computes correlations, which need the scores and truth views")
    if derived is not None and "truth" not in needs:
        raise TableDefinitionError(f"{path}: an @derived-truth section needs the truth view")
    decimals_text = single("decimals", "3") or "3"
    if not decimals_text.isdigit() or int(decimals_text) > 12:
        raise TableDefinitionError(f"{path}: decimals must be a whole number 0..12, got {decimals_text!r}")
    return TableDefinition(
        name=name, title=title, caption=" ".join(fields.get("caption", [])).strip(), needs=needs,
        metrics=metrics, decimals=int(decimals_text), query=query, derived_truth=derived, path=path,
    )


def _split(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))


def _has_sql(text: str) -> bool:
    return any(line.strip() and not line.strip().startswith("--") for line in text.splitlines())


def builtin_tables_dir() -> Path:
    """Where the definitions shipped with proxybench live (the repository's ``tables/``)."""
    return Path(str(resources.files("proxybench_tables")))


def load_definitions(extra_dirs: list[str | os.PathLike[str]] | None = None) -> dict[str, TableDefinition]:
    """Every definition: the built-in ones, then ``extra_dirs`` (a same-named file there wins).

    Raises:
        TableDefinitionError: A malformed file, or an extra directory that does not exist.
    """
    folders = [builtin_tables_dir()]
    for extra in extra_dirs or []:
        folder = Path(extra)
        if not folder.is_dir():
            raise TableDefinitionError(f"tables directory {folder} does not exist; pass a folder of .sql files")
        folders.append(folder)
    found: dict[str, TableDefinition] = {}
    for folder in folders:
        for path in sorted(folder.glob("*.sql")):
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise TableDefinitionError(f"cannot read table definition {path}: {exc}") from None
            found[path.stem] = parse_definition(text, path.stem, path)
    return dict(sorted(found.items(), key=lambda item: natural_key(item[0])))


def list_tables(extra_dirs: list[str | os.PathLike[str]] | None = None) -> list[TableDefinition]:
    """All definitions, sorted by name."""
    return list(load_definitions(extra_dirs).values())


def get_table(name: str, extra_dirs: list[str | os.PathLike[str]] | None = None) -> TableDefinition:
    """The definition called ``name``.

    Raises:
        UnknownTableError: No such table (the message lists close names and how to list all).
    """
    definitions = load_definitions(extra_dirs)
    if name in definitions:
        return definitions[name]
    hint = suggest(name, list(definitions))
    raise UnknownTableError(
        f"unknown table {name!r}{hint} (see 'proxybench tables list' for the {len(definitions)} tables)")
