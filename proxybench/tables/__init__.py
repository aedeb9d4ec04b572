"""Benchmark tables: SQL definitions in ``tables/`` computed over the Parquet views and rendered.

``list_tables`` / ``get_table`` read the definitions (:mod:`proxybench.tables.definition`),
``build_table`` computes one (:mod:`proxybench.tables.build`), ``render_table`` prints it
(:mod:`proxybench.tables.layout`).

Example:
    >>> table = build_table(get_table("zero-cost"), scores=["results"], truth=["results"])  # doctest: +SKIP
    >>> print(render_table(table, "latex"))  # doctest: +SKIP
"""

from proxybench.tables.build import CORRELATION_SCHEMA, TableBuildError, TableData, build_table
from proxybench.tables.definition import (
    TableDefinition,
    TableDefinitionError,
    UnknownTableError,
    get_table,
    list_tables,
    load_definitions,
)
from proxybench.tables.layout import FORMATS, render_table

__all__ = [
    "CORRELATION_SCHEMA",
    "FORMATS",
    "TableBuildError",
    "TableData",
    "TableDefinition",
    "TableDefinitionError",
    "UnknownTableError",
    "build_table",
    "get_table",
    "list_tables",
    "load_definitions",
    "render_table",
]
