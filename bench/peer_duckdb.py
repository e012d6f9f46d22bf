"""A peer run for bench/scan.py: pysigma-backend-duckdb on the same log and single-event rules.

    python bench/peer_duckdb.py LOG OUT.json RULE_FILE...

What a user of that backend would do: convert each rule with its ``DuckDBBackend`` (the catalogue's
generic Sigma DNS names mapped to the Resolver field names by a field-mapping pipeline, as our own
pipelines map them), read the log with ``read_json_auto`` into its ``logs`` table, and run each query.
Writes {rule id: [matching line numbers] or "error: ..."}; the caller times this process and compares
the lines with the DuckDB engine's alerts (which the differential tests tie to the reference engine).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "backends"))


def main(argv: list[str]) -> int:
    import duckdb
    from sigma_backend_duckdb import DuckDBBackend
    from sigma.processing.conditions import LogsourceCondition
    from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
    from sigma.processing.transformations import FieldMappingTransformation

    from r53sigma import catalogue, rules as rules_mod

    log, out, *rule_files = argv
    resolver = catalogue.load()["resolver"]
    mapping = {name: resolver.field_for(name, generic_dns=True).name for name in resolver.rule_field_names(generic_dns=True)}
    pipeline = ProcessingPipeline(name="route53 resolver generic names", priority=20, items=[
        ProcessingItem(identifier="route53_dns_names", transformation=FieldMappingTransformation(mapping),
                       rule_conditions=[LogsourceCondition(category="dns")]),
    ])
    backend = DuckDBBackend(pipeline)
    loaded = rules_mod.load([Path(f) for f in rule_files])
    con = duckdb.connect()
    # sample_size=-1: the whole file decides the schema (the default sample misses rare keys and fails)
    con.execute(f"CREATE TABLE logs AS SELECT * FROM read_json_auto('{log}', sample_size=-1)")  # rowid = line - 1
    found: dict[str, object] = {}
    for rule in loaded.top_level():
        try:
            queries = backend.convert_rule(rule)
            lines: set[int] = set()
            for query in queries:
                sql = query.replace("SELECT * FROM logs", "SELECT rowid + 1 FROM logs", 1)
                lines.update(row[0] for row in con.execute(sql).fetchall())
            found[str(rule.id)] = sorted(lines)
        except Exception as error:  # noqa: BLE001 - the peer's failure is a result
            found[str(rule.id)] = f"error: {type(error).__name__}: {str(error).splitlines()[0][:200]}"
    Path(out).write_text(json.dumps(found))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
