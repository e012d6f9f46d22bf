"""`sigma convert -t splunk -p route53_splunk -f data_model`: tstats over CIM Network_Resolution.DNS.

The tstats search runs in the SPL model over the add-on's events (CIM tags and fields as the
add-on gives them) and must report exactly the (asker, question) pairs of the events the reference
engine matches. What tstats cannot search is refused with the reason.
"""
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sigma.backends.splunk import SplunkBackend
from sigma.exceptions import SigmaFeatureNotSupportedByBackendError
from sigma.pipelines.route53 import pipelines
from sigma.rule import SigmaRule

from r53sigma.scan.reference import Engine
from r53sigma.scan.records import parse_record
from r53sigma.targets.splunk import spl_model
from r53sigma.targets.splunk.events import event_from_raw
from support import resolver_rule, rule

SIGMA = Path(sys.executable).with_name("sigma")


def record(name, qtype="A", rcode="NOERROR", src="10.0.0.5", answers=()):
    return {"version": "1.100000", "account_id": "111122223333", "region": "us-east-1", "vpc_id": "vpc-1",
            "query_timestamp": "2026-01-01T00:00:00Z", "query_name": name, "query_type": qtype,
            "query_class": "IN", "rcode": rcode, "srcaddr": src, "srcport": "40000", "transport": "UDP",
            "srcids": {}, "answers": [{"Rdata": a, "Type": "A", "Class": "IN"} for a in answers]}


RECORDS = [
    record("a.EVIL.com.", "TXT"), record("b.evil.com.", "A"), record("c.evil.com.", "TXT", "NXDOMAIN"),
    record("evil.com.", "TXT", src="10.0.0.9"), record("x.good.com.", "TXT"),
    record("d.evil.com.", "NULL", src="10.0.0.7", answers=["203.0.113.5"]),
]
CLOUDTRAIL = {"eventSource": "route53.amazonaws.com", "eventName": "ChangeResourceRecordSets",
              "eventTime": "2026-01-01T00:00:00Z", "sourceIPAddress": "10.0.0.5"}

RULE = resolver_rule("""
    sel:
      query_name|endswith: '.evil.com'
      query_type: [TXT, 'NULL']
    nx:
      rcode: NXDOMAIN
    condition: sel and not nx""")


def data_model_query(text: str) -> str:
    queries = SplunkBackend(pipelines["route53_splunk"]()).convert(rule(text), "data_model")
    assert len(queries) == 1, queries
    return str(queries[0])


def test_a_cim_only_rule_becomes_tstats_reporting_the_engines_matches():
    query = data_model_query(RULE)
    assert query.startswith("| tstats ") and "from datamodel=Network_Resolution.DNS" in query
    rows = spl_model.run(query, [event_from_raw(r) for r in RECORDS] + [event_from_raw(CLOUDTRAIL)])
    engine, sigma_rule = Engine(), rule(RULE).rules[0]
    expected = {(r["srcaddr"], r["query_name"].rstrip(".")) for r in RECORDS
                if engine.matches(sigma_rule, parse_record(r))}
    assert {(row["src"], row["query"]) for row in rows} == expected == {
        ("10.0.0.5", "a.EVIL.com"), ("10.0.0.7", "d.evil.com")}
    assert all(row["count"] == 1 and row["firstTime"] == "2026-01-01T00:00:00" for row in rows)


def test_sigma_cli_converts_with_the_data_model_format_and_skips_what_tstats_cannot_search(tmp_path):
    (tmp_path / "a_cim.yml").write_text(textwrap.dedent(RULE))
    (tmp_path / "b_regex.yml").write_text(textwrap.dedent(resolver_rule(
        "sel:\n  query_name|re: '^x'\ncondition: sel")).replace("000000000001", "000000000002"))
    done = subprocess.run([str(SIGMA), "convert", "-t", "splunk", "-p", "route53_splunk", "-f", "data_model",
                           "-s", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    queries = [line for line in done.stdout.splitlines() if line.startswith("| tstats")]
    assert len(queries) == 1 and 'DNS.record_type IN ("TXT", "NULL")' in queries[0]


@pytest.mark.parametrize("detection, reason", [
    ("sel:\n  query_name|re: '^x'\ncondition: sel", "regular expression"),
    ("sel:\n  query_name: 'a?c.example'\ncondition: sel", "regular expression"),
    ("sel:\n  srcport: '53'\ncondition: sel", "'src_port' is not a field of CIM Network_Resolution.DNS"),
    ("sel:\n  - evil\ncondition: sel", "keyword"),
])
def test_what_tstats_cannot_search_is_refused_with_the_reason(detection, reason):
    with pytest.raises(SigmaFeatureNotSupportedByBackendError, match=reason):
        data_model_query(resolver_rule(detection))


def test_cloudtrail_rules_are_refused_for_the_data_model():
    text = """
        title: t
        status: test
        logsource: {product: aws, service: cloudtrail}
        detection:
            sel:
                eventName: ChangeResourceRecordSets
            condition: sel
        """
    with pytest.raises(SigmaFeatureNotSupportedByBackendError, match="not in the CIM Network_Resolution"):
        data_model_query(text)


def test_the_default_format_is_unchanged_by_the_data_model_settings():
    query = str(SplunkBackend(pipelines["route53_splunk"]()).convert(rule(RULE))[0])
    assert query.startswith('sourcetype="aws:route53:resolver" ') and "DNS." not in query


def test_tstats_must_come_first_and_only_groups_data_model_fields():
    with pytest.raises(spl_model.InvalidSearch):
        spl_model.run("* | tstats count from datamodel=Network_Resolution.DNS", [])
    with pytest.raises(spl_model.InvalidSearch):
        spl_model.run("| tstats count from datamodel=Network_Resolution.DNS by DNS.src_port", [])


def test_every_pack_rule_the_data_model_can_state_reports_the_engines_matches_on_its_cases():
    """The pack's own rules on their own test cases: each tstats row is a (src, query, record_type,
    reply_code) group of the events the engine matches, with their count."""
    from collections import Counter

    from sigma.collection import SigmaCollection

    from r53sigma import rules as rules_mod
    from r53sigma import testcases, verify

    loaded = rules_mod.load()
    pairs, problems = verify.load_cases(testcases.default_cases_dir(), loaded)
    assert not problems
    engine, checked, refused = Engine(loaded.collection), 0, []
    for sigma_rule, case in pairs:
        path = loaded.path_of(sigma_rule)
        if not isinstance(sigma_rule, SigmaRule) or "correlation:" in path.read_text() \
                or sigma_rule.logsource.service not in ("route53resolver", "route53"):
            continue  # CloudTrail is outside the data model; correlations are not tstats
        try:
            query = str(SplunkBackend(pipelines["route53_splunk"]()).convert(
                SigmaCollection.from_yaml(path.read_text()), "data_model")[0])
        except SigmaFeatureNotSupportedByBackendError as error:
            refused.append(str(error))
            continue
        events = [parse_record(raw) for raw in case.raws]
        views = [event_from_raw(raw, event.source) for raw, event in zip(case.raws, events)]
        matched = {id(a.event) for a in engine.evaluate(sigma_rule, events)}
        want = Counter(tuple(view.get(f, "null") for f in ("src", "query", "record_type", "reply_code"))
                       for event, view in zip(events, views) if id(event) in matched)
        rows = spl_model.run(query, views)
        got = Counter({(r["src"], r["query"], r["record_type"], r["reply_code"]): r["count"] for r in rows})
        assert got == want, (path.name, case.name, query)
        checked += 1
    assert checked >= 20 and refused, (checked, refused)  # most DNS rules convert; some are refused
