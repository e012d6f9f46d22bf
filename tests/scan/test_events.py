"""Reading raw Route 53 records and log files into normalised events."""
from __future__ import annotations

import gzip
import io
import json
import sys

import pytest

from r53sigma.scan.records import RecordError, parse_record, parse_time, read_paths

RESOLVER = {"version": "1.100000", "query_timestamp": "2021-12-11T22:46:23Z", "query_name": "evil.example.",
            "query_type": "A", "rcode": "NXDOMAIN", "answers": [], "srcaddr": "172.31.86.159", "srcport": "48701"}
PUBLIC = "1.0 2017-12-13T08:15:50.235Z Z123412341234 example.com AAAA NOERROR TCP IAD12 55.36.5.7 192.168.222.0/24"
TRAIL = {"eventTime": "2015-01-16T00:41:48Z", "eventSource": "route53.amazonaws.com", "eventName": "ListHostedZones"}


def read(tmp_path, paths):
    errors = []
    events = list(read_paths(paths, errors.append))
    return events, errors


def test_detects_each_log_source():
    assert parse_record(RESOLVER).source == "resolver"
    assert parse_record(PUBLIC).source == "public_zone"
    assert parse_record(TRAIL).source == "cloudtrail"
    assert parse_record(json.dumps(TRAIL)).source == "cloudtrail"


def test_public_zone_line_columns_from_catalogue():
    event = parse_record(PUBLIC)
    assert event.record["queryName"] == "example.com"
    assert event.record["resolverIp"] == "55.36.5.7"
    assert event.record["ednsClientSubnet"] == "192.168.222.0/24"
    assert event.raw == PUBLIC


def test_public_zone_dash_subnet_is_absent():
    event = parse_record(PUBLIC.replace("192.168.222.0/24", "-"))
    assert "ednsClientSubnet" not in event.record


def test_timestamps_with_and_without_fractions():
    assert parse_record(RESOLVER).time == 1639262783.0
    assert parse_record(PUBLIC).time == pytest.approx(1513152950.235)
    assert parse_time("2021-12-11T22:46:23.500+00:00") == 1639262783.5


def test_bad_timestamp_is_a_record_error():
    with pytest.raises(RecordError, match="query_timestamp"):
        parse_record({**RESOLVER, "query_timestamp": "yesterday"})


def test_unknown_record_is_rejected():
    with pytest.raises(RecordError, match="not a Route 53"):
        parse_record({"foo": 1, "bar": 2})
    with pytest.raises(RecordError, match="public hosted-zone"):
        parse_record("hello world")


def test_trailing_dot_normalised_but_raw_untouched():
    record = {**RESOLVER, "answers": [{"Rdata": "host.internal.", "Type": "CNAME", "Class": "IN"}]}
    event = parse_record(record)
    assert event.record["query_name"] == "evil.example"
    assert event.record["answers"][0]["Rdata"] == "host.internal"
    assert record["query_name"] == "evil.example." and event.raw["answers"][0]["Rdata"] == "host.internal."


def test_malformed_lines_are_reported_and_good_lines_kept(tmp_path):
    log = tmp_path / "mixed.jsonl"
    log.write_text("\n".join([json.dumps(RESOLVER), "{broken", PUBLIC, "garbage line", json.dumps(TRAIL)]) + "\n")
    events, errors = read(tmp_path, [log])
    assert [e.source for e in events] == ["resolver", "public_zone", "cloudtrail"]
    assert [e.line for e in events] == [1, 3, 5]
    assert [(e.line, e.reason.split(":")[0]) for e in errors] == [(2, "invalid JSON"), (4, "neither JSON nor a public hosted-zone query log line (2 columns, expected 10)")]


def test_gzip_with_several_members_and_a_truncated_last_one(tmp_path):
    line = json.dumps(RESOLVER) + "\n"
    whole = gzip.compress((line * 3).encode()) + gzip.compress((line * 2).encode())
    truncated_member = gzip.compress((line * 4000).encode())
    path = tmp_path / "AWSLogs" / "111122223333" / "vpcdnsquerylogs" / "vpc-1" / "2021" / "12" / "11" / "a.log.gz"
    path.parent.mkdir(parents=True)
    path.write_bytes(whole + truncated_member[: len(truncated_member) // 2])
    events, errors = read(tmp_path, [tmp_path / "AWSLogs"])
    assert len(events) > 5  # every complete line of the truncated member too
    assert len(events) < 5 + 4000
    assert all(e.source == "resolver" for e in events)
    assert len(errors) == 1 and "truncated gzip" in errors[0].reason
    assert errors[0].line == len(events) + 1 and errors[0].file == str(path)


def test_cloudtrail_records_file_and_pretty_printed_json(tmp_path):
    (tmp_path / "trail.json").write_text(json.dumps({"Records": [TRAIL, TRAIL]}, indent=2))
    (tmp_path / "one.json").write_text(json.dumps(RESOLVER, indent=2))
    events, errors = read(tmp_path, [tmp_path])
    assert sorted(e.source for e in events) == ["cloudtrail", "cloudtrail", "resolver"]
    assert errors == []


def test_cloudwatch_export_and_subscription_formats(tmp_path):
    (tmp_path / "export.log").write_text("2021-12-11T22:46:24.000Z " + json.dumps(RESOLVER) + "\n")
    payload = {"messageType": "DATA_MESSAGE", "logEvents": [{"id": "1", "timestamp": 1, "message": PUBLIC}]}
    (tmp_path / "sub.json").write_text(json.dumps(payload))
    events, errors = read(tmp_path, [tmp_path])
    assert sorted(e.source for e in events) == ["public_zone", "resolver"] and errors == []


def test_folder_skips_other_files_and_missing_path_is_reported(tmp_path):
    (tmp_path / "README.md").write_text("not a log")
    (tmp_path / "q.log").write_text(PUBLIC + "\n")
    events, errors = read(tmp_path, [tmp_path, tmp_path / "missing"])
    assert len(events) == 1
    assert [(e.line, e.reason) for e in errors] == [(None, "no such file or folder")]


def test_stdin(monkeypatch):
    data = (json.dumps(RESOLVER) + "\n" + PUBLIC + "\n").encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(data))))
    events = list(read_paths(["-"]))
    assert [e.source for e in events] == ["resolver", "public_zone"]
    assert events[0].file == "<stdin>"


def test_broken_first_line_does_not_swallow_the_file(tmp_path):
    log = tmp_path / "q.jsonl"
    log.write_text("{\n" + json.dumps(RESOLVER) + "\n" + PUBLIC + "\n")
    events, errors = read(tmp_path, [log])
    assert [e.line for e in events] == [2, 3]
    assert [e.line for e in errors] == [1]
