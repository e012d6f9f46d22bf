"""Property tests: hostile values and random condition trees convert to queries the Logs Insights model
parses, and select exactly what the generator computes from the tree itself."""
from __future__ import annotations

import ipaddress
import json
import re
import sys
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cw_support import answer, convert, engine_says, model_says, resolver, rule_yaml  # noqa: E402

# Letters whose case maps one-to-one in every engine (no Kelvin sign, long s, dotted I, sharp s).
ALPHABET = st.sampled_from(list("abcXYZ.-_ \"'\\/|*?{}[]()$^+#`~\n\t") + ["é", "Ж", "漢", "😀", "\u00a0"])
text = st.text(ALPHABET, min_size=0, max_size=8)
SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def sigma_escape(value: str) -> str:
    return re.sub(r"([*?\\])", r"\\\1", value)


def normalise(value: str) -> str:
    return value[:-1] if len(value) > 1 and value.endswith(".") else value


TESTS = {
    "": lambda field, want: field.lower() == want.lower(),
    "|contains": lambda field, want: want.lower() in field.lower(),
    "|startswith": lambda field, want: field.lower().startswith(want.lower()),
    "|endswith": lambda field, want: field.lower().endswith(want.lower()),
    "|cased": lambda field, want: field == want,
}


@SETTINGS
@given(want=text, have=text, modifier=st.sampled_from(sorted(TESTS)), dotted=st.booleans())
def test_hostile_values_on_query_name(want, have, modifier, dotted):
    raw_name = have + ("." if dotted else "")
    detection = yaml.safe_dump({"sel": {f"query_name{modifier}": sigma_escape(want)}, "condition": "sel"}, allow_unicode=True)
    rule = rule_yaml("\n".join("  " + line for line in detection.splitlines()))
    query = convert(rule)
    assert "\n| filter " in query and query.count("\n") == 3, "the query stays four clean lines"
    expected = TESTS[modifier](normalise(raw_name), want)
    assert model_says(query, resolver(raw_name)) == expected


@SETTINGS
@given(want=text, rdatas=st.lists(text, max_size=5), modifier=st.sampled_from(sorted(TESTS)), ascii_json=st.booleans())
def test_hostile_values_on_any_answer(want, rdatas, modifier, ascii_json):
    detection = yaml.safe_dump({"sel": {f"answers.Rdata{modifier}": sigma_escape(want)}, "condition": "sel"}, allow_unicode=True)
    rule = rule_yaml("\n".join("  " + line for line in detection.splitlines()))
    query = convert(rule)
    record = json.loads(resolver(answers=[answer(r, "TXT") for r in rdatas]))
    raw = json.dumps(record, ensure_ascii=ascii_json)
    expected = any(TESTS[modifier](normalise(r), want) for r in rdatas)
    assert model_says(query, raw) == expected


# ------------------------------------------------------------------ random condition trees

ATOMS = {
    "a": ({"query_type": "TXT"}, lambda e: e["query_type"] == "TXT"),
    "b": ({"query_name|endswith": ".Evil.com"}, lambda e: normalise(e["query_name"]).lower().endswith(".evil.com")),
    "c": ({"answers.Rdata": "1.2.3.4"}, lambda e: "1.2.3.4" in e["rdatas"]),
    "d": ({"srcport|gt": 1024}, lambda e: int(e["srcport"]) > 1024),
}
trees = st.recursive(
    st.sampled_from(sorted(ATOMS)),
    lambda children: st.one_of(
        st.tuples(st.just("not"), children),
        st.tuples(st.sampled_from(["and", "or"]), children, children),
    ),
    max_leaves=6,
)
events = st.fixed_dictionaries({
    "query_type": st.sampled_from(["TXT", "A"]),
    "query_name": st.sampled_from(["x.evil.com.", "x.EVIL.com", "evil.com.", "x.evil.org."]),
    "rdatas": st.lists(st.sampled_from(["1.2.3.4", "5.6.7.8", "1.2.3.45"]), max_size=5),
    "srcport": st.sampled_from(["53", "2000"]),
})


def render(tree) -> str:
    if isinstance(tree, str):
        return tree
    if tree[0] == "not":
        return f"not ({render(tree[1])})"
    return f"({render(tree[1])} {tree[0]} {render(tree[2])})"


def truth(tree, event) -> bool:
    if isinstance(tree, str):
        return ATOMS[tree][1](event)
    if tree[0] == "not":
        return not truth(tree[1], event)
    left, right = truth(tree[1], event), truth(tree[2], event)
    return left and right if tree[0] == "and" else left or right


@SETTINGS
@given(tree=trees, event=events)
def test_random_condition_trees(tree, event):
    detection = {name: selection for name, (selection, _) in ATOMS.items()}
    detection["condition"] = render(tree)
    body = yaml.safe_dump(detection)
    rule = rule_yaml("\n".join("  " + line for line in body.splitlines()))
    raw = resolver(event["query_name"], [answer(r) for r in event["rdatas"]], query_type=event["query_type"], srcport=event["srcport"])
    assert model_says(convert(rule), raw) == truth(tree, event)


# ------------------------------------------------------------------ IPv6 |cidr on any answer, any spelling


@st.composite
def ipv6_spelling(draw, address: int) -> str:
    """One of the textual forms of `address`: leading zeros, either case, one `::`, a dotted-quad tail."""
    groups = [(address >> (16 * (7 - g))) & 0xFFFF for g in range(8)]
    dotted = draw(st.booleans())
    texts = []
    for g in groups[:6] if dotted else groups:
        digits = format(g, "x")
        digits = "0" * draw(st.integers(0, 4 - len(digits))) + digits
        texts.append("".join(c.upper() if draw(st.booleans()) else c for c in digits))
    runs = [(i, j) for i in range(len(texts)) for j in range(i + 1, len(texts) + 1) if not any(groups[i:j])]
    if runs and draw(st.booleans()):
        i, j = draw(st.sampled_from(runs))
        text = ":".join(texts[:i]) + "::" + ":".join(texts[j:]) + (":" if dotted and j < len(texts) else "")
    else:
        text = ":".join(texts) + (":" if dotted else "")
    if dotted:
        text += str(ipaddress.IPv4Address(address & 0xFFFFFFFF))
    return text + draw(st.sampled_from(["", "", ".", "x", ":1"]))  # trailing dot (ignored) or garbage


@st.composite
def ipv6_case(draw):
    prefix = draw(st.sampled_from([0, 7, 8, 10, 16, 29, 32, 56, 64, 96, 100, 127, 128]))
    base = draw(st.sampled_from([0, 0x20010DB8 << 96, 0xFD00 << 112, 0xFFFF << 32, (1 << 128) - 1]))
    network = ipaddress.IPv6Network((base, prefix), strict=False)
    host = draw(st.integers(0, (1 << (128 - prefix)) - 1)) if prefix < 128 else 0
    flip = draw(st.sampled_from([0, 0, 1 << draw(st.integers(0, 127))]))
    zero = draw(st.sampled_from([0, 0xFFFF << (16 * draw(st.integers(0, 7)))]))
    address = ((int(network.network_address) | host) ^ flip) & ~zero & ((1 << 128) - 1)
    return network, draw(ipv6_spelling(address))


@SETTINGS
@given(case=ipv6_case(), others=st.integers(0, 5), position=st.integers(0, 5))
def test_ipv6_cidr_on_any_answer_in_any_spelling(case, others, position):
    network, rdata = case
    rule = rule_yaml(f"  sel:\n    answers.Rdata|cidr: '{network}'\n  condition: sel")
    answers = [answer(f"2001:db8:ffff::{n:x}" if network.prefixlen else "x.example.", "AAAA") for n in range(others)]
    answers.insert(min(position, others), answer(rdata, "AAAA"))
    raw = resolver(answers=answers)
    assert model_says(convert(rule), raw) == engine_says(rule, raw)


@settings(max_examples=300, deadline=None)
@given(case=ipv6_case())
def test_ipv6_network_regex_is_exactly_pythons_reading(case):
    """The regex alone: a spelling matches iff Python's ipaddress reads it as an address in the network."""
    from sigma.backends.cloudwatch import patterns
    network, text = case
    try:
        address = ipaddress.ip_address(text)
        inside = address.version == 6 and address in network
    except ValueError:
        inside = False
    assert (re.fullmatch(patterns.ipv6_network_regex(network), text) is not None) == inside


# ------------------------------------------------------------------ factored alternation == plain alternation

FACTOR_ALPHABET = st.sampled_from(list("abAB.-*?") + ["é"])


@settings(max_examples=300, deadline=None)
@given(values=st.lists(st.text(FACTOR_ALPHABET, max_size=6), min_size=1, max_size=8),
       probes=st.lists(st.text(st.sampled_from(list("abAB.-xé")), max_size=8), max_size=10), ci=st.booleans(), dotted=st.booleans())
def test_factored_alternation_matches_what_the_plain_alternation_matches(values, probes, ci, dotted):
    """The trie-factored regex (patterns.union) against the plain `a|b|c` of the same alternatives,
    in both renderings, on the values themselves, their neighbours and random strings."""
    from sigma.backends.cloudwatch import patterns
    from sigma.types import SigmaString
    from r53sigma.targets.cloudwatch.insights_model import compile_regex
    alternatives = []
    for v in values:
        items = patterns.items_of(SigmaString(v))
        alternatives += patterns.without_trailing_dot(items, ci) if dotted else [items]
    flags = "(?is)" if ci else "(?s)"
    candidates = set(probes) | {v.replace("*", "ab").replace("?", "a") for v in values} | {v.replace("*", "").replace("?", "") + "." for v in values}
    for render in (patterns.render_plain, patterns.render_json):
        plain = compile_regex("/" + flags + "^(?:" + "|".join(render(a, ci) for a in alternatives) + r")\z/")
        factored = compile_regex("/" + flags + "^" + patterns.union(alternatives, ci, render, factor=True) + r"\z/")
        for text in candidates:
            subject = text if render is patterns.render_plain else json.dumps(text)[1:-1]
            assert (plain.search(subject) is None) == (factored.search(subject) is None), (text, render.__name__)


# ------------------------------------------------------------------ keywords on public hosted-zone lines

COLUMN = st.text(st.sampled_from(list("aA1.-")), min_size=1, max_size=3)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(keyword=st.text(st.sampled_from(list("aA1.-*? ")), min_size=1, max_size=4), columns=st.lists(COLUMN, min_size=8, max_size=8),
       dash_subnet=st.booleans(), field=st.sampled_from(["", "ednsClientSubnet", "queryName"]))
def test_keywords_and_values_on_public_zone_lines_agree_with_the_engine(keyword, columns, dash_subnet, field):
    """A keyword: any column (queryName without a trailing dot, `-` as no value) or the whole line; a
    value on a column: `-` is no value. Both readings of `-` in Logs Insights."""
    from cw_support import PUBLIC
    if dash_subnet:
        columns[-1] = "-"
    line = " ".join(["1.0", "2017-12-13T08:16:02.130Z"] + columns)
    detection = {"sel": {field: keyword} if field else [keyword], "condition": "sel"}
    rule = rule_yaml("\n".join("  " + l for l in yaml.safe_dump(detection).splitlines()), PUBLIC)
    query = convert(rule)
    expected = engine_says(rule, line)
    assert model_says(query, line) == expected and model_says(query, line, True) == expected, (keyword, line, query)
