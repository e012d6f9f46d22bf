"""The DuckDB engine gives the reference engine's alerts: rule cases, samples, files, features."""
from __future__ import annotations

import gzip
import json
import textwrap
from pathlib import Path

from sigma.collection import SigmaCollection

import r53sigma.testcases as testcases
from r53sigma.commands.scan import SAMPLES_DIR
import r53sigma.scan.duckdb_engine as engine_mod
from r53sigma.scan.duckdb_engine import DuckEngine
from r53sigma.scan.reference import Engine
from r53sigma.scan.records import parse_record, read_paths
from r53sigma import rules as rules_mod


def resolver(**fields) -> dict:
    record = {
        "version": "1.100000", "account_id": "111122223333", "region": "us-east-1", "vpc_id": "vpc-1",
        "query_timestamp": "2024-05-01T10:00:00Z", "query_name": "www.example.com.", "query_type": "A",
        "query_class": "IN", "rcode": "NOERROR", "answers": [], "srcaddr": "10.0.0.5", "srcport": "48701",
        "transport": "UDP", "srcids": {"instance": "i-0abc"},
    }
    record.update(fields)
    return record


def rules_of(text: str) -> SigmaCollection:
    return SigmaCollection.from_yaml(textwrap.dedent(text))


def both_on_events(collection, records):
    events = [parse_record(r, file="t", line=i) for i, r in enumerate(records, 1)]
    reference = [a.to_json() for a in Engine(collection).scan(events)]
    duck = [a.to_json() for a in DuckEngine(collection).scan(events)]
    return reference, duck


def both_on_paths(collection, paths):
    ref_errors, duck_errors = [], []
    reference = [a.to_json() for a in Engine(collection).scan(read_paths(paths, ref_errors.append))]
    engine = DuckEngine(collection)
    duck = [a.to_json() for a in engine.scan_paths(paths, None, duck_errors.append)]
    return reference, duck, [str(e) for e in ref_errors], [str(e) for e in duck_errors], engine.fast_files


def test_every_rule_case_gives_identical_alerts_on_both_engines(monkeypatch):
    reference = testcases.run()
    monkeypatch.setattr(testcases, "Engine", DuckEngine)
    duck = testcases.run()
    assert duck.ok and len(duck.results) == len(reference.results) > 100
    for ref, got in zip(reference.results, duck.results):
        assert (got.got, got.error) == (ref.got, ref.error), (ref.case_file.name, ref.name)
        assert [a.to_json() for a in got.alerts] == [a.to_json() for a in ref.alerts], (ref.case_file.name, ref.name)


def test_bundled_samples_give_identical_alerts_and_resolver_samples_take_the_fast_path():
    loaded = rules_mod.load(None, testcases.case_variables(testcases.default_cases_dir()))  # %ioc_domains%: its cases' list
    reference, duck, ref_errors, duck_errors, fast = both_on_paths(loaded.collection, [str(SAMPLES_DIR)])
    assert reference and duck == reference
    assert duck_errors == ref_errors
    assert fast >= 1  # the Resolver sample is read by DuckDB itself


RULES = """
title: NX
id: 5a0f7a52-3c86-4d6a-9a3e-0d6a1f0b2c01
logsource: {product: aws, service: route53resolver}
detection: {sel: {rcode: NXDOMAIN}, condition: sel}
level: low
---
title: NX base
id: 5a0f7a52-3c86-4d6a-9a3e-0d6a1f0b2c02
name: nx
logsource: {product: aws, service: route53resolver}
detection: {sel: {rcode: NXDOMAIN}, condition: sel}
level: low
---
title: NX burst
id: 5a0f7a52-3c86-4d6a-9a3e-0d6a1f0b2c03
correlation: {type: event_count, rules: [nx], group-by: [srcaddr], timespan: 5m, condition: {gte: 3}}
level: medium
"""


def nx_line(i: int) -> str:
    return json.dumps(resolver(query_timestamp=f"2024-05-01T10:00:{i % 60:02d}Z", query_name=f"n{i}.example.", rcode="NXDOMAIN"))


def test_malformed_lines_and_truncated_gzip_are_reported_as_the_reference_reports_them(tmp_path):
    good = [nx_line(i) for i in range(6)]
    text = "\n".join([good[0], "{not json", good[1], "garbage", good[2]]) + "\n"
    truncated = gzip.compress(("\n".join(good[3:]) + "\n").encode() + b'{"query_timestamp": "2024-05-01T10:00:59Z", "q' * 300)
    log = tmp_path / "q.log.gz"
    log.write_bytes(gzip.compress(text.encode()) + truncated[:-40])
    reference, duck, ref_errors, duck_errors, fast = both_on_paths(rules_of(RULES), [str(tmp_path)])
    assert len([a for a in duck if a["title"] == "NX"]) == 6
    assert duck == reference and duck_errors == ref_errors and len(ref_errors) == 3
    assert fast == 0


def test_clean_gzip_lines_take_the_fast_path_with_line_numbers(tmp_path):
    (tmp_path / "a.log.gz").write_bytes(gzip.compress(("\n".join(nx_line(i) for i in range(5)) + "\n").encode()))
    reference, duck, _, _, fast = both_on_paths(rules_of(RULES), [str(tmp_path)])
    assert fast == 1 and duck == reference
    assert [a["origin"] for a in duck if "origin" in a][-1].endswith("a.log.gz:5")
    assert duck[-1]["value"] == 5


def test_a_line_the_columns_cannot_take_is_read_and_reported_by_the_reference_reader_alone(tmp_path):
    odd = json.dumps(resolver(rcode="NXDOMAIN", srcport=1.5))  # a fractional number: not a catalogued shape
    (tmp_path / "a.log").write_text(nx_line(1) + "\n" + odd + "\n" + '{"query_timestamp": "2024-05-01T10:00:00Z", "rcode": "x",}\n')
    reference, duck, ref_errors, duck_errors, fast = both_on_paths(rules_of(RULES), [str(tmp_path)])
    assert fast == 1 and duck == reference and duck_errors == ref_errors == [f"{tmp_path / 'a.log'}:3: invalid JSON: Expecting property name enclosed in double quotes at column 58"]


def detection_rule(detection: str) -> SigmaCollection:
    return rules_of(
        "title: t\nid: 6a1d9c3e-0000-4000-8000-000000000001\nlogsource: {product: aws, service: route53resolver}\n"
        "detection:\n" + textwrap.indent(textwrap.dedent(detection).strip(), "  ") + "\nlevel: low\n"
    )


def matched_names(detection: str, records: list[dict]) -> list[str]:
    reference, duck = both_on_events(detection_rule(detection), records)
    assert duck == reference
    return [a["event"]["query_name"].rstrip(".") for a in duck]


def test_cidr_matches_ipv4_and_ipv6_answers_any_element():
    records = [
        resolver(query_name="a.", answers=[{"Rdata": "cname.example.com."}, {"Rdata": "10.1.2.3"}]),
        resolver(query_name="b.", answers=[{"Rdata": "fd00::1"}]),
        resolver(query_name="c.", answers=[{"Rdata": "::ffff:10.1.2.3"}]),  # IPv6: not in an IPv4 network
        resolver(query_name="d.", answers=[{"Rdata": "8.8.8.8"}, {"Rdata": "2001:db8::1"}]),
        resolver(query_name="e.", answers=[{"Rdata": " 10.0.0.1 "}]),  # Python strips the text first
    ]
    detection = "sel: {answers.Rdata|cidr: ['10.0.0.0/8', 'fc00::/7']}\ncondition: sel"
    assert matched_names(detection, records) == ["a", "b", "e"]


def test_regex_search_flags_and_python_only_syntax():
    records = [resolver(query_name="AbC.example."), resolver(query_name="abc\n.")]
    assert matched_names("sel: {query_name|re: 'bc\\.ex'}\ncondition: sel", records) == []
    assert matched_names("sel: {query_name|re|i: 'bc\\.ex'}\ncondition: sel", records) == ["AbC.example"]
    assert matched_names("sel: {query_name|re: 'abc$'}\ncondition: sel", [resolver(query_name="abc\n")]) == ["abc\n"]
    assert matched_names("sel: {query_name|re: '(?=A)Ab'}\ncondition: sel", records) == ["AbC.example"]  # look-ahead


def test_keywords_null_exists_numbers_and_not_over_answers():
    records = [
        resolver(query_name="k.", answers=[{"Rdata": "secret-token"}]),
        resolver(query_name="p.", srcport=53, answers=[]),
        resolver(query_name="q.", srcids={}),
    ]
    assert matched_names("keywords: ['secret-*']\ncondition: keywords", records) == ["k"]
    assert matched_names("sel: {srcport|lt: 1024}\ncondition: sel", records) == ["p"]
    assert matched_names("sel: {srcids.instance: null}\ncondition: sel", records) == ["q"]
    assert matched_names("sel: {answers.Rdata|exists: true}\ncondition: sel", records) == ["k"]
    assert matched_names("sel: {answers.Rdata: 'secret*'}\ncondition: not sel", records) == ["p", "q"]


def test_correlations_value_count_and_temporal_match_the_reference():
    collection = rules_of("""
        title: any
        id: 6a1d9c3e-0000-4000-8000-000000000010
        name: any_query
        logsource: {product: aws, service: route53resolver}
        detection: {sel: {query_name|exists: true}, condition: sel}
        ---
        title: tcp
        id: 6a1d9c3e-0000-4000-8000-000000000011
        name: tcp_query
        logsource: {product: aws, service: route53resolver}
        detection: {sel: {transport: TCP}, condition: sel}
        ---
        title: names
        id: 6a1d9c3e-0000-4000-8000-000000000012
        correlation: {type: value_count, rules: [any_query], group-by: [srcaddr], timespan: 1m, condition: {gte: 3, field: query_name}}
        ---
        title: both
        id: 6a1d9c3e-0000-4000-8000-000000000013
        correlation: {type: temporal_ordered, rules: [any_query, tcp_query], group-by: [srcaddr], timespan: 1m}
        ---
        title: by answer
        id: 6a1d9c3e-0000-4000-8000-000000000014
        correlation: {type: event_count, rules: [any_query], group-by: [answers.Rdata], timespan: 1m, condition: {gte: 2}}
    """)
    records = [
        resolver(query_timestamp=f"2024-05-01T10:{s // 60:02d}:{s % 60:02d}Z", query_name=f"n{s % 4}.", srcaddr=src, transport=t,
                 answers=[{"Rdata": "1.1.1.1"}, {"Rdata": f"2.2.2.{s % 2}"}])
        for s, src, t in [(1, "a", "UDP"), (2, "a", "TCP"), (3, "a", "UDP"), (59, "b", "UDP"), (61, "b", "UDP"), (5, "b", "TCP")]
    ]
    reference, duck = both_on_events(collection, records)
    assert duck == reference and {a["title"] for a in duck} == {"names", "both", "by answer"}


def test_blank_lines_keep_their_numbers_in_the_one_read(tmp_path):
    (tmp_path / "a.log").write_text(nx_line(1) + "\n\n  \t\n" + nx_line(2) + "\n")
    reference, duck, _, _, fast = both_on_paths(rules_of(RULES), [str(tmp_path)])
    assert fast == 1 and duck == reference
    assert [a["origin"] for a in duck if "origin" in a][-1].endswith("a.log:4")


def test_lines_of_several_gzip_members_keep_their_numbers_in_the_one_read(tmp_path):
    plain = [json.dumps(resolver(query_name=f"q{i}.example.")) for i in range(300)]
    matched = {7, 150, 151, 299}
    lines = [nx_line(i) if i in matched else plain[i] for i in range(300)]
    members = b"".join(gzip.compress(("\n".join(lines[a:a + 100]) + "\n").encode()) for a in (0, 100, 200))
    (tmp_path / "a.log.gz").write_bytes(members)
    reference, duck, _, _, fast = both_on_paths(rules_of(RULES), [str(tmp_path)])
    assert fast == 1 and duck == reference
    assert [a["origin"].rsplit(":", 1)[1] for a in duck if a["title"] == "NX"] == [str(i + 1) for i in sorted(matched)]


def test_a_clean_file_is_decompressed_once_by_duckdb_and_never_by_python(tmp_path, monkeypatch):
    import r53sigma.scan.duckdb_engine as duckdb_engine

    lines = [json.dumps(resolver(query_name=f"q{i}.example.")) for i in range(50)]
    lines[20] = nx_line(20)
    (tmp_path / "a.log.gz").write_bytes(gzip.compress("\n".join(lines).encode()))  # no newline after the last line
    expected = [a.to_json() for a in Engine(rules_of(RULES)).scan(read_paths([str(tmp_path)], None))]

    def no_python_read(*args, **kwargs):
        raise AssertionError("the exact reader was asked to read a clean file")

    monkeypatch.setattr(duckdb_engine.events_mod, "read_file", no_python_read)
    engine = DuckEngine(rules_of(RULES))
    assert [a.to_json() for a in engine.scan_paths([str(tmp_path)])] == expected and engine.fast_files == 1


def test_a_container_of_another_shape_than_the_catalogue_s_is_read_by_the_reference_reader(tmp_path):
    # the typed read is lenient (another JSON type is NULL there) while the reference reads these values
    shapes = [
        {"answers": {"Rdata": "10.1.1.1", "Type": "A"}},  # an object where the catalogue has a list
        {"answers": [[{"Rdata": "10.1.1.1"}]]},  # a list nested in the list: the reference flattens it
        {"srcids": [{"instance": "i-0abc"}]},  # a list where the catalogue has an object
    ]
    rule = rules_of("""
        title: private answer
        id: 6a1d9c3e-0000-4000-8000-0000000000c1
        logsource: {product: aws, service: route53resolver}
        detection:
          sel: {answers.Rdata|cidr: 10.0.0.0/8}
          inst: {srcids.instance: i-0abc}
          condition: sel or inst
        level: low
        """)
    for number, shape in enumerate(shapes):
        folder = tmp_path / str(number)
        folder.mkdir()
        (folder / "a.log").write_text(json.dumps(resolver(**{"srcids": {}, **shape})) + "\n")
        reference, duck, _, _, fast = both_on_paths(rule, [str(folder)])
        assert fast == 1 and duck == reference and len(reference) == 1, shape


def test_a_line_that_is_not_an_object_or_has_a_trailing_comma_is_reported_as_the_reference_reports_it(tmp_path):
    for number, odd in enumerate(['["x"]', nx_line(2)[:-1] + ', }']):
        folder = tmp_path / str(number)
        folder.mkdir()
        (folder / "a.log").write_text(nx_line(1) + "\n" + odd + "\n" + nx_line(3) + "\n")
        reference, duck, ref_errors, duck_errors, fast = both_on_paths(rules_of(RULES), [str(folder)])
        assert fast == 1 and duck == reference and duck_errors == ref_errors and len(ref_errors) == 1, odd


def test_a_value_the_columns_cannot_hold_is_read_by_the_reference_reader(tmp_path):
    odd = json.dumps(resolver(rcode=["NXDOMAIN"]))  # a list where the catalogue has one value
    (tmp_path / "a.log").write_text(nx_line(1) + "\n" + odd + "\n")
    reference, duck, _, _, fast = both_on_paths(rules_of(RULES), [str(tmp_path)])
    assert fast == 1 and duck == reference and len([a for a in duck if a["title"] == "NX"]) == 2


def test_or_ed_values_of_one_list_field_are_one_any_element_test():
    records = [
        resolver(query_name="a.", answers=[{"Rdata": "x.evil.com."}, {"Rdata": "8.8.8.8"}]),
        resolver(query_name="b.", answers=[{"Rdata": "10.9.9.9"}]),
        resolver(query_name="c.", answers=[{"Rdata": "1.2.3.4"}]),
        resolver(query_name="d.", answers=[{"Rdata": "9.9.9.9"}, {"Rdata": " 10.0.0.1"}]),  # padded: the reference decides
        resolver(query_name="e.", answers=[{"Rdata": "9.9.9.9"}, {"Rdata": "good.example."}]),
    ]
    selections = "sel_net: {answers.Rdata|cidr: '10.0.0.0/8'}\nsel_name: {answers.Rdata|endswith: '.evil.com'}\nsel_re: {answers.Rdata|re: '^1\\.2\\.'}\n"
    assert matched_names(selections + "condition: 1 of sel_*", records) == ["a", "b", "c", "d"]
    assert matched_names(selections + "condition: not 1 of sel_*", records) == ["e"]


def test_line_numbers_stay_exact_when_duckdb_reads_a_large_file_on_several_threads(tmp_path):
    matched = {0, 4096, 77777, 149999}
    plain = json.dumps(resolver(query_name="plain.example.", answers=[{"Rdata": "192.0.2.1", "Type": "A", "Class": "IN"}]))
    lines = [nx_line(i) if i in matched else plain for i in range(150000)]
    (tmp_path / "a.log.gz").write_bytes(gzip.compress(("\n".join(lines) + "\n").encode(), compresslevel=1))
    engine = DuckEngine(rules_of(RULES), threads=2)
    alerts = [a.to_json() for a in engine.scan_paths([str(tmp_path)])]
    assert engine.fast_files == 1
    assert [a["origin"].rsplit(":", 1)[1] for a in alerts if a["title"] == "NX"] == [str(i + 1) for i in sorted(matched)]


def test_cidr_over_ipv6_text_forms_matches_the_reference():
    forms = ["::1", "0::1", "0000:0000::0001", "0:0:0:0:0:0:0:1", "::2", "FE80::1", "fe7f::1", "febf:ffff::1",
             "fec0::1", "fc00::", "FDFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF", "fe00::1", "2600:1f18::1"]
    records = [resolver(query_name=f"n{i}.", answers=[{"Rdata": form}]) for i, form in enumerate(forms)]
    detection = "sel: {answers.Rdata|cidr: ['::1/128', 'fc00::/7', 'fe80::/10']}\ncondition: sel"
    assert matched_names(detection, records) == ["n0", "n1", "n2", "n3", "n5", "n7", "n9", "n10"]


SPILL_RULES = """
title: nx
name: nx
logsource: {product: aws, service: route53resolver}
detection: {sel: {rcode: NXDOMAIN}, condition: sel}
---
title: nx burst
correlation: {type: event_count, rules: [nx], group-by: [srcaddr], timespan: 1m, condition: {gte: 3}}
"""


def test_a_memory_limit_spills_to_a_private_folder_and_never_into_the_current_one(tmp_path, monkeypatch):
    import gc
    import tempfile

    monkeypatch.chdir(tmp_path)
    log = tmp_path / "q.jsonl"
    log.write_text("".join(
        json.dumps({"query_timestamp": f"2024-05-01T10:{i // 60:02d}:{i % 60:02d}Z", "query_name": f"n{i}.x.", "query_type": "A",
                    "rcode": "NXDOMAIN", "srcaddr": f"10.0.0.{i % 7}", "answers": []}) + "\n" for i in range(600)))
    collection = SigmaCollection.from_yaml(SPILL_RULES)
    collection.resolve_rule_references()
    engine = DuckEngine(collection, memory_limit="64MB")
    got = [a.to_json() for a in engine.scan_paths([log])]
    assert got == [a.to_json() for a in Engine(collection).scan(read_paths([log]))] and len(got) == 7
    assert [p.name for p in tmp_path.iterdir()] == ["q.jsonl"]
    spill = Path(engine.con.execute("SELECT current_setting('temp_directory')").fetchone()[0])
    assert spill.parent == Path(tempfile.gettempdir())
    del engine
    gc.collect()
    assert not spill.exists()


def test_a_memory_limit_duckdb_cannot_read_is_a_one_line_error(tmp_path, capsys):
    from r53sigma.cli import main

    log = tmp_path / "q.jsonl"
    log.write_text("")
    assert main(["scan", "--engine", "duckdb", "--memory-limit", "lots", str(log)]) == 2
    assert "--memory-limit" in capsys.readouterr().err


def test_correlation_points_come_from_the_pass_file_and_memory_keeps_only_the_lines_alerts_need(tmp_path, monkeypatch):
    collection = rules_of("""
        title: any
        id: 6a1d9c3e-0000-4000-8000-000000000020
        name: any_query
        logsource: {product: aws, service: route53resolver}
        detection: {sel: {query_name|exists: true}, condition: sel}
        ---
        title: private answer
        id: 6a1d9c3e-0000-4000-8000-000000000021
        name: private_answer
        logsource: {product: aws, service: route53resolver}
        detection: {sel: {answers.Rdata|cidr: 10.0.0.0/8}, condition: sel}
        ---
        title: NX
        id: 6a1d9c3e-0000-4000-8000-000000000022
        logsource: {product: aws, service: route53resolver}
        detection: {sel: {rcode: NXDOMAIN}, condition: sel}
        ---
        title: flood
        id: 6a1d9c3e-0000-4000-8000-000000000023
        correlation: {type: event_count, rules: [any_query], group-by: [srcaddr], timespan: 1m, condition: {gte: 10}}
        ---
        title: private answers
        id: 6a1d9c3e-0000-4000-8000-000000000024
        correlation: {type: event_count, rules: [private_answer], group-by: [srcaddr], timespan: 1m, condition: {gte: 2}}
    """)
    lines = []
    for i in range(3000):
        # a padded answer is unknown to SQL (Python strips it): the reference engine decides those rows
        answers = [{"Rdata": " 10.0.0.1 " if i % 500 in (7, 10) else "8.8.8.8"}]
        lines.append(json.dumps(resolver(query_timestamp=f"2024-05-01T10:{i // 50 % 60:02d}:{i % 50:02d}Z",
                                         srcaddr=f"10.0.0.{i % 3}", answers=answers,
                                         rcode="NXDOMAIN" if i % 1000 == 3 else "NOERROR")))
    (tmp_path / "a.log").write_text("\n".join(lines) + "\n")
    kept = []  # rows of the pass table in memory when its alerts are read
    original = engine_mod._Run._emit

    def counting_emit(self, tables, *args, **kwargs):
        kept.append(self.con.execute(f"SELECT count(*) FROM {tables['resolver']}").fetchall()[0][0])
        return original(self, tables, *args, **kwargs)

    monkeypatch.setattr(engine_mod._Run, "_emit", counting_emit)
    reference, duck, _, _, fast = both_on_paths(collection, [str(tmp_path)])
    assert fast == 1 and duck == reference
    titles = [a["title"] for a in duck]
    assert titles.count("NX") == 3 and "flood" in titles and "private answers" in titles
    assert kept == [3 + 12]  # the NX lines and the 12 rows the reference engine decided, of 3,000 counted lines


def test_a_correlation_counts_the_rows_sql_left_to_the_reference_engine(tmp_path):
    # the group and value columns of a row are kept for the correlations when their rule matched or SQL
    # left it unknown: here no other rule reads srcaddr or query_name, so nothing else keeps them
    collection = rules_of("""
        title: private answer
        id: 6a1d9c3e-0000-4000-8000-000000000031
        name: private_answer
        logsource: {product: aws, service: route53resolver}
        detection: {sel: {answers.Rdata|cidr: 10.0.0.0/8}, condition: sel}
        ---
        title: private answers from one source
        id: 6a1d9c3e-0000-4000-8000-000000000032
        correlation: {type: event_count, rules: [private_answer], group-by: [srcaddr], timespan: 1m, condition: {gte: 2}}
        ---
        title: names with private answers
        id: 6a1d9c3e-0000-4000-8000-000000000033
        correlation: {type: value_count, rules: [private_answer], group-by: [vpc_id], timespan: 1m,
                      condition: {gte: 2, field: query_name}}
    """)
    lines = []
    for i in range(12):
        # a padded answer is unknown to SQL (Python strips it): the reference engine decides those rows
        answers = [{"Rdata": " 10.0.0.1 " if i % 4 == 1 else "8.8.8.8"}]
        lines.append(json.dumps(resolver(query_timestamp=f"2024-05-01T10:00:{i:02d}Z", query_name=f"n{i}.example.com.",
                                         answers=answers)))
    (tmp_path / "a.log").write_text("\n".join(lines) + "\n")
    reference, duck, _, _, fast = both_on_paths(collection, [str(tmp_path)])
    assert fast == 1 and duck == reference
    assert sorted(a["title"] for a in duck) == ["names with private answers", "private answers from one source"]


def test_a_value_count_point_without_the_value_field_opens_its_window_as_in_the_reference(tmp_path):
    # an event of the group without the value (answers null, or absent) counts no value but is in the
    # window: its time may start the burst and it is evidence
    collection = rules_of("""
        title: any
        id: 6a1d9c3e-0000-4000-8000-000000000041
        name: any_query
        logsource: {product: aws, service: route53resolver}
        detection: {sel: {query_name|exists: true}, condition: sel}
        ---
        title: answers from one source
        id: 6a1d9c3e-0000-4000-8000-000000000042
        correlation: {type: value_count, rules: [any_query], group-by: [srcaddr], timespan: 1m,
                      condition: {gte: 1, field: answers.Rdata}}
    """)
    lines = [resolver(query_timestamp="2024-05-01T10:00:00Z", answers=None),
             {k: v for k, v in resolver(query_timestamp="2024-05-01T10:00:05Z").items() if k != "answers"},
             resolver(query_timestamp="2024-05-01T10:00:10Z", answers=[{"Rdata": "10.0.0.1"}])]
    (tmp_path / "a.log").write_text("".join(json.dumps(line) + "\n" for line in lines))
    reference, duck, _, _, fast = both_on_paths(collection, [str(tmp_path)])
    assert fast == 1 and duck == reference
    assert [(a["window"]["start"], len(a["sample_origins"])) for a in duck] == [("2024-05-01T10:00:00Z", 3)]


def test_the_events_counted_are_the_reference_reader_s_on_lines_the_columns_cannot_take(tmp_path, capsys):
    from r53sigma.cli import main

    trail = {"eventVersion": "1.09", "eventTime": "2024-05-01T10:00:00Z", "eventSource": "route53.amazonaws.com",
             "eventName": "ListHostedZones", "awsRegion": "us-east-1", "sourceIPAddress": "198.51.100.1"}
    log = tmp_path / "mixed.log"  # a one-line CloudTrail file of four records, a blank line, a malformed one, two fitting lines
    log.write_text(json.dumps({"Records": [trail] * 4}) + "\n\nnot json\n"
                   + "".join(json.dumps(resolver()) + "\n" for _ in range(2)))
    summaries = []
    for engine in ("reference", "duckdb"):
        main(["scan", "--no-progress", "--engine", engine, "-o", str(tmp_path / f"{engine}.jsonl"), str(log)])
        summaries.append(next(l for l in capsys.readouterr().err.splitlines() if l.startswith("scanned")))
    assert summaries[0].startswith("scanned 6 events") and summaries[1] == summaries[0]


def test_an_engine_s_connection_is_released_with_the_engine_not_kept_for_the_signal_watcher():
    import gc

    from r53sigma import signals

    before = len(signals._stoppers)
    engines = [DuckEngine([]) for _ in range(3)]
    assert len(signals._stoppers) == before + 3  # a stop interrupts their queries while they live
    del engines
    gc.collect()
    assert len(signals._stoppers) == before  # a long test run or a library user does not pile up databases
