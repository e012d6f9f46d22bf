"""The typed read's text checks (r53sigma.scan.duckread): a line they do not let through is read by the
reference reader, so each case below is exact only if the check sees it; each case alerts (or not)
differently when DuckDB's columns evaluate it."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

from sigma.collection import SigmaCollection

from r53sigma.scan.duckdb_engine import DuckEngine
from r53sigma.scan.reference import Engine
from r53sigma.scan.records import read_paths

RULES = SigmaCollection.from_yaml(textwrap.dedent("""
    title: NX
    id: 7b1e0c2d-0000-4000-8000-0000000000d1
    logsource: {product: aws, service: route53resolver}
    detection: {sel: {rcode: NXDOMAIN}, condition: sel}
    level: low
    ---
    title: answer
    id: 7b1e0c2d-0000-4000-8000-0000000000d2
    logsource: {product: aws, service: route53resolver}
    detection: {sel: {answers.Rdata|contains: '10.1.1.1'}, condition: sel}
    level: low
    ---
    title: answer infinity
    id: 7b1e0c2d-0000-4000-8000-0000000000d3
    logsource: {product: aws, service: route53resolver}
    detection: {sel: {answers.Rdata|endswith: 'inity'}, condition: sel}
    level: low
    ---
    title: no name
    id: 7b1e0c2d-0000-4000-8000-0000000000d4
    logsource: {product: aws, service: route53resolver}
    detection: {sel: {query_name: null}, condition: sel}
    level: low
    """))


def record(**fields) -> dict:
    base = {"query_timestamp": "2024-05-01T10:00:00Z", "query_name": "a.example.com.", "query_type": "A",
            "rcode": "NOERROR", "srcaddr": "10.0.0.5", "answers": []}
    base.update(fields)
    return base


GOOD = json.dumps(record(query_name="good.example.com.", rcode="NXDOMAIN"))
TRAIL = {"eventTime": "2024-05-01T10:00:00Z", "eventSource": "route53.amazonaws.com", "eventName": "GetChange",
         "awsRegion": "us-east-1"}  # with these keys a record is CloudTrail's to the reference reader


def agree(tmp_path: Path, lines: list[str]) -> list[dict]:
    """Both engines over the lines as one file: same alerts, same reported problems, DuckDB reading the file."""
    log = tmp_path / "q.log"
    log.write_text("".join(line + "\n" for line in [GOOD, *lines]))
    ref_errors, duck_errors = [], []
    expected = [a.to_json() for a in Engine(RULES).scan(read_paths([log], ref_errors.append))]
    engine = DuckEngine(RULES)
    got = [a.to_json() for a in engine.scan_paths([log], None, duck_errors.append)]
    assert got == expected
    assert [str(e) for e in duck_errors] == [str(e) for e in ref_errors]
    assert engine.fast_files == 1
    return expected


def nx_lines(alerts: list[dict]) -> list[str]:
    return [a["origin"].rsplit(":", 1)[1] for a in alerts if a["title"] == "NX"]


def test_another_source_s_keys_send_the_line_to_the_reference_reader_first_after_a_comma_escaped_or_null(tmp_path):
    nx = {"query_timestamp": "2024-05-01T10:00:00Z", "query_name": "a.example.com.", "rcode": "NXDOMAIN"}
    first = "{" + ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in {**TRAIL, **nx}.items()) + "}"
    after = json.dumps({**nx, **TRAIL}, separators=(",", ":"))  # each key right after a comma
    spaced = json.dumps({**nx, **TRAIL}).replace(", ", " ,\t ")  # white space around the commas
    escaped = json.dumps({**nx, **TRAIL}).replace('"event', '"\\u0065vent').replace('"awsR', '"aws\\u0052')
    nulls = json.dumps({**nx, **{k: None for k in TRAIL}})  # null values: the keys still count to the reference
    for number, line in enumerate([first, after, spaced, escaped, nulls]):
        folder = tmp_path / str(number)
        folder.mkdir()
        assert nx_lines(agree(folder, [line])) == ["1"], line  # CloudTrail's record: not the NX rule's


def test_another_source_s_key_first_in_the_line_is_seen(tmp_path):
    # one key each: neither source's record to the reference reader, a Resolver record without a name to DuckDB
    line = '{"eventTime": "2024-05-01T10:00:00Z", "query_timestamp": "2024-05-01T10:00:00Z"}'
    alerts = agree(tmp_path, [line, " \t" + line])
    assert [a for a in alerts if a["title"] == "no name"] == []


def test_a_resolver_record_that_only_mentions_another_source_s_key_in_a_value_alerts(tmp_path):
    line = json.dumps(record(rcode="NXDOMAIN", query_name='"eventName",x.example.'))
    assert nx_lines(agree(tmp_path, [line])) == ["1", "2"]


def test_records_and_log_events_lists_are_their_records(tmp_path):
    inner = record(rcode="NXDOMAIN", query_name="inner.example.com.")
    for number, key in enumerate(["Records", "logEvents"]):
        folder = tmp_path / str(number)
        folder.mkdir()
        items = [inner] if key == "Records" else [{"message": json.dumps(inner)}]
        alerts = agree(folder, [json.dumps(record(rcode="NXDOMAIN", **{key: items}))])
        assert [a["event"]["query_name"] for a in alerts if a["title"] == "NX"][-1] == "inner.example.com."


def test_trailing_commas_anywhere_are_reported_as_json_loads_reports_them(tmp_path):
    nx = json.dumps(record(rcode="NXDOMAIN"))
    odd = [nx[:-1] + ",}", nx[:-1] + ", \t}", nx.replace('"answers": []', '"answers": [{"Rdata": "10.1.1.1"},]'),
           nx.replace('"answers": []', '"answers": [{"Rdata": "10.1.1.1",}]')]
    alerts = agree(tmp_path, odd)
    assert nx_lines(alerts) == ["1"]


def test_answers_other_than_a_list_of_flat_objects_are_read_by_the_reference_reader(tmp_path):
    shapes = [
        '[{"Rdata": {"ip": "10.1.1.1"}}]',  # a container where the catalogue has a value
        '[{"Rdata": ["10.1.1.1"]}]',
        '[[{"Rdata": "10.1.1.1"}]]',  # nested lists: the reference flattens them
        '{"Rdata": "10.1.1.1"}',  # an object where the catalogue has a list
        '[{"Rdata": NaN}]', '[{"Rdata": "x", "Type": Infinity}]', '[{"Rdata": -Infinity}]',  # numbers to Python
        '["10.1.1.1"]', '[1, {"Rdata": "10.1.1.1"}]',
    ]
    kept = [
        '[null, {"Rdata": "10.1.1.1", "Type": "A", "TTL": 60, "ok": true, "no": null}]',
        '[{"Rdata": "\\"10.1.1.1 {x} [y]\\"", "Type": "TXT"}]',  # braces and quotes inside a string
    ]
    base = json.dumps(record(rcode="NXDOMAIN"))
    lines = [base.replace('"answers": []', f'"answers": {shape}') for shape in shapes + kept]
    alerts = agree(tmp_path, lines)
    assert nx_lines(alerts) == [str(n) for n in range(1, len(lines) + 2)]
    assert [a["origin"].rsplit(":", 1)[1] for a in alerts if a["title"] == "answer"][-2:] == [str(len(lines)), str(len(lines) + 1)]


def test_fields_no_rule_reads_may_hold_anything(tmp_path):
    lines = [json.dumps(record(rcode="NXDOMAIN", srcport=[1], version={"v": NaN}, srcids=[{"instance": "i-1"}]))
             for NaN in [float("nan")]]
    assert nx_lines(agree(tmp_path, lines)) == ["1", "2"]


def test_a_matching_line_with_a_number_only_duckdb_reads_is_reported_as_json_loads_reports_it(tmp_path):
    # inf, nan and signed spellings: DuckDB's parser reads them, json.loads refuses the line (once a crash here)
    nx = json.dumps(record(rcode="NXDOMAIN"))
    lines = [nx[:-1] + f', "x": {token}}}' for token in ["inf", "-nan", "+Infinity", "NAN", "-inf", "[1, Inf]", "[ nan]", "[-i]"]]
    alerts = agree(tmp_path, lines + [nx[:-1] + ', "x": NaN, "y": -Infinity}'])  # Python's spellings: read
    assert nx_lines(alerts) == ["1", str(len(lines) + 2)]


def test_times_python_cannot_read_or_print_are_reported_as_the_reference_reports_them(tmp_path):
    # DuckDB casts year 0, json.loads reads Infinity and NaN, an integer may pass any float: the columns take
    # only the times Python reads as DuckDB does; the others are the reference reader's to report
    times = ["0000-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z", "2024-02-30T00:00:00Z"]
    lines = [json.dumps(record(query_timestamp=t, rcode="NXDOMAIN")) for t in times]
    untimed = {k: v for k, v in record(rcode="NXDOMAIN").items() if k != "query_timestamp"}
    lines += [json.dumps(untimed)[:-1] + f', "query_timestamp": {n}}}'
              for n in ("Infinity", "NaN", "1e400", "-1e300", "1" + "0" * 400, "1714557600123")]
    alerts = agree(tmp_path, lines)
    assert nx_lines(alerts) == ["1", "3", "4", "11"]  # the good line, years 1 and 9999, epoch milliseconds
