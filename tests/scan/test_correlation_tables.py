"""The DuckDB engine's correlation tables (r53sigma.scan.duckcorrelations) are made at a correlation's first
point: one that gets none costs no table (nor a query at the start or the end), with the reference's alerts."""
from __future__ import annotations

import json

from sigma.collection import SigmaCollection

from r53sigma.scan import duckcorrelations
from r53sigma.scan.duckdb_engine import DuckEngine
from r53sigma.scan.reference import Engine
from r53sigma.scan.records import parse_record, read_paths

RULES = """
title: nx
name: nx
logsource: {product: aws, service: route53resolver}
detection:
  sel: {rcode: NXDOMAIN}
  condition: sel
---
title: txt
name: txt
logsource: {product: aws, service: route53resolver}
detection:
  sel: {query_type: TXT}
  condition: sel
---
title: quiet
correlation: {type: event_count, rules: [txt], group-by: [srcaddr], timespan: 1m, condition: {gte: 2}}
---
title: ordered
correlation: {type: temporal_ordered, rules: [nx, txt], group-by: [srcaddr], timespan: 1m}
---
title: burst
correlation: {type: event_count, rules: [nx], group-by: [srcaddr], timespan: 1m, condition: {gte: 3}}
"""


def test_a_correlation_without_points_makes_no_table(tmp_path, monkeypatch):
    collection = SigmaCollection.from_yaml(RULES)
    collection.resolve_rule_references()
    # NXDOMAIN queries only: "quiet" (txt) gets no point, "ordered" and "burst" (nx) get some, "burst" fires
    raw = [{"query_timestamp": f"2024-05-01T10:00:0{i}Z", "query_name": "a.example.com.", "query_type": "A",
            "rcode": "NXDOMAIN", "srcaddr": "10.0.0.5", "answers": [], "srcids": {"instance": "i-1"}} for i in range(4)]
    log = tmp_path / "q.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in raw))
    seen: list[list[str]] = []  # the correlation tables on the connection when the alerts are decided
    alerts = duckcorrelations.CorrelationTables.alerts

    def tables(con) -> list[str]:
        names = con.execute("SELECT table_name FROM duckdb_tables() WHERE table_name SIMILAR TO '(acc|bins)[0-9]+_[0-9]+'").fetchall()
        return sorted(name.rsplit("_", 1)[0] for (name,) in names)

    def recording(self):
        seen.append(tables(self.con))
        yield from alerts(self)

    monkeypatch.setattr(duckcorrelations.CorrelationTables, "alerts", recording)
    expected = [a.to_json() for a in Engine(collection).scan(read_paths([log]))]
    assert [a["title"] for a in expected if "correlation" in a] == ["burst"]
    engine = DuckEngine(collection)
    assert [a.to_json() for a in engine.scan_paths([log])] == expected  # DuckDB reads the file
    assert engine.fast_files == 1
    events = [parse_record(r, file="gen", line=i) for i, r in enumerate(raw, 1)]
    assert [a.to_json() for a in engine.scan(events)] == [a.to_json() for a in Engine(collection).scan(events)]
    # "quiet" (number 0) has neither its point table nor its bins; "ordered" (1) and "burst" (2, pruned) have theirs
    assert seen == [["acc1", "acc2", "bins2"]] * 2
    assert tables(engine.con) == []  # and alerts() dropped them
