"""Property: ``|cidr`` over ``answers.Rdata`` (the shared address columns of ``rowcolumns`` and the
fast and element-by-element tests of ``sqlcompile.Dialect.cidr_list``) alerts on DuckDB as on the
reference engine, both DuckDB paths, on answer lists mixing every form an Rdata takes."""
from __future__ import annotations

import ipaddress
import json

import duckdb
from hypothesis import HealthCheck, given, settings, strategies as st
from sigma.collection import SigmaCollection

from r53sigma.scan import rowcolumns
from support import duckdb_agrees

V4 = ["10.0.0.1", "10.255.255.255", "11.0.0.0", "9.255.255.255", "127.0.0.1", "127.255.0.9", "128.0.0.0",
      "172.16.0.1", "172.31.255.255", "172.32.0.0", "192.168.1.1", "192.169.0.0", "100.64.0.0", "100.127.255.255",
      "100.128.0.0", "169.254.169.254", "0.0.0.0", "255.255.255.255", "8.8.8.8", "93.184.216.34"]
V4_ODD = ["010.0.0.1", "10.0.0.01", "10.0.0.256", "10.0.0", "10.0.0.1.2", "1e1.0.0.1", "10..0.1", "+10.0.0.1"]
V6 = ["::1", "::", "::2", "0:0:0:0:0:0:0:1", "0000:0000:0000:0000:0000:0000:0000:0001", "fc00::1", "FD12:3456::7",
      "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "fe00::", "fe80::1", "FE80::", "febf:ffff::1", "fec0::1", "fbff::1",
      "2001:db8::1", "2600:1f18:e0a7::8266", "1:2:3:4:5:6:7::", "fc00:1:2:3:4:5:6::", "::fc00:1", "2001:db8:0:0:1::1",
      "fc00::1:2:3:4:5:6:7", "fc00:0:0:0:0:0:0::1", "fe80:::1", "fe80::1::2", "fe80:1", "fe80::12345", "g::1"]
V6_FORMS = ["::ffff:10.0.0.1", "::ffff:8.8.8.8", "::ffff:127.0.0.1", "fe80::1%eth0", "fe80::1%1", "fd00::1%x",
            "::1%lo", "::10.0.0.1", "1:2:3:4:5:6:10.0.0.1"]
OTHERS = ["cname.example.com", "cname.example.com.", "10.0.0.1.in-addr.arpa", "fd00.example", "", "-", "a_b",
          '"v=spf1 ip4:10.0.0.0/8 -all"', '"curl http://10.0.0.1/s.sh | sh"', "10 0 0 1", "fc00::1 extra",
          "mail.example.com 10", "\u0661\u0660.0.0.1"]
PADS = [" ", "\t", "\n", "\u00a0", "\u2003", "\x1c", "\x85", "\r\n"]


def padded(values):
    return st.builds(lambda v, left, right: left + v + right, st.sampled_from(values),
                     st.sampled_from([""] + PADS), st.sampled_from([""] + PADS))


ELEMENTS = st.one_of(st.sampled_from(V4), st.sampled_from(V4_ODD), st.sampled_from(V6), st.sampled_from(V6_FORMS),
                     st.sampled_from(OTHERS), padded(V4 + V6 + V6_FORMS))
# an answer list: elements, an empty list, an answer without Rdata or with a null one, or no answers at all
ANSWERS = st.one_of(
    st.lists(st.one_of(st.builds(lambda v: {"Rdata": v}, ELEMENTS), st.just({"Rdata": None}), st.just({"Type": "A"})),
             max_size=4),
    st.none(),
)
NETWORKS = ["10.0.0.0/8", "127.0.0.0/8", "172.16.0.0/12", "100.64.0.0/10", "169.254.169.254/32", "0.0.0.0/8",
            "192.168.0.0/16", "::1/128", "fc00::/7", "fe80::/10", "::/128", "2001:db8::/32", "::ffff:0:0/96"]
CONDITIONS = ["s0", "not s0", "s0 and not s1", "s0 or s1", "not (s0 or s1)", "s0 and s1"]
SETTINGS = settings(max_examples=100, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _rules(selections, condition):
    detection = {f"s{i}": sel for i, sel in enumerate(selections)}
    detection["condition"] = condition
    rule = {"title": "cidr", "id": "6a1d9c3e-0000-4000-8000-0000000000c1", "name": "cidr",
            "logsource": {"product": "aws", "service": "route53resolver"}, "detection": detection}
    return SigmaCollection.from_yaml(json.dumps(rule))


def _records(answer_lists):
    out = []
    for i, answers in enumerate(answer_lists):
        record = {"query_timestamp": "2024-05-01T10:00:00Z", "query_name": f"q{i}.example.", "rcode": "NOERROR",
                  "srcaddr": "10.0.0.1"}
        if answers is not None:
            record["answers"] = answers
        out.append(record)
    return out


@SETTINGS
@given(networks=st.lists(st.sampled_from(NETWORKS), min_size=1, max_size=5, unique=True),
       answers=st.lists(ANSWERS, min_size=1, max_size=8))
def test_cidr_lists_of_ipv4_and_ipv6_networks(tmp_path_factory, networks, answers):
    duckdb_agrees(_rules([{"answers.Rdata|cidr": networks}], "s0"), _records(answers), tmp_path_factory.mktemp('cidr'))


@SETTINGS
@given(first=st.lists(st.sampled_from(NETWORKS), min_size=1, max_size=3, unique=True),
       second=st.lists(st.sampled_from(NETWORKS), min_size=1, max_size=3, unique=True),
       condition=st.sampled_from(CONDITIONS), answers=st.lists(ANSWERS, min_size=1, max_size=8))
def test_cidr_selections_combined_and_negated(tmp_path_factory, first, second, condition, answers):
    rules = _rules([{"answers.Rdata|cidr": first}, {"answers.Rdata|cidr": second}], condition)
    duckdb_agrees(rules, _records(answers), tmp_path_factory.mktemp('cidr'))


@SETTINGS
@given(networks=st.lists(st.sampled_from(NETWORKS), min_size=1, max_size=4, unique=True),
       values=st.lists(st.sampled_from(["cname.example.com", "*.example.com", "10.*", "fc00::1"]), min_size=1, max_size=2),
       answers=st.lists(ANSWERS, min_size=1, max_size=8))
def test_cidr_or_strings_on_one_field(tmp_path_factory, networks, values, answers):
    rules = _rules([{"answers.Rdata|cidr": networks}, {"answers.Rdata": values}], "s0 or s1")
    duckdb_agrees(rules, _records(answers), tmp_path_factory.mktemp('cidr'))


def _strict(text):
    """What the shared columns make of one element: ("4", its integer), ("6", its first group as
    written), ("x",) for a form the element-by-element test must see, or ("plain",)."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        address = None
    if isinstance(address, ipaddress.IPv4Address):
        return ("4", int(address))
    if isinstance(address, ipaddress.IPv6Address) and set(text) <= set("0123456789abcdefABCDEF:"):
        return ("6", int(text.split(":")[0] or "0", 16))
    if all(c.isascii() and (c.isalnum() or c in "._-") for c in text):
        return ("plain",)
    return ("x",)


@settings(max_examples=300, deadline=None)
@given(elements=st.one_of(st.lists(ELEMENTS, max_size=5), st.none()))
def test_address_columns_hold_the_strict_forms(elements):
    con = duckdb.connect()
    relation = rowcolumns.wrap("(SELECT ?::VARCHAR[] AS \"f:answers.Rdata\")", '"a4:answers.Rdata"')
    quads, heads, others = rowcolumns.address_columns("answers.Rdata")
    got = con.execute(f"SELECT {quads}, {heads}, {others} FROM {relation}", [elements]).fetchone()
    kinds = [_strict(e) for e in elements or []]
    expected = ([k[1] for k in kinds if k[0] == "4"], [k[1] for k in kinds if k[0] == "6"], ("x",) in kinds)
    assert got == (expected if elements is not None else (None, None, False))


def test_eight_groups_around_double_colon_are_not_an_address(tmp_path_factory):
    # ipaddress rejects them ("::" stands for one group at least); the IPv6 pattern once took them
    answers = [[{"Rdata": a}] for a in ["fc00::1:2:3:4:5:6:7", "fc00:0:0:0:0:0:0::1", "fc00:1:2:3:4:5:6::", "fe80::1:2:3:4:5:6"]]
    alerts = duckdb_agrees(_rules([{"answers.Rdata|cidr": ["fc00::/7", "fe80::/10"]}], "s0"), _records(answers), tmp_path_factory.mktemp('cidr'))
    assert [a["event"]["query_name"] for a in alerts] == ["q2.example.", "q3.example."]
