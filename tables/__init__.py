"""The benchmark-table definitions shipped with proxybench (installed as ``proxybench_tables``).

Each ``*.sql`` file here is one table; see ``README.md`` and :mod:`proxybench.tables.definition`.
"""
