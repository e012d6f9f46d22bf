"""Lines that once broke a scan: JSON nested deeper than Python's recursion, and huge values against
backtracking regexes. Both engines read them, agree, and go on with the rest of the folder."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from sigma.collection import SigmaCollection
from sigma.types import SigmaRegularExpression

from r53sigma import rules as rules_mod
from r53sigma.scan.duckdb_engine import DuckEngine
from r53sigma.scan.reference import Engine
from r53sigma.scan.records import ReadError, load_json, read_paths
from r53sigma.scan.patterns import compile_re2, python_regex_to_re2, search_test

REPO = Path(__file__).resolve().parents[2]
DEPTH = 200_000  # far past Python's recursion limit (json.loads alone raises RecursionError)
RULES = """
title: nx
id: 0f1d2c3b-0000-4000-8000-00000000a001
logsource: {product: aws, service: route53resolver}
detection:
  sel: {rcode: NXDOMAIN}
  condition: sel
---
title: keyword
id: 0f1d2c3b-0000-4000-8000-00000000a002
logsource: {product: aws, service: route53resolver}
detection:
  keywords: ['*deep-marker*']
  condition: keywords
"""


def line(name: str = "a.example.com.", **extra) -> str:
    record = {"query_timestamp": "2024-05-01T10:00:00Z", "query_name": name, "query_type": "A", "rcode": "NXDOMAIN",
              "srcaddr": "10.0.0.5", "answers": []}
    record.update(extra)
    return json.dumps(record)


def deep_line() -> str:
    nested = "[" * DEPTH + '"deep-marker"' + "]" * DEPTH
    return line()[:-1] + ', "extra": ' + nested + "}"


def scan_both(paths: list[Path], rules: SigmaCollection) -> tuple[list[dict], list[str]]:
    errors: list[ReadError] = []
    expected = [a.to_json()["rule_id"] + str(a.event.line) for a in Engine(rules).scan(read_paths(paths, errors.append))]
    duck_errors: list[ReadError] = []
    got = [a.to_json()["rule_id"] + str(a.event.line) for a in DuckEngine(rules).scan_paths(paths, on_error=duck_errors.append)]
    assert got == expected
    assert [str(e) for e in duck_errors] == [str(e) for e in errors]
    return expected, [str(e) for e in errors]


def test_json_of_any_depth_loads_as_json_loads_would():
    assert load_json('{"a": [1, 2.5, "x", null, {"b": []}]}') == {"a": [1, 2.5, "x", None, {"b": []}]}
    value = load_json("[" * DEPTH + "]" * DEPTH)
    for _ in range(DEPTH - 1):
        (value,) = value
    assert value == []
    with pytest.raises(json.JSONDecodeError):
        load_json("[" * DEPTH + "]" * (DEPTH - 1))


def test_a_deeply_nested_line_is_evaluated_by_both_engines_and_the_folder_scan_goes_on(tmp_path):
    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "a.jsonl").write_text(line() + "\n" + deep_line() + "\n" + line() + "\n")
    (folder / "b.jsonl").write_text(line() + "\n")
    rules = SigmaCollection.from_yaml(RULES)
    alerts, errors = scan_both([folder], rules)
    nx, keyword = "0f1d2c3b-0000-4000-8000-00000000a001", "0f1d2c3b-0000-4000-8000-00000000a002"
    assert alerts == [nx + "1", nx + "2", keyword + "2", nx + "3", nx + "1"]  # the keyword is found 200,000 levels down
    assert errors == []


def test_a_deeply_nested_line_that_is_no_record_is_reported_and_reading_goes_on(tmp_path):
    log = tmp_path / "q.jsonl"
    log.write_text(line() + "\n" + "{" + '"a":{' * DEPTH + "}" * DEPTH + "}\n" + line() + "\n")
    alerts, errors = scan_both([log], SigmaCollection.from_yaml(RULES))
    assert len(alerts) == 2 and len(errors) == 1 and ":2: not a Route 53" in errors[0]


def pack_regexes() -> list[tuple[str, set]]:
    loaded = rules_mod.load([REPO / "sigma_rules"])
    found = []
    for rule in loaded.collection.rules:
        for detection in getattr(getattr(rule, "detection", None), "detections", {}).values():
            for item in detection.detection_items:
                for value in getattr(item, "value", []):
                    if isinstance(value, SigmaRegularExpression):
                        found.append((str(value.regexp), set(value.flags)))
    return found


def test_every_regex_of_the_pack_runs_in_linear_time():
    found = pack_regexes()
    assert len(found) >= 8
    for pattern, flags in found:
        assert compile_re2(python_regex_to_re2(pattern, flags)) is not None, pattern


def test_a_ten_megabyte_name_against_the_pack_is_decided_by_both_engines(tmp_path):
    # The Base64-label regex backtracked for minutes on such a name; RE2 reads it once.
    huge = "A1" * 5_000_000 + ".example.com."
    log = tmp_path / "q.jsonl"
    log.write_text(line(huge) + "\n" + line() + "\n")
    loaded = rules_mod.load([REPO / "sigma_rules" / "resolver" / "dns_query_with_base64_encoded_label.yml",
                             REPO / "sigma_rules" / "resolver" / "dns_query_with_very_long_label_or_name.yml"])
    alerts, errors = scan_both([log], loaded.collection)
    assert errors == [] and {a[-1] for a in alerts} == {"1"}  # both rules fire on the huge name only


def test_search_keeps_python_semantics_where_re2_differs_in_syntax():
    assert search_test("com$", set())("a.com\n")  # Python's $: before a final newline
    assert not search_test("com$", set())("a.com\nx")
    assert search_test(r"(a)\1", set())("xaax")  # back-reference: Python's re takes it


def test_scan_writes_an_alert_on_a_deeply_nested_record_and_goes_on(tmp_path, capsys):
    from r53sigma.cli import main

    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "a.jsonl").write_text(deep_line() + "\n" + line() + "\n")
    rules = tmp_path / "nx.yml"
    rules.write_text(RULES.split("---")[0])
    out = tmp_path / "alerts.jsonl"
    for engine in ("duckdb", "reference"):
        assert main(["scan", "--no-progress", "--engine", engine, "--rules", str(rules), "-o", str(out), str(folder)]) == 0
        written = [load_json(text) for text in out.read_text().splitlines()]
        assert [a["origin"].rsplit(":", 1)[1] for a in written] == ["1", "2"]
        assert "extra" in written[0]["event"]  # the record as read, 200,000 levels and all


def test_an_unpaired_surrogate_escape_is_reported_by_both_engines_and_the_scan_goes_on(tmp_path, capsys):
    # "\ud800" alone names no character (json.loads keeps it, DuckDB's JSON and UTF-8 output cannot): the
    # line is invalid JSON to both engines, reported with its number, and the other lines are scanned
    from r53sigma.cli import main

    log = tmp_path / "a.jsonl"
    log.write_text(line("api.ipify.org.\ud800") + "\n" + line("api.ipify.org.", srcaddr="\udc00") + "\n"
                   + line("pair\ud83d\ude00.api.ipify.org.") + "\n" + line("api.ipify.org.") + "\n")
    written, told = [], []
    for engine in ("duckdb", "reference"):  # the bundled rules
        out = tmp_path / f"{engine}.jsonl"
        assert main(["scan", "--no-progress", "--engine", engine, "-o", str(out), str(log)]) == 0
        written.append(out.read_text())
        told.append([l for l in capsys.readouterr().err.splitlines() if "surrogate" in l])
    assert written[0] == written[1]
    assert [a["origin"].rsplit(":", 1)[1] for a in map(json.loads, written[0].splitlines())] == ["3", "4"]
    assert told[0] == told[1] and [t.split(":")[1] for t in told[0]] == ["1", "2"]


def test_a_document_with_an_unpaired_surrogate_escape_loses_only_that_record(tmp_path):
    trail = {"eventVersion": "1.09", "eventTime": "2024-05-01T10:00:00Z", "eventSource": "route53.amazonaws.com",
             "eventName": "DeleteHostedZone", "awsRegion": "us-east-1", "sourceIPAddress": "198.51.100.1"}
    records = [trail, dict(trail, userAgent="x\udc00"), trail]
    one_line, pretty = tmp_path / "one.json", tmp_path / "pretty.json"
    one_line.write_text(json.dumps({"Records": records}) + "\n")
    pretty.write_text(json.dumps({"Records": records}, indent=2) + "\n")
    errors: list[ReadError] = []
    events = list(read_paths([one_line, pretty], errors.append))
    assert [(e.file, e.index) for e in events] == [(str(one_line), 1), (str(one_line), 3), (str(pretty), 1), (str(pretty), 3)]
    assert [str(e).split(": ", 1)[1] for e in errors] == ["record 2: an unpaired surrogate escape (\\ud800 to \\udfff alone names no character)"] * 2


def test_json_with_an_unpaired_surrogate_escape_is_one_record_refused_and_a_pair_is_one_character():
    from r53sigma.scan.records import RecordError, parse_record

    with pytest.raises(RecordError, match="unpaired surrogate"):
        parse_record('{"query_name": "x\\ud800", "query_timestamp": "2024-05-01T10:00:00Z"}')
    with pytest.raises(RecordError, match="unpaired surrogate"):
        parse_record('{"\\uDC00": 1, "query_timestamp": "2024-05-01T10:00:00Z"}')
    assert load_json('{"a": "\\ud83d\\ude00", "b": "\\\\ud800"}') == {"a": "\U0001F600", "b": "\\ud800"}


NUMBER_RULES = """
title: port 1024
id: 0f1d2c3b-0000-4000-8000-00000000a101
logsource: {product: aws, service: route53resolver}
detection:
  sel: {srcport: 1024}
  condition: sel
---
title: port above 2 to the 53
id: 0f1d2c3b-0000-4000-8000-00000000a102
logsource: {product: aws, service: route53resolver}
detection:
  sel: {srcport|gt: 9007199254740992}
  condition: sel
---
title: port above 5
id: 0f1d2c3b-0000-4000-8000-00000000a103
logsource: {product: aws, service: route53resolver}
detection:
  sel: {srcport|gt: 5}
  condition: sel
"""


def test_numbers_are_plain_ascii_decimals_compared_as_doubles_by_both_engines(tmp_path):
    """Python reads more as numbers than DuckDB (Unicode digits, underscores, Unicode spaces, exact big
    integers, a JSON 1e400 as infinity); a number here is what both read, compared as a finite double."""
    numbers = {  # srcport as written in the JSON line -> (= 1024, > 2**53, > 5)
        '"1024"': (True, False, True), '" 1024 \\n"': (True, False, True), '"+1024"': (True, False, True),
        '"1024.0"': (True, False, True), '"1e3"': (False, False, True), "1024.0": (True, False, True),
        '"1_024"': (False, False, False), '"\\u0661\\u0660\\u0662\\u0664"': (False, False, False),
        '"\\u00a01024"': (False, False, False), '"0x400"': (False, False, False), '"1 024"': (False, False, False),
        "1e400": (False, False, False), '"Infinity"': (False, False, False), '"NaN"': (False, False, False),
        "9007199254740993": (False, False, True), '"9007199254740993"': (False, False, True),  # 2**53 + 1 is 2**53 as a double
        "9007199254740994": (False, True, True), '"1' + "0" * 400 + '"': (False, False, False),
    }
    log = tmp_path / "numbers.jsonl"
    log.write_text("".join(line(f"n{i}.example.", srcport="PORT").replace('"PORT"', text) + "\n"
                           for i, text in enumerate(numbers)), encoding="utf-8")
    alerts, _ = scan_both([log], SigmaCollection.from_yaml(NUMBER_RULES))
    ids = ["0f1d2c3b-0000-4000-8000-00000000a101", "0f1d2c3b-0000-4000-8000-00000000a102", "0f1d2c3b-0000-4000-8000-00000000a103"]
    expected = sorted(f"{ids[k]}{n}" for n, wanted in enumerate(numbers.values(), 1) for k in range(3) if wanted[k])
    assert sorted(alerts) == expected


from hypothesis import given, settings, strategies as st  # noqa: E402

_space = st.sampled_from(["", " ", "\t", "\n", "\u00a0", "\u2003"])
_digits = st.text(alphabet=st.sampled_from(list("0159") + ["\u0661", "_", "\uff11"]), min_size=1, max_size=4)
_number_texts = st.builds(lambda a, sign, whole, dot, fraction, exponent, b: a + sign + whole + dot + fraction + exponent + b,
                          _space, st.sampled_from(["", "+", "-"]), _digits, st.sampled_from(["", "."]),
                          st.sampled_from(["", "5", "0\u0661"]), st.sampled_from(["", "e3", "E-2", "e400", "e"]), _space)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(st.lists(_number_texts, min_size=1, max_size=40))
def test_number_texts_are_read_alike_by_both_engines(tmp_path_factory, texts):
    log = tmp_path_factory.mktemp("numbers") / "numbers.jsonl"
    record = json.loads(line())
    log.write_text("".join(json.dumps(record | {"query_name": f"n{i}.", "srcport": text}, ensure_ascii=False) + "\n"
                           for i, text in enumerate(texts)), encoding="utf-8")  # UTF-8 as written: DuckDB's SQL reads it
    scan_both([log], SigmaCollection.from_yaml(NUMBER_RULES.replace("srcport|gt: 5", "srcport|gte: 0.5")))  # asserts they agree


DUPLICATE_SELECTIONS = {  # title -> selection; rule n has the id ...a20<n>
    "tor": "{query_name|endswith: '.onion'}", "private answer": "{answers.Rdata|cidr: 10.0.0.0/8}",
    "instance": "{srcids.instance: i-bad}", "no rcode": "{rcode: null}", "many from one source": "{query_type: A}",
}
DUPLICATE_RULES = "---\n".join(
    f"title: {title}\nid: 0f1d2c3b-0000-4000-8000-00000000a20{n}\nlogsource: {{product: aws, service: route53resolver}}\n"
    f"detection:\n  sel: {selection}\n  condition: sel\n" for n, (title, selection) in enumerate(DUPLICATE_SELECTIONS.items(), 1)
) + """---
title: burst
id: 0f1d2c3b-0000-4000-8000-00000000a206
correlation: {type: event_count, rules: [0f1d2c3b-0000-4000-8000-00000000a205], group-by: [srcaddr], timespan: 1m,
              condition: {gte: 2}}
"""


def test_a_key_written_twice_keeps_its_first_value_in_both_engines(tmp_path):
    """DuckDB's JSON reader keeps a duplicated key's first value, json.loads its last: the reference reads
    the first too, at the top level, in the answers and in srcids, so both engines see one record."""
    first = '"query_name": "a.onion.", '
    texts = [
        line("x.example.com.")[:-1] + ', ' + first[:-2] + "}",                        # 1 last is .onion: no alert now
        "{" + first + line("b.example.com.")[1:],                                    # 2 first is .onion: tor
        line().replace('"answers": []', '"answers": [{"Rdata": "10.0.0.1", "Rdata": "8.8.8.8"}]'),  # 3 private first: alert
        line().replace('"answers": []', '"answers": [{"Rdata": "8.8.8.8", "Rdata": "10.0.0.1"}]'),  # 4 none
        line().replace('"answers": []', '"answers": [], "srcids": {"instance": "i-bad", "instance": "i-ok"}'),  # 5 instance
        line().replace('"answers": []', '"answers": [], "srcids": {"instance": "i-ok", "instance": "i-bad"}'),  # 6 none
        line().replace('"rcode": "NXDOMAIN"', '"rcode": null, "rcode": "NOERROR"'),     # 7 no rcode
        line().replace('"rcode": "NXDOMAIN"', '"rcode": "NOERROR", "rcode": null'),     # 8 none
        line().replace('"srcaddr": "10.0.0.5"', '"srcaddr": "10.0.0.9", "srcaddr": "10.0.0.5"'),  # 9 groups with 10.0.0.9
        line().replace('"srcaddr": "10.0.0.5"', '"srcaddr": "10.0.0.9"'),                # 10 the burst's second
    ]
    log = tmp_path / "duplicates.jsonl"
    log.write_text("\n".join(texts) + "\n")
    assert json.loads(texts[1])["query_name"] == "b.example.com."  # json.loads alone keeps the last: the case is real
    rules = SigmaCollection.from_yaml(DUPLICATE_RULES)
    errors: list[ReadError] = []
    expected = [a.to_json() for a in Engine(rules).scan(read_paths([log], errors.append))]
    got = [a.to_json() for a in DuckEngine(rules).scan_paths([log], on_error=errors.append)]
    assert got == expected and errors == []
    lines = lambda n: [a["origin"].rsplit(":", 1)[1] for a in expected if a["rule_id"].endswith(f"a20{n}")]
    assert lines(1) == ["2"] and lines(2) == ["3"] and lines(3) == ["5"] and lines(4) == ["7"]
    (burst,) = [a for a in expected if a["rule_id"].endswith("a206") and a["group"] == {"srcaddr": "10.0.0.9"}]
    assert [o.rsplit(":", 1)[1] for o in burst["sample_origins"]] == ["9", "10"]  # line 9 grouped by its first srcaddr


def test_the_deep_reader_keeps_a_key_written_twice_first_value_too():
    value = load_json("[" * DEPTH + '{"a": 1, "b": {"c": 2, "c": 3}, "a": 4}' + "]" * DEPTH)
    for _ in range(DEPTH):
        (value,) = value
    assert value == {"a": 1, "b": {"c": 2}} and list(value) == ["a", "b"]


def test_a_bare_token_only_duckdb_reads_is_reported_on_every_line_by_both_engines(tmp_path):
    """``inf``, ``-Inf``, ``nan``: DuckDB's parser reads them as numbers, json.loads refuses them. A line that
    holds one is malformed for both engines, whether a rule matches it or not (reports and event counts agree)."""
    noerror = line().replace("NXDOMAIN", "NOERROR")
    log = tmp_path / "tokens.jsonl"
    log.write_text("\n".join([noerror, noerror[:-1] + ', "srcport": inf}', line()[:-1] + ', "srcport": -Inf}',
                              noerror[:-1] + ', "x": [nan]}', line()]) + "\n")
    alerts, errors = scan_both([log], SigmaCollection.from_yaml(RULES.split("---")[0]))  # no keyword: SQL decides every line
    assert alerts == ["0f1d2c3b-0000-4000-8000-00000000a0015"]
    assert [e.split(": ", 1)[0].rsplit(":", 1)[1] for e in errors] == ["2", "3", "4"]
