"""Property: a ``|re`` search as the DuckDB dialect writes it (a literal as ``contains``, a length
pre-test before the regex) is the reference engine's RE2 search, on generated patterns and texts."""
from __future__ import annotations

import re

import duckdb
from hypothesis import given, settings, strategies as st
from sigma.types import SigmaRegularExpressionFlag

from r53sigma.scan.patterns import compile_re2, python_regex_to_re2, search_core, search_test
from r53sigma.scan.sqlcompile import Dialect, search_literal, shortest_match

TOKENS = ["a", "b", "=", "-", ":", "\\.", "\\=", "\\\\", ".", ".*", "[a-c]", "[^.]", "[[:digit:]]", "[[:alpha:]]{3}",
          "[0-9]{2,}", "x{3}", "(a|b)", "a|b", "^", "$", "a*", "\\d", "(?:ab)?", "a{,2}", "\\b", " "]
FLAGS = {"i": SigmaRegularExpressionFlag.IGNORECASE, "m": SigmaRegularExpressionFlag.MULTILINE,
         "s": SigmaRegularExpressionFlag.DOTALL}
PYTHON_FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL}
TEXT = st.text(alphabet="ab.c0129x=:- \n\\AB", max_size=24)
SHORT = ["", "a", "A", "0", ".", "=", "\n", "=.", "ab", "a0", "aaa", "x\n"]  # at the length bounds, in every example


@settings(max_examples=500, deadline=None)
@given(pattern=st.lists(st.sampled_from(TOKENS), min_size=1, max_size=5).map("".join),
       flags=st.sets(st.sampled_from("ims")), texts=st.lists(TEXT, min_size=1, max_size=10))
def test_searches_as_sql_are_re2_searches(pattern, flags, texts):
    texts = texts + SHORT
    sigma_flags = {FLAGS[f] for f in flags}
    translated = search_core(python_regex_to_re2(pattern, sigma_flags))
    if compile_re2(translated) is None:
        return  # the fallback's business (the reference engine decides those rows)
    python_flags = sum(PYTHON_FLAGS[f] for f in flags)
    sql = Dialect().search("t", translated, shortest_match(pattern, python_flags))
    got = [r[0] for r in duckdb.connect().execute(f"SELECT {sql} FROM (SELECT unnest(?::VARCHAR[]) AS t, generate_subscripts(?::VARCHAR[], 1) AS i) ORDER BY i", [texts, texts]).fetchall()]
    expected = [search_test(pattern, sigma_flags)(t) for t in texts]
    assert got == expected, (pattern, flags, sql)


def test_literal_searches_are_contains():
    assert search_literal("(?-ms).*=\\..*") == "=."
    assert search_literal("(?s-m)curl http") == "curl http"
    for pattern in ["(?i-ms)abc", "(?-ms)a\\.*", "(?-ms)a|b", "(?-ms).*", "(?-ms)a\\d", "(?-ms).*?a", "(?-ms)[ab]"]:
        assert search_literal(pattern) is None, pattern
    assert Dialect().search("t", "(?-ms)=\\.", 2) == "contains(t, '=.')"
