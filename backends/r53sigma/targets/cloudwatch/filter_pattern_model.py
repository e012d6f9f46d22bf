"""An executable model of CloudWatch Logs' JSON filter patterns (metric filters), written from AWS's
documentation only, as strict as the service where the pages say what it rejects.

Pages (CloudWatch Logs User Guide):
- FP  "Filter pattern syntax for metric filters, subscription filters, filter log events, and Live Tail"
      https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/FilterAndPatternSyntax.html
- JSON "Using filter patterns to match terms in JSON log events"
      https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/matching-terms-json-log-events.html
- RE  "Supported regular expressions (regex) syntax"
      https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/regex-expressions.html
- API "PutMetricFilter" / "MetricFilter" (filterPattern: length 0..1024)
      https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_MetricFilter.html
- SD  "Using filter patterns to match terms in space-delimited log events" (FilterAndPatternSyntax,
      "Using Metric Filters to Extract Values from Space-Delimited Log Events" in awsdocs'
      amazon-cloudwatch-logs-user-guide doc_source/FilterAndPatternSyntax.md)
      https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/matching-terms-space-delimited-log-events.html

Covered (and nothing else; anything else is a FilterPatternError, the model's "cannot read this"):
``{ SELECTOR OP VALUE }`` with selectors ``$.a.b`` and ``$.a[0]`` (JSON), operators ``=``/``!=`` on
strings (quoted, with the ``*`` wildcard) and on numbers, ``=`` on ``%regex%`` (RE), ``<``, ``>``, ``<=``,
``>=`` on numbers, ``IS NULL`` and ``NOT EXISTS`` (JSON), ``&&``, ``||`` and parentheses (JSON).

Strictness rules (each a rejection, RejectedPattern, the service's "invalid pattern"):
- the whole pattern is at most 1024 characters (API);
- at most 2 regular expressions in one JSON pattern (RE, "Quotas");
- a regex holds only letters, digits, the symbols ``: _ # = @ / ; , -`` and the operators
  ``^ $ ? [ ] { } | \\ * + .``; no ``(``/``)`` (no sub-patterns) and no multibyte character (RE);
- a backslash in a regex is one of RE's "Usage of supported operators" entries and nothing else:
  ``\\`` before one of those operators (its literal meaning, e.g. ``%10\\.10\\.0\\.1%``), the classes
  ``\\d \\D \\s \\S \\w \\W`` (``%\\d%`` is ``[0-9]``, ``\\w`` is ``[a-zA-Z_0-9]``: ASCII, as Python's
  ``re.ASCII``) and ``\\xhh`` (two hexadecimal digits, an ASCII character). Python's ``re`` reads many
  more (``\\b``, ``\\n``, ``\\A``, ``\\Z``, ``\\1``, ``\\-`` ...): the service's are not documented, so
  each is refused (RejectedPattern) rather than run with Python's meaning. Likewise braces other than
  RE's ``{m,n}`` and a quantifier on a quantifier (``a*+``, ``a+?``).
Space-delimited patterns (SD): ``[name, name = VALUE, ..., name OP VALUE && name OP VALUE]``: one
entry per field, named, optionally with conditions on it (``=``/``!=`` with a string, ``*`` the
wildcard, or ``%regex%``; ``<``, ``>``, ``<=``, ``>=``, ``=``, ``!=`` with a number; several joined by
``&&`` or by ``||`` within one entry, the SD examples' forms), and ``...`` for any number of fields.
A line's fields are split on spaces; the text between ``[`` ``]`` or a pair of ``"`` is one field (SD).
Without ``...`` a line must have exactly as many fields as the pattern has entries. A condition names the
entry's own field only (every SD example does; another name there is a FilterPatternError).
Empty entries: SD documents one, a trailing comma (``[..., request=*.html*, status_code=4*,]``
extracts the line's last field as ``$7``), read as one unnamed field; an empty entry elsewhere
(``[a,,b]``, ``[,a]``) appears on no page, so the model does not read it (FilterPatternError).
A string value (quoted, bare, wildcard or regex) compares with a JSON string: JSON says the selector
must point to a value node and matches booleans with ``IS TRUE``/``IS FALSE``, numbers with numeric
operands; whether ``{ $.x = "true" }`` matches ``true`` or ``{ $.x = "5" }`` matches ``5`` is on no
page, so evaluating a string comparison on a boolean or a number raises FilterPatternError (the
model cannot say) instead of comparing the JSON text.
Matching is case-sensitive: the pages give no case-insensitive form (FP: terms are case sensitive),
so the model compares exactly. A comparison whose selector names no value is false; our backend never
relies on either reading of a missing field (it adds ``NOT EXISTS``/``IS NULL`` alternatives itself).
A regex searches the value (RE: ``%AUTHORIZED%`` matches "UNAUTHORIZED REQUEST").
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

MAX_PATTERN_LENGTH = 1024  # API: filterPattern length constraint
MAX_REGEXES_PER_PATTERN = 2  # RE: quotas, JSON and space-delimited patterns
REGEX_OPERATORS = set("^$?[]{}|\\*+.")  # RE: "Supported operators"
REGEX_ALLOWED = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") | set(":_#=@/;,-") | REGEX_OPERATORS
REGEX_CLASS_ESCAPES = set("dDsSwW")  # RE: "\\d, \\D", "\\s, \\S", "\\w, \\W"
HEX_DIGITS = set("0123456789abcdefABCDEF")
MISSING = object()


class FilterPatternError(ValueError):
    """The model does not read this pattern (outside what the pages document)."""


class RejectedPattern(ValueError):
    """CloudWatch Logs would reject this pattern (a documented limit or a character the regex syntax lacks)."""


TOKEN = re.compile(
    r'\s*(?:(?P<lp>\()|(?P<rp>\))|(?P<and>&&)|(?P<or>\|\|)|(?P<op>!=|<=|>=|=|<|>)'
    r'|(?P<isnull>IS\s+NULL\b)|(?P<notexists>NOT\s+EXISTS\b)'
    r'|(?P<selector>\$(?:\.[A-Za-z0-9_@-]+|\[[0-9]+\])+)'
    r'|(?P<string>"(?:[^"\\]|\\.)*")|(?P<regex>%[^%]*%)|(?P<number>-?[0-9]+(?:\.[0-9]+)?(?![A-Za-z0-9_.*]))'
    r'|(?P<bare>[A-Za-z0-9_.*]+))'
)
# FP: "Metric filter terms that include characters other than alphanumeric or underscore must be placed
# inside double quotes"; JSON's own unquoted example `{ $.sourceIPAddress != 123.123.* }` adds `.` and `*`.
# A quoted string's backslash escapes are on no page (the model does not read them).


@dataclass
class Compare:
    selector: str
    op: str
    kind: str  # string | regex | number | null | missing
    value: Any = None


@dataclass
class Boolean:
    op: str  # && or ||
    args: list


def _check_regex(body: str) -> re.Pattern:
    if not body:
        raise RejectedPattern("an empty regex")
    if any(ord(c) > 127 for c in body):
        raise RejectedPattern(f"regex %{body}%: multibyte characters are not supported")
    bad = sorted({c for c in body if c not in REGEX_ALLOWED})
    if bad:
        raise RejectedPattern(f"regex %{body}%: characters {''.join(bad)!r} are not in the supported regex syntax")
    construct = _undocumented_construct(body)
    if construct:
        raise RejectedPattern(f"regex %{body}%: {construct!r} is not in the supported regex syntax")
    try:
        return re.compile(_documented_whitespace(body), re.ASCII)
    except re.error as error:
        raise RejectedPattern(f"regex %{body}%: {error}") from None


def _documented_whitespace(body: str) -> str:
    """``\\s`` as the page defines it, tab, space and newline only (Python's ASCII ``\\s`` also takes
    CR, FF and VT); ``\\S`` its complement. Inside a character class only ``\\s`` has a plain spelling."""
    out, in_class, i = [], False, 0
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            pair = body[i:i + 2]
            if pair == "\\s":
                out.append(" \\t\\n" if in_class else "[ \\t\\n]")
            elif pair == "\\S":
                if in_class:
                    raise RejectedPattern(f"regex %{body}%: \\S inside a character class is not read")
                out.append("[^ \\t\\n]")
            else:
                out.append(pair)
            i += 2
            continue
        if c == "[" and not in_class:
            in_class = True
        elif c == "]" and in_class:
            in_class = False
        out.append(c)
        i += 1
    return "".join(out)


BOUNDS = re.compile(r"\{([0-9]+),([0-9]+)\}")


def _undocumented_construct(body: str) -> str | None:
    """The first piece of `body` outside RE's documented ones, or None: a backslash other than the
    page's escapes; a brace other than the documented `{m,n}` (RE: "{m, n}", e.g. `%a{3,5}%`; `{m}`,
    `{m,}` and `{m, n}` with a space are on no page, and Python reads the last as literal text); a
    quantifier on a quantifier (`a*+` is possessive in Python 3.11, `a+?` lazy: neither documented)."""
    i, in_class, quantified = 0, False, False
    while i < len(body):
        c = body[i]
        if c == "\\":
            nxt = body[i + 1:i + 2]
            if nxt in REGEX_OPERATORS or nxt in REGEX_CLASS_ESCAPES and nxt:
                i += 2
            elif nxt == "x" and len(body[i + 2:i + 4]) == 2 and set(body[i + 2:i + 4]) <= HEX_DIGITS and int(body[i + 2:i + 4], 16) < 0x80:
                i += 4
            else:
                return body[i:i + 4] if nxt == "x" else body[i:i + 2]
            quantified = False
            continue
        if in_class:
            in_class = c != "]"
            i += 1
            continue
        if c == "[":
            in_class, quantified = True, False
            i += 1
            continue
        bounds = BOUNDS.match(body, i) if c == "{" else None
        if c == "{" and not (bounds and int(bounds.group(1)) <= int(bounds.group(2))):
            return body[i:body.find("}", i) + 1 or len(body)]
        if c == "}":
            return "}"
        if c in "*+?{":
            if quantified:
                return "a quantifier on a quantifier"
            quantified = True
            i = bounds.end() if bounds else i + 1
            continue
        quantified = False
        i += 1
    return None


class Pattern:
    def __init__(self, tree, regexes: int):
        self.tree, self.regexes = tree, regexes

    @classmethod
    def parse(cls, text: str) -> "Pattern":
        if len(text) > MAX_PATTERN_LENGTH:
            raise RejectedPattern(f"the pattern is {len(text)} characters, more than {MAX_PATTERN_LENGTH}")
        body = text.strip()
        if body.startswith("[") and body.endswith("]"):
            return SpacePattern.parse_body(body[1:-1])
        if not (body.startswith("{") and body.endswith("}")):
            raise FilterPatternError("only JSON { ... } and space-delimited [ ... ] filter patterns are modelled")
        tokens, position, inner = [], 0, body[1:-1]
        while position < len(inner):
            if not inner[position:].strip():
                break
            match = TOKEN.match(inner, position)
            if not match or match.end() == position:
                raise FilterPatternError(f"cannot read the pattern at {inner[position:position + 20]!r}")
            tokens.append((match.lastgroup, match.group(match.lastgroup)))
            position = match.end()
        parser = _Parser(tokens)
        tree = parser.expression()
        if parser.position != len(tokens):
            raise FilterPatternError(f"unexpected {tokens[parser.position][1]!r}")
        if parser.regexes > MAX_REGEXES_PER_PATTERN:
            raise RejectedPattern(f"{parser.regexes} regular expressions in one pattern, more than {MAX_REGEXES_PER_PATTERN}")
        return cls(tree, parser.regexes)

    def matches(self, message: str) -> bool:
        try:
            record = json.loads(message)
        except ValueError:
            return False  # JSON: a JSON pattern selects JSON log events only
        return _evaluate(self.tree, record)


class _Parser:
    def __init__(self, tokens):
        self.tokens, self.position, self.regexes = tokens, 0, 0

    def peek(self):
        return self.tokens[self.position] if self.position < len(self.tokens) else (None, None)

    def take(self, kind=None):
        token = self.peek()
        if token[0] is None or (kind and token[0] != kind):
            raise FilterPatternError(f"expected {kind or 'more'}, found {token[1]!r}")
        self.position += 1
        return token

    def expression(self):
        # JSON: && and || combine; precedence is not documented, so a mix needs parentheses
        args, ops = [self.primary()], set()
        while self.peek()[0] in ("and", "or"):
            ops.add(self.take()[1])
            args.append(self.primary())
        if len(ops) > 1:
            raise FilterPatternError("&& and || mixed without parentheses (precedence undocumented)")
        return Boolean(ops.pop(), args) if ops else args[0]

    def primary(self):
        if self.peek()[0] == "lp":
            self.take()
            inner = self.expression()
            self.take("rp")
            return inner
        selector = self.take("selector")[1]
        kind, text = self.take()
        if kind == "isnull":
            return Compare(selector, "=", "null")
        if kind == "notexists":
            return Compare(selector, "=", "missing")
        if kind != "op":
            raise FilterPatternError(f"expected an operator after {selector}, found {text!r}")
        op = text
        kind, text = self.take()
        if kind == "number":
            return Compare(selector, op, "number", float(text))
        if op not in ("=", "!="):
            raise FilterPatternError(f"{op} takes a number (JSON)")
        if kind == "regex":
            if op != "=":  # RE/JSON show regexes compared with = only
                raise FilterPatternError("a regex compared with != (undocumented)")
            self.regexes += 1
            return Compare(selector, op, "regex", _check_regex(text[1:-1]))
        if kind == "string":
            if "\\" in text:
                raise FilterPatternError(f"a backslash in the quoted string {text} (its escapes are undocumented)")
            return Compare(selector, op, "string", text[1:-1])
        if kind == "bare":
            return Compare(selector, op, "string", text)
        raise FilterPatternError(f"cannot compare {selector} with {text!r}")


def _select(record: Any, selector: str) -> Any:
    value = record
    for name, index in re.findall(r"\.([A-Za-z0-9_@-]+)|\[([0-9]+)\]", selector[1:]):
        if name:
            if not isinstance(value, dict) or name not in value:
                return MISSING
            value = value[name]
        else:
            if not isinstance(value, list) or int(index) >= len(value):
                return MISSING
            value = value[int(index)]
    return value


def _wildcard(pattern: str) -> re.Pattern:
    # JSON: `*` in a string value matches any text (e.g. "123.123.*"); everything else is literal
    return re.compile("".join(".*" if c == "*" else re.escape(c) for c in pattern), re.S)


def _evaluate(node, record) -> bool:
    if isinstance(node, Boolean):
        results = (_evaluate(arg, record) for arg in node.args)
        return all(results) if node.op == "&&" else any(results)
    value = _select(record, node.selector)
    if node.kind == "missing":
        return value is MISSING
    if node.kind == "null":
        return value is None
    if value is MISSING or value is None or isinstance(value, (dict, list)):
        return False
    if node.kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        return {"=": value == node.value, "!=": value != node.value, "<": value < node.value,
                ">": value > node.value, "<=": value <= node.value, ">=": value >= node.value}[node.op]
    if not isinstance(value, str):
        raise FilterPatternError(f"{node.selector} compared with a string on the JSON {json.dumps(value)}: the pages match "
                                 "booleans with IS TRUE/IS FALSE and numbers with numeric operands, a string on neither")
    text = value
    if node.kind == "regex":
        hit = node.value.search(text) is not None
    else:
        hit = _wildcard(node.value).fullmatch(text) is not None
    return hit if node.op == "=" else not hit


# ---------------------------------------------------------------- space-delimited patterns (SD)

SD_CONDITION = re.compile(
    r'\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<op>!=|<=|>=|=|<|>)\s*'
    r'(?P<value>"[^"\\]*"|%[^%]*%|[+-]?[A-Za-z0-9_.*]+)\s*')  # unquoted: as FP/JSON above (a sign: SD's numbers)
SD_NAME = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*$")
SD_NUMBER = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$")


def _entries(body: str) -> list[str]:
    """The pattern's comma-separated entries (commas inside quotes or %regex% do not split)."""
    entries, current, quote = [], [], None
    for c in body:
        if quote:
            current.append(c)
            if c == quote:
                quote = None
        elif c in '"%':
            quote = c
            current.append(c)
        elif c == ",":
            entries.append("".join(current))
            current = []
        else:
            current.append(c)
    if quote:
        raise FilterPatternError("an unterminated quote or regex")
    entries.append("".join(current))
    return [e.strip() for e in entries]


def line_fields(message: str) -> list[str]:
    """SD: fields split on spaces; `[...]` or `"..."` is one field (its text without the quotes)."""
    fields, position = [], 0
    text = message.strip()
    while position < len(text):
        if text[position] == " ":
            position += 1
            continue
        closer = {"[": "]", '"': '"'}.get(text[position])
        if closer:
            end = text.find(closer, position + 1)
            end = len(text) if end < 0 else end
            fields.append(text[position + 1:end] if closer == '"' else text[position:end + 1])
            position = end + 1
        else:
            end = text.find(" ", position)
            end = len(text) if end < 0 else end
            fields.append(text[position:end])
            position = end
    return fields


@dataclass
class SpaceCondition:
    op: str
    kind: str  # string | regex | number
    value: Any

    def holds(self, text: str) -> bool:
        if self.kind == "number":
            if not SD_NUMBER.match(text):
                return False
            number = float(text)
            return {"=": number == self.value, "!=": number != self.value, "<": number < self.value,
                    ">": number > self.value, "<=": number <= self.value, ">=": number >= self.value}[self.op]
        hit = self.value.search(text) is not None if self.kind == "regex" else _wildcard(self.value).fullmatch(text) is not None
        return hit if self.op == "=" else not hit


class SpacePattern:
    def __init__(self, entries: list, regexes: int):
        self.entries, self.regexes = entries, regexes  # entries: "..." or (name, joiner, [conditions])

    @classmethod
    def parse_body(cls, body: str) -> "SpacePattern":
        entries, regexes, names = [], 0, set()
        texts = _entries(body)
        for position, text in enumerate(texts):
            if text in ("...", "\u2026"):
                if "..." in entries:
                    raise FilterPatternError("two ellipses (SD shows one)")
                entries.append("...")
                continue
            plain = SD_NAME.match(text)
            if not text:
                # an unnamed field: SD's `[..., request=*.html*, status_code=4*,]` extracts the line's
                # last field as `$7` after `$status_code`, so the trailing comma stands for one field;
                # no page shows an empty entry anywhere else
                if position != len(texts) - 1 or position == 0:
                    raise FilterPatternError("an empty entry other than a trailing comma (SD shows only that one)")
                entries.append((None, None, []))
                continue
            if plain:
                name, joiner, conditions = plain.group(1), None, []
            else:
                joiners = set(re.findall(r"&&|\|\|", re.sub(r'"(?:[^"\\]|\\.)*"|%[^%]*%', "", text)))
                if len(joiners) > 1:
                    raise FilterPatternError(f"&& and || mixed in one field ({text!r})")
                joiner = joiners.pop() if joiners else None
                parts = _split_joined(text, joiner)
                conditions, name = [], None
                for part in parts:
                    match = SD_CONDITION.fullmatch(part)
                    if not match:
                        raise FilterPatternError(f"cannot read the field condition {part!r}")
                    if name not in (None, match.group("name")):
                        raise FilterPatternError(f"a condition on another field inside {text!r}")
                    name = match.group("name")
                    op, value = match.group("op"), match.group("value")
                    if value.startswith("%"):
                        if op != "=":
                            raise FilterPatternError("a regex compared with != (undocumented)")
                        regexes += 1
                        conditions.append(SpaceCondition(op, "regex", _check_regex(value[1:-1])))
                    elif SD_NUMBER.match(value):
                        conditions.append(SpaceCondition(op, "number", float(value)))
                    elif value[0] in "+-":
                        raise FilterPatternError(f"a signed value that is no number in {text!r}")
                    elif op in ("=", "!="):
                        conditions.append(SpaceCondition(op, "string", value[1:-1] if value.startswith('"') else value))
                    else:
                        raise FilterPatternError(f"{op} takes a number (SD)")
            if name in names:
                raise FilterPatternError(f"the field name {name!r} twice")
            names.add(name)
            entries.append((name, joiner, conditions))
        if regexes > MAX_REGEXES_PER_PATTERN:
            raise RejectedPattern(f"{regexes} regular expressions in one pattern, more than {MAX_REGEXES_PER_PATTERN}")
        return cls(entries, regexes)

    def matches(self, message: str) -> bool:
        fields = line_fields(message)
        if "..." in self.entries:
            cut = self.entries.index("...")
            before, after = self.entries[:cut], self.entries[cut + 1:]
            if len(fields) < len(before) + len(after):
                return False
            pairs = list(zip(before, fields)) + list(zip(after, fields[len(fields) - len(after):] if after else []))
        else:
            if len(fields) != len(self.entries):
                return False
            pairs = list(zip(self.entries, fields))
        for (name, joiner, conditions), text in pairs:
            if conditions:
                results = (c.holds(text) for c in conditions)
                if not (any(results) if joiner == "||" else all(results)):
                    return False
        return True


def _split_joined(text: str, joiner: str | None) -> list[str]:
    if joiner is None:
        return [text]
    parts, current, quote, i = [], [], None, 0
    while i < len(text):
        c = text[i]
        if quote:
            current.append(c)
            quote = None if c == quote else quote
        elif c in '"%':
            quote = c
            current.append(c)
        elif text.startswith(joiner, i):
            parts.append("".join(current))
            current = []
            i += len(joiner)
            continue
        else:
            current.append(c)
        i += 1
    parts.append("".join(current))
    return parts
