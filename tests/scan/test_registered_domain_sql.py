"""The Public Suffix List split in SQL (registered_domain.split_sql, what the DuckDB engine computes)
gives what the Python form (registered_domain.split, the reference engine's) gives, on any name."""
from __future__ import annotations

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from r53sigma.scan import registered_domain


@pytest.fixture(scope="module")
def con():
    connection = duckdb.connect()
    registered_domain.load_sql_table(connection)
    return connection


def sql_split(con, names: list[str]) -> list[tuple]:
    """The split over a labels column computed below it, as the engine writes it."""
    rows = con.execute(f"SELECT {registered_domain.split_sql('n', 'l')} FROM (SELECT *, {registered_domain.labels_sql('n')} AS l "
                       f"FROM unnest($n::VARCHAR[]) WITH ORDINALITY AS t(n, i)) ORDER BY i", {"n": names}).fetchall()
    return [tuple(value) if value is not None else (None, None) for (value,) in rows]


_keys, _exceptions, _wildcards, _ = registered_domain.sql_rules()
# labels drawn from the list's own rules (so wildcard, exception, IDN and punycode rules are met), plus
# arbitrary ones, in any case, with the odd shapes the Python form refuses or treats specially
rule_suffixes = st.sampled_from(_keys + ["!" + e for e in _exceptions] + ["*." + w for w in _wildcards])
label = st.one_of(
    st.sampled_from(["www", "a", "city", "xn--p1ai", "arpa", "in-addr", "\u0130", "B\u00fccher", "\u30c6\u30b9\u30c8", "KOBE"]),
    st.text(alphabet=st.characters(codec="utf-8", exclude_characters="."), min_size=0, max_size=6),
)


@st.composite
def names(draw) -> str:
    suffix = draw(rule_suffixes).lstrip("!")
    suffix = suffix.replace("*", draw(label)) if suffix.startswith("*") else suffix
    prefix = draw(st.lists(label, max_size=3))
    name = ".".join(prefix + ([suffix] if draw(st.booleans()) else []))
    if draw(st.booleans()):
        name = name.upper() if draw(st.booleans()) else name.title()
    return name + draw(st.sampled_from(["", "", ".", ".."]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(names(), min_size=1, max_size=40))
def test_sql_split_equals_python(con, generated):
    assert sql_split(con, generated) == [registered_domain.split(n) for n in generated]


@pytest.mark.parametrize("name, expected", [
    ("www.example.co.uk", ("example.co.uk", "www")),  # a normal rule of two labels
    ("x.city.kawasaki.jp", ("city.kawasaki.jp", "x")),  # exception !city.kawasaki.jp
    ("a.b.kawasaki.jp", ("a.b.kawasaki.jp", None)),  # wildcard *.kawasaki.jp
    ("kawasaki.jp", (None, None)),  # the wildcard's root is public too (publicsuffixlist, test_psl.txt)
    ("co.uk", (None, None)),  # a public suffix itself
    ("localhost", (None, None)),  # one label
    ("x.s3.amazonaws.com", ("x.s3.amazonaws.com", None)),  # private section, as the Python form reads it
    ("a.xn--p1ai", ("a.xn--p1ai", None)),  # punycode twin of an IDN rule
    ("1.0.0.10.in-addr.arpa", (None, None)),  # reverse lookups get none
    ("A..example.com", (None, None)),  # an empty label: no domain name
])
def test_sql_split_examples(con, name, expected):
    assert sql_split(con, [name]) == [expected] == [registered_domain.split(name)]


def two_label_split(con, names: list[str], otherwise: str | None = None) -> list[tuple]:
    """The two-label split, the exact SQL split (or ``otherwise``) deciding the names it leaves."""
    registered_domain.create_ends_macro(con)
    exact = otherwise or registered_domain.split_sql("n", "l")
    rows = con.execute(f"SELECT {registered_domain.two_label_split_sql('n', 'l', 'h', exact)} FROM (SELECT *, "
                       f"hash({registered_domain.last_two_sql('l')}) AS h FROM (SELECT *, {registered_domain.labels_sql('n')} AS l "
                       f"FROM unnest($n::VARCHAR[]) WITH ORDINALITY AS t(n, i))) ORDER BY i", {"n": names}).fetchall()
    return [tuple(value) if value is not None else (None, None) for (value,) in rows]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(names(), min_size=1, max_size=40))
def test_two_label_split_equals_python(con, generated):
    assert two_label_split(con, generated) == [registered_domain.split(n) for n in generated]


@pytest.mark.parametrize("name, decided", [
    ("www.Example.com", True), ("a.b.example.org", True), ("x.unknown-tld", True), ("example.com", True),
    ("x.co.uk", False),  # co.uk is a key of two labels
    ("a.b.s3.amazonaws.com", False),  # amazonaws.com ends keys of more labels
    ("a.b.ck", False),  # *.ck: the last label is a wildcard's root
    ("x.www.ck", False),  # !www.ck
    ("localhost", False),  # one label
    ("1.0.0.10.in-addr.arpa", True), ("A..example.com", True), ("", True),  # no split at all
])
def test_two_label_split_leaves_names_a_key_may_end_to_the_exact_split(con, name, decided):
    marker = "['left', 'left']::VARCHAR[]"
    got = two_label_split(con, [name], marker)
    assert (got != [("left", "left")]) is decided
    if decided:
        assert got == [registered_domain.split(name)]
