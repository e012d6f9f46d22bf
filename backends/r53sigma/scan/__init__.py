"""The local scan engines: reading and normalising records (`records`), the reference engine
(`reference`), the Sigma-to-SQL compiler (`sqlcompile`) and the DuckDB engine (`duckdb_engine`).

What a rule means is specified once, in SEMANTICS.md beside this file; the engines implement it.
"""
