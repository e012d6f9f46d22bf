"""The adversarial generator: hypothesis strategies that compose Sigma rules from every value type x
field kind x condition shape on the three Route 53 log sources, with events built on both sides of
each value, and the check that every target agrees with the reference engine or refuses with a
documented reason.

A generated *case* is one rule (YAML text) and its raw events. The events are derived from the
rule's own atoms: for each atom a value that matches it, then near misses (one character changed, the
case flipped, a trailing dot, the value in another array element, the field absent, a '-' column).
The reference engine (r53sigma.scan.reference) says what the rule means on them; every target's
query, run on the target's own view of the events (r53sigma.verify, Lucene batched into one Java
call), must select the same events, or the target must refuse the rule with
SigmaFeatureNotSupportedByBackendError (verify's "not expressible", which carries its reason).

Run the long version with ``R53SIGMA_ADVERSARIAL_EXAMPLES=2000`` (examples of BATCH rules each), or
``python tests/adversarial.py N`` to print every finding instead of stopping at the first.
"""
from __future__ import annotations

import base64
import ipaddress
import json
import os
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from hypothesis import strategies as st

from r53sigma import rules as rules_mod
from r53sigma import verify
from r53sigma.targets import spec as target_spec

BATCH = 12  # rules per example: one conversion pass and one Lucene (Java) call per batch
ESQL_TARGET_MODULE = "adversarial_targets"  # single-event rules in ES|QL too (tests/adversarial_targets.py)
TARGETS = ("elasticsearch", "elasticsearch_esql", "splunk", "cloudwatch")

# ------------------------------------------------------------------ field kinds per log source


@dataclass(frozen=True)
class FieldKind:
    name: str  # the raw (Sigma) field name
    kind: str  # string | array | ip | single | nested | column | integer | cidr_string
    case: str = "mixed"  # upper/lower: the case AWS guarantees for the raw values (events keep it)


RESOLVER = "resolver"
PUBLIC = "public_zone"
CLOUDTRAIL = "cloudtrail"
LOGSOURCE = {
    RESOLVER: {"product": "aws", "service": "route53resolver"},
    PUBLIC: {"product": "aws", "service": "route53"},
    CLOUDTRAIL: {"product": "aws", "service": "cloudtrail"},
}
FIELDS = {
    RESOLVER: [
        FieldKind("query_name", "string"), FieldKind("answers.Rdata", "array"), FieldKind("srcaddr", "ip"),
        FieldKind("rcode", "single", "upper"), FieldKind("query_type", "single", "upper"),
        FieldKind("srcport", "integer"), FieldKind("srcids.instance", "nested", "lower"),
        FieldKind("firewall_rule_action", "single", "upper"), FieldKind("account_id", "string"),
    ],
    PUBLIC: [
        FieldKind("queryName", "column"), FieldKind("queryType", "single", "upper"),
        FieldKind("responseCode", "single", "upper"), FieldKind("resolverIp", "ip"),
        FieldKind("ednsClientSubnet", "column"), FieldKind("edgeLocation", "single", "upper"),
    ],
    CLOUDTRAIL: [
        FieldKind("eventName", "string"), FieldKind("eventSource", "single", "lower"),
        FieldKind("sourceIPAddress", "cidr_string"), FieldKind("userIdentity.arn", "nested"),
        FieldKind("requestParameters.domainName", "nested"), FieldKind("requestParameters.ruleType", "single", "upper"),
        FieldKind("requestParameters.changeBatch.changes.resourceRecordSet.name", "array"),
        FieldKind("errorCode", "string"),
    ],
}

# ------------------------------------------------------------------ values

# Letters whose case maps one-to-one everywhere, separators, and characters that must be escaped.
WORD = st.text(st.sampled_from(list("abXY.-_1")), min_size=1, max_size=6)
HOSTILE = st.sampled_from(["", "", "", "\"", "'", "\\", "/", "(", ")", "[", "|", "+", "é", "{", "^", "$", "#", ":"])
IPV4 = st.sampled_from(["10.0.1.23", "172.31.5.9", "192.0.2.10", "203.0.113.66", "169.254.169.254", "10.0.10.2"])
IPV6 = st.sampled_from(["2001:db8::1234", "2001:db8:abcd::5", "fd00::1", "::1"])
IP = st.one_of(IPV4, IPV6)


@st.composite
def literal(draw, kind: FieldKind) -> str:
    """A concrete value the field can hold (in the case AWS writes it)."""
    if kind.kind in ("ip", "cidr_string"):
        return draw(IP)
    if kind.kind == "integer":
        return str(draw(st.integers(0, 65535)))
    if kind.kind == "array" and draw(st.booleans()):
        return draw(IP)
    value = draw(WORD) + draw(HOSTILE) + draw(WORD)
    if kind.kind == "column":
        value = value.replace(" ", "")
    return cased(value, kind)


def cased(value: str, kind: FieldKind) -> str:
    return value.upper() if kind.case == "upper" else value.lower() if kind.case == "lower" else value


def sigma_escape(value: str) -> str:
    return "".join("\\" + c if c in "*?\\" else c for c in value)


def flip_case(value: str) -> str:
    return value.swapcase()


def near_miss(value: str) -> str:
    """The value with one character changed."""
    if not value:
        return "x"
    index = len(value) // 2
    char = value[index]
    replacement = "z" if char.lower() != "z" else "q"
    if char.isdigit():
        replacement = str((int(char) + 1) % 10)
    return value[:index] + replacement + value[index + 1:]


@dataclass
class Atom:
    """One `field|modifiers: value` (or keywords) with the concrete values it should select."""

    key: str  # the detection key ("keywords" for a keyword list)
    value: object  # YAML value (str, int, list, None)
    field: FieldKind | None
    hits: list[str] = field(default_factory=list)  # concrete raw values that should match
    absent_matches: bool = False


@st.composite
def atom(draw, source: str) -> Atom:
    kind = draw(st.sampled_from(FIELDS[source]))
    value = draw(literal(kind))
    # what the rule may say in any case: Sigma is case-insensitive unless |cased
    rule_case = draw(st.sampled_from(["same", "same", "flip", "lower", "upper"]))
    said = {"same": value, "flip": flip_case(value), "lower": value.lower(), "upper": value.upper()}[rule_case]
    shape = draw(st.sampled_from(VALUE_TYPES_FOR[kind.kind]))
    if shape == "cidr" and not _is_ip(value):
        value = said = draw(IP)
    return draw(ATOM_BUILDERS[shape](kind, value, said))


def _plain(kind, value, said):
    return st.just(Atom(kind.name, sigma_escape(said), kind, [value]))


def _wild_star(kind, value, said):
    @st.composite
    def build(draw):
        cut = draw(st.integers(0, len(said)))
        return Atom(kind.name, sigma_escape(said[:cut]) + "*" + sigma_escape(said[cut + 1:]), kind, [value])
    return build()


def _wild_question(kind, value, said):
    @st.composite
    def build(draw):
        cut = draw(st.integers(0, max(len(said) - 1, 0)))
        return Atom(kind.name, sigma_escape(said[:cut]) + "?" + sigma_escape(said[cut + 1:]), kind, [value])
    return build()


def _escaped_wild(kind, value, said):
    @st.composite
    def build(draw):
        char = draw(st.sampled_from(["*", "?"]))
        cut = draw(st.integers(0, len(value)))
        literal_value = value[:cut] + char + value[cut:]
        said_value = said[:cut] + char + said[cut:]
        return Atom(kind.name, sigma_escape(said_value), kind, [literal_value, value[:cut] + "x" + value[cut:]])
    return build()


def _modifier(mod: str):
    def builder(kind, value, said):
        @st.composite
        def build(draw):
            start = draw(st.integers(0, len(said)))
            end = draw(st.integers(start, len(said)))
            part = {"contains": said[start:end] or said, "startswith": said[:end] or said,
                    "endswith": said[start:] or said}[mod]
            return Atom(f"{kind.name}|{mod}", sigma_escape(part), kind, [value])
        return build()
    return builder


def _cased(kind, value, said):
    mod = "|cased"
    return st.sampled_from(["", "|contains", "|startswith", "|endswith"]).map(
        lambda m: Atom(f"{kind.name}{m}{mod}", sigma_escape(value if m == "" else value[1:] if m == "|endswith" else value[:-1] or value),
                       kind, [value, flip_case(value)]))


def _all(kind, value, said):
    cut = max(1, len(said) // 2)
    parts = [said[:cut], said[cut:] or said]
    return st.just(Atom(f"{kind.name}|contains|all", [sigma_escape(p) for p in parts], kind, [value]))


def _regex(kind, value, said):
    @st.composite
    def build(draw):
        import re
        quoted = re.escape(value)
        other = re.escape(near_miss(value))
        shapes = [
            quoted, "^" + quoted, quoted + "$", "^" + quoted + "$", f"^{other}|{quoted}$", f"(^|\\.){quoted}$",
            f"^(?:{other}|{quoted})$", "(?i)" + re.escape(flip_case(value)), "[a-z]+" + re.escape(value[-2:]) if len(value) > 1 else quoted,
            f"{quoted[:1]}.{{0,3}}", f"^{quoted}\\.?$", f"(?i)^{re.escape(said)}",
        ]
        pattern = draw(st.sampled_from(shapes))
        return Atom(f"{kind.name}|re", pattern, kind, [value])
    return build()


def _cidr(kind, value, said):
    @st.composite
    def build(draw):
        address = ipaddress.ip_address(value)
        prefix = draw(st.sampled_from([8, 16, 24, 31, 32] if address.version == 4 else [16, 32, 48, 64, 127, 128]))
        network = ipaddress.ip_network(f"{value}/{prefix}", strict=False)
        return Atom(f"{kind.name}|cidr", str(network), kind, [value])
    return build()


def _ip_prefix(kind, value, said):
    """startswith/wildcards/contains on an ip-typed field: issue 12 item 3."""
    @st.composite
    def build(draw):
        sep = "." if "." in value else ":"
        head = value[: value.rfind(sep) + 1]
        shape = draw(st.sampled_from(["startswith", "wild", "endswith", "contains", "question"]))
        if shape == "startswith":
            return Atom(f"{kind.name}|startswith", head, kind, [value])
        if shape == "wild":
            return Atom(kind.name, head + "*", kind, [value])
        if shape == "question":
            return Atom(kind.name, value[:-1] + "?", kind, [value])
        if shape == "endswith":
            return Atom(f"{kind.name}|endswith", value[len(head):], kind, [value])
        return Atom(f"{kind.name}|contains", value[1:-1] or value, kind, [value])
    return build()


def _exists(kind, value, said):
    return st.booleans().map(lambda b: Atom(f"{kind.name}|exists", b, kind, [value], absent_matches=not b))


def _null(kind, value, said):
    return st.just(Atom(kind.name, None, kind, [value], absent_matches=True))


def _number(kind, value, said):
    @st.composite
    def build(draw):
        number = int(value) if value.isdigit() else draw(st.integers(0, 65535))
        op = draw(st.sampled_from(["", "|gt", "|gte", "|lt", "|lte"]))
        return Atom(f"{kind.name}{op}", number, kind, [str(number), str(number + 1), str(max(number - 1, 0))])
    return build()


def _base64offset(kind, value, said):
    return st.just(Atom(f"{kind.name}|base64offset|contains", said, kind,
                        [base64.b64encode(("xy" + said).encode()).decode(), base64.b64encode(said.encode()).decode()]))


def _windash(kind, value, said):
    return st.just(Atom(f"{kind.name}|windash|contains", "-" + sigma_escape(said), kind, ["-" + value, "/" + value, "\u2013" + value]))


def _keyword(kind, value, said):
    return st.just(Atom("keywords", [sigma_escape(said)], None, [value]))


def _list(kind, value, said):
    return st.just(Atom(kind.name, [sigma_escape(near_miss(said)), sigma_escape(said)], kind, [value]))


ATOM_BUILDERS = {
    "plain": _plain, "star": _wild_star, "question": _wild_question, "escaped": _escaped_wild,
    "contains": _modifier("contains"), "startswith": _modifier("startswith"), "endswith": _modifier("endswith"),
    "cased": _cased, "all": _all, "re": _regex, "cidr": _cidr, "ip_prefix": _ip_prefix, "exists": _exists,
    "null": _null, "number": _number, "base64offset": _base64offset, "windash": _windash, "keyword": _keyword,
    "list": _list,
}
STRINGS = ["plain", "star", "question", "escaped", "contains", "startswith", "endswith", "cased", "all", "re",
           "exists", "null", "base64offset", "windash", "keyword", "list"]
VALUE_TYPES_FOR = {
    "string": STRINGS, "nested": STRINGS, "single": STRINGS, "column": STRINGS,
    "array": STRINGS + ["cidr"],
    "ip": ["plain", "cidr", "ip_prefix", "exists", "list", "keyword", "re"],
    "cidr_string": ["plain", "cidr", "ip_prefix", "exists", "contains", "keyword"],
    "integer": ["number", "plain", "exists", "list", "star"],
}

# ------------------------------------------------------------------ conditions


@st.composite
def condition(draw, names: list[str]) -> str:
    shape = draw(st.sampled_from(["tree", "tree", "1of", "allof", "nested_of"]))
    if shape == "1of":
        return ("not " if draw(st.booleans()) else "") + "1 of sel*"
    if shape == "allof":
        return "all of sel*"
    if shape == "nested_of":
        return f"{names[0]} and not 1 of sel*" if len(names) > 1 else f"not {names[0]}"
    return draw(_tree(names))


def _tree(names):
    leaves = st.sampled_from(names)
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            inner.map(lambda t: f"not ({t})"),
            st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        ),
        max_leaves=4,
    )


# ------------------------------------------------------------------ events


def base_event(source: str, number: int) -> object:
    time = f"2026-11-27T12:00:{number % 60:02d}Z"
    if source == RESOLVER:
        return {
            "version": "1.100000", "account_id": "111122223333", "region": "us-east-1", "vpc_id": "vpc-1",
            "query_timestamp": time, "query_name": "base.example.com.", "query_type": "A", "query_class": "IN",
            "rcode": "NOERROR", "answers": [{"Rdata": "192.0.2.1", "Type": "A", "Class": "IN"}],
            "srcaddr": "10.9.9.9", "srcport": "53211", "transport": "UDP", "srcids": {"instance": "i-0abc"},
        }
    if source == PUBLIC:
        return {"version": "1.0", "queryTimestamp": time.replace("Z", ".000Z"), "hostZoneId": "Z0123456789EXAMPLE",
                "queryName": "base.example.com", "queryType": "A", "responseCode": "NOERROR", "protocol": "UDP",
                "edgeLocation": "FRA56-C1", "resolverIp": "198.51.100.7", "ednsClientSubnet": "-"}
    return {
        "eventVersion": "1.09", "eventTime": time, "eventSource": "route53resolver.amazonaws.com",
        "eventName": "CreateResolverRule", "awsRegion": "us-east-1", "sourceIPAddress": "198.51.100.23",
        "userAgent": "aws-cli/2.15", "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/a"},
        "requestParameters": {"domainName": "corp.example.", "ruleType": "FORWARD",
                              "changeBatch": {"changes": [{"action": "CREATE", "resourceRecordSet": {"name": "a.example.com.", "type": "A"}}]}},
        "eventType": "AwsApiCall", "recipientAccountId": "111122223333",
    }


PUBLIC_COLUMNS = ["version", "queryTimestamp", "hostZoneId", "queryName", "queryType", "responseCode",
                  "protocol", "edgeLocation", "resolverIp", "ednsClientSubnet"]


def put(source: str, event, kind: FieldKind, value: str | None, *, other_element: bool = False) -> None:
    """Set (None: remove) the field in a raw event; an array field gets the value as one of its elements."""
    name = kind.name
    if source == PUBLIC:
        event[name] = "-" if value is None or value == "" else value.replace(" ", "")
        return
    if name == "answers.Rdata":
        answers = [{"Rdata": "192.0.2.1", "Type": "A", "Class": "IN"}] if other_element else []
        if value is not None:  # the record type that can carry the value (an A record holds an IPv4 address)
            kind_of = "A" if _is_ip(value) and "." in value and ":" not in value else "AAAA" if _is_ip(value) else "CNAME"
            answers.append({"Rdata": value, "Type": kind_of, "Class": "IN"})
        event["answers"] = answers
        return
    if name == "requestParameters.changeBatch.changes.resourceRecordSet.name":
        changes = [{"action": "CREATE", "resourceRecordSet": {"name": "other.example.", "type": "A"}}] if other_element else []
        if value is not None:
            changes.append({"action": "UPSERT", "resourceRecordSet": {"name": value, "type": "CNAME"}})
        event["requestParameters"]["changeBatch"]["changes"] = changes
        return
    parts = name.split(".")
    holder = event
    for part in parts[:-1]:
        holder = holder.setdefault(part, {})
    if value is None:
        holder.pop(parts[-1], None)
    elif kind.kind == "integer" and not value.isdigit():
        holder[parts[-1]] = "0"
    else:
        holder[parts[-1]] = value


def variants(atom_: Atom) -> list[str | None]:
    """Values on both sides of the atom: hits, near misses, case flips, trailing dot, absent."""
    kind = atom_.field
    out: list[str | None] = []
    for hit in atom_.hits:
        out += [hit, near_miss(hit), flip_case(hit), "x" + hit, hit + "x"]
        if not _is_ip(hit):  # a name may end with the root's dot; an address never does
            out.append(hit + ".")
    out.append(None)
    if kind is None:
        return out
    if kind.kind in ("ip", "cidr_string"):
        out = [v for v in out if v is None or _is_ip(v)] + [_next_ip(h) for h in atom_.hits if _is_ip(h)]
    if kind.kind == "integer":
        out = [v for v in out if v is None or v.isdigit()]
    if kind.case != "mixed":
        out = [None if v is None else cased(v, kind) for v in out]
    return out


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def _next_ip(text: str) -> str:
    return str(ipaddress.ip_address(text) + 1)


def render_event(source: str, event) -> object:
    if source == PUBLIC:
        return " ".join(str(event[c]) for c in PUBLIC_COLUMNS)
    return event


@dataclass
class Case:
    source: str
    rule: str  # YAML
    events: list
    title: str
    rule_id: str = ""

    def describe(self) -> str:
        return self.rule + "events:\n" + "\n".join("  " + json.dumps(e) for e in self.events)


@st.composite
def case(draw) -> Case:
    source = draw(st.sampled_from([RESOLVER, RESOLVER, PUBLIC, CLOUDTRAIL]))
    atoms = draw(st.lists(atom(source), min_size=1, max_size=3))
    detection: dict = {}
    names = []
    for n, a in enumerate(atoms):
        name = f"sel{n}"
        names.append(name)
        if a.key == "keywords":
            detection[name] = a.value
        else:
            extra = {}
            if draw(st.booleans()) and len(atoms) == 1 and a.field is not None:
                extra = {"eventName" if source == CLOUDTRAIL else "version": "CreateResolverRule" if source == CLOUDTRAIL else None}
                extra = {k: v for k, v in extra.items() if v is not None}
            detection[name] = {a.key: a.value, **extra}
    detection["condition"] = draw(condition(names))
    rule_id = str(uuid.UUID(int=draw(st.integers(0, 2**64)), version=4))
    title = f"adversarial {rule_id[:8]}"
    rule = yaml.safe_dump({"title": title, "id": rule_id, "status": "test", "logsource": LOGSOURCE[source],
                           "detection": detection, "level": "low"}, sort_keys=False, allow_unicode=True)
    events = []
    for n in range(draw(st.integers(4, 9))):
        event = base_event(source, n)
        for a in atoms:
            if a.field is None:  # a keyword: put the text into some string field
                kind = draw(st.sampled_from([k for k in FIELDS[source] if k.kind in ("string", "column", "nested")]))
                put(source, event, kind, draw(st.sampled_from(variants(a))))
                continue
            value = draw(st.sampled_from(variants(a)))
            put(source, event, a.field, value, other_element=draw(st.booleans()))
        events.append(render_event(source, event))
    return Case(source, rule, events, title, rule_id)


batches = st.lists(case(), min_size=BATCH, max_size=BATCH)


def has_keyword(c: Case) -> bool:
    detection = yaml.safe_load(c.rule)["detection"]
    return any(isinstance(v, list) for k, v in detection.items() if k != "condition")

# ------------------------------------------------------------------ the check


@dataclass
class Finding:
    target: str
    status: str
    reason: str
    query: str | None
    case: Case
    mismatches: list = field(default_factory=list)

    def __str__(self) -> str:
        text = f"{self.status} on {self.target}: {self.reason}\n"
        text += "".join(f"  {m}\n" for m in self.mismatches)
        text += f"query:\n{self.query}\nrule:\n{self.case.describe()}\n"
        return text


def check(cases: list[Case], targets: tuple[str, ...] = TARGETS) -> list[Finding]:
    """Verify every case on every target; the cells that neither agree nor refuse with a reason."""
    previous = os.environ.get("R53SIGMA_TARGETS")
    os.environ["R53SIGMA_TARGETS"] = ESQL_TARGET_MODULE  # for this call only: subprocesses of other tests must not inherit it
    try:
        return _check(cases, targets)
    finally:
        if previous is None:
            os.environ.pop("R53SIGMA_TARGETS", None)
        else:
            os.environ["R53SIGMA_TARGETS"] = previous


def _check(cases: list[Case], targets: tuple[str, ...]) -> list[Finding]:
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for n, c in enumerate(cases):
            path = Path(folder) / f"rule_{n}.yml"
            c.rule = c.rule.replace(c.rule_id, str(uuid.UUID(int=n + 1, version=4)), 1)  # one id per rule of the batch
            c.rule_id = str(uuid.UUID(int=n + 1, version=4))
            path.write_text(c.rule, encoding="utf-8")
            paths.append(path)
        loaded = rules_mod.load(paths)
        assert not loaded.errors, [e.message for e in loaded.errors]
        by_id = {}
        pairs = []
        for c, rule in zip(cases, loaded.top_level()):
            by_id[str(rule.id)] = c
            pairs.append((rule, verify.Case(str(rule.id), "generated", c.events)))
        report = verify.verify(paths, loaded, pairs, targets)
    findings = [Finding(cell.target, cell.status, cell.reason, cell.query, by_id[cell.rule_id], cell.mismatches)
                for cell in report.cells
                if not cell.passed or (cell.status == verify.NOT_EXPRESSIBLE and not cell.reason)]
    findings += [Finding("-", "problem", p, None, cases[0]) for p in report.problems]
    return findings


# ------------------------------------------------------------------ the scan engines, side by side

# group-by and value fields of generated correlations, per log source (arrays, nested, absent values included)
CORRELATION_GROUPS = {
    RESOLVER: ["srcaddr", "query_name", "answers.Rdata", "rcode", "srcids.instance", "account_id"],
    PUBLIC: ["queryName", "resolverIp", "edgeLocation"],
    CLOUDTRAIL: ["eventName", "sourceIPAddress", "userIdentity.arn",
                 "requestParameters.changeBatch.changes.resourceRecordSet.name"],
}
CORRELATION_VALUES = {
    RESOLVER: ["query_name", "answers.Rdata", "srcport", "srcaddr"],
    PUBLIC: ["queryName", "queryType"],
    CLOUDTRAIL: ["eventName", "sourceIPAddress", "requestParameters.domainName"],
}
TIME_FIELD = {RESOLVER: "query_timestamp", PUBLIC: "queryTimestamp", CLOUDTRAIL: "eventTime"}
# seconds after 12:00: repeats, a window's edges (1 s, 1 m, 2 m, 5 m), and far apart
SECONDS = [0, 0, 1, 5, 30, 59, 60, 61, 119, 120, 300, 599, 600]


# Values a Resolver record's fields may hold that the line checks and both readers must treat alike: other
# JSON types, absent lists, case-folding and look-alike letters, control characters, numbers and their texts
HOSTILE_VALUES = [None, 0, 53, 3.5, 1e400, True, [], {}, ["a"], {"x": 1}, "", " ", "İ.example", "ß.example",
                  "\u212a.example", "a\u0000b", "\u2028", "10.0.0.1 ", "::ffff:10.0.0.1", "1e3", "NaN", "..", "."]
HOSTILE_FIELDS = ["query_name", "query_type", "rcode", "srcaddr", "srcport", "account_id", "transport",
                  "query_timestamp", "firewall_rule_action", "srcids", "answers"]


@st.composite
def hostile(draw, event: dict) -> dict:
    """The Resolver record with up to two fields given a hostile value, an answer's or instance's included."""
    event = json.loads(json.dumps(event))
    for _ in range(draw(st.integers(0, 2))):
        name, value = draw(st.sampled_from(HOSTILE_FIELDS)), draw(st.sampled_from(HOSTILE_VALUES))
        if name == "answers" and draw(st.booleans()):
            value = [{"Rdata": value, "Type": draw(st.sampled_from(["A", "AAAA", None])), "Class": "IN"}]
        elif name == "srcids" and draw(st.booleans()):
            value = {"instance": value}
        event[name] = value
    return event


@dataclass
class ScanBatch:
    """Generated rules (the cases' and correlations over them) and the cases' events, re-timed."""
    documents: list
    events: dict  # source -> raw events


@st.composite
def correlation(draw, by_source: dict, number: int) -> dict:
    source = draw(st.sampled_from(sorted(by_source)))
    kind = draw(st.sampled_from(["event_count", "value_count", "temporal", "temporal_ordered",
                                 "value_sum", "value_avg", "value_median", "value_percentile"]))
    names = by_source[source]
    refs = draw(st.lists(st.sampled_from(names), min_size=2 if kind.startswith("temporal") and len(names) > 1 else 1,
                         max_size=3, unique=True))
    op = draw(st.sampled_from(["gt", "gte", "lt", "lte", "eq", "neq"]))
    numeric = kind.startswith("value_") and kind != "value_count"
    condition = {op: draw(st.sampled_from([0, 53, 1024, 40000.5, -1] if numeric else [0, 1, 2, 3, 5]))}
    if kind not in ("event_count", "temporal", "temporal_ordered"):
        condition["field"] = draw(st.sampled_from(CORRELATION_VALUES[source]))
    if kind == "value_percentile":
        condition["percentile"] = draw(st.sampled_from([0, 50, 90, 100]))
    body = {"type": kind, "rules": refs, "timespan": draw(st.sampled_from(["1s", "30s", "1m", "2m", "5m", "1h"])),
            "condition": condition}
    group = draw(st.lists(st.sampled_from(CORRELATION_GROUPS[source]), max_size=2, unique=True))
    if group:
        body["group-by"] = group
    return {"title": f"correlation {number} {kind}", "id": str(uuid.UUID(int=1000 + number, version=4)),
            "level": "low", "correlation": body}


@st.composite
def scan_batch(draw) -> ScanBatch:
    cases = draw(st.lists(case(), min_size=3, max_size=8))
    documents, events, by_source = [], {RESOLVER: [], PUBLIC: [], CLOUDTRAIL: []}, {}
    for n, c in enumerate(cases):
        rule = yaml.safe_load(c.rule)
        rule.update(id=str(uuid.UUID(int=n + 1, version=4)), name=f"base{n}", title=f"base {n}")
        documents.append(rule)
        by_source.setdefault(c.source, []).append(f"base{n}")
        for event in c.events:
            seconds = draw(st.sampled_from(SECONDS))
            stamp = f"2026-11-27T12:{seconds // 60:02d}:{seconds % 60:02d}"
            if c.source == PUBLIC:
                columns = event.split(" ")
                columns[PUBLIC_COLUMNS.index("queryTimestamp")] = stamp + ".000Z"
                event = " ".join(columns)
            else:
                event = dict(event, **{TIME_FIELD[c.source]: stamp + "Z"})
                if c.source == RESOLVER:
                    event = draw(hostile(event))
            events[c.source].append(event)
    documents += [draw(correlation(by_source, m)) for m in range(draw(st.integers(0, 4)))]
    return ScanBatch(documents, events)


def scan_both(batch: ScanBatch, folder: Path, warm: bool = False) -> tuple[tuple, ...]:
    """(exit status, alerts, the summary line) of ``r53sigma scan`` with each engine on the batch: its rules
    in one file, its events in a file per log source (JSON lines, hosted-zone lines, a CloudTrail document).
    ``warm``: a third result, the default engine's warm scan of these small files (the reference engine on
    the match plans of the compiled run the DuckDB scan left in a cache folder of its own)."""
    import contextlib
    import io
    import os
    from unittest import mock

    from r53sigma import cli
    from r53sigma.scan import reference, standins

    rules = folder / "rules.yml"
    rules.write_text(yaml.safe_dump_all(batch.documents, sort_keys=False, allow_unicode=True), encoding="utf-8")
    logs = []
    writers = {RESOLVER: ("resolver.jsonl", lambda es: "".join(json.dumps(e) + "\n" for e in es)),
               PUBLIC: ("zone.log", lambda es: "".join(e + "\n" for e in es)),
               CLOUDTRAIL: ("trail.json", lambda es: json.dumps({"Records": es}))}
    for source, (name, render) in writers.items():
        if batch.events[source]:
            (folder / name).write_text(render(batch.events[source]), encoding="utf-8")
            logs.append(str(folder / name))
    results = []
    stand_ins = []
    real_scan = reference.Engine.scan

    def spied_scan(engine, events, rules=None):
        stand_ins.extend(isinstance(r, (standins.CachedRule, standins.CachedCorrelation)) for r in rules or [])
        return real_scan(engine, events, rules)

    cache = {"R53SIGMA_CACHE_DIR": str(folder / "cache")} if warm else {}
    with mock.patch.dict(os.environ, cache), mock.patch.object(reference.Engine, "scan", spied_scan):
        for engine in ("reference", "duckdb", "default")[:3 if warm else 2]:
            out, err = folder / f"{engine}.jsonl", io.StringIO()
            chosen = ["--engine", engine] if engine != "default" else []
            stand_ins.clear()  # what the last run's reference engine was given
            with contextlib.redirect_stderr(err):
                status = cli.main(["scan", "--no-progress", *chosen, "--rules", str(rules), "-o", str(out), *logs])
            summary = [line for line in err.getvalue().splitlines() if line.startswith("scanned")]
            results.append((status, out.read_text(encoding="utf-8") if out.exists() else None, summary))
    if warm and list((folder / "cache" / "runs").glob("*.json")):  # no compiled run: no rule was left to run
        assert stand_ins and all(stand_ins), "the warm scan did not run the reference engine on the stand-ins"
    return tuple(results)


if __name__ == "__main__":  # the long exploratory run: every finding, not only the first
    import sys
    import warnings

    from hypothesis.errors import NonInteractiveExampleWarning

    warnings.simplefilter("ignore", NonInteractiveExampleWarning)
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else Path("adversarial_findings.txt")
    total = 0
    with out.open("w", encoding="utf-8") as handle:
        for n in range(rounds):
            found = check(batches.example())
            total += len(found)
            for f in found:
                handle.write(str(f) + "\n" + "=" * 60 + "\n")
            handle.flush()
            print(f"batch {n}: {len(found)} finding(s), {total} in all", flush=True)
