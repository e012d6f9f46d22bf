"""Regular expressions the backend builds from Sigma values, for Logs Insights' `=~ /.../`.

A value is first a small sequence of items (literal characters, `*`, `?`, raw regex pieces), then
rendered either against a field's own value (`plain`) or against the JSON text of a string inside
`@message` (`json`, used for array members, which Logs Insights only exposes by index).

Only constructs common to RE2 and Java regular expressions are emitted: `(?s)`/`(?i)` at the start,
`(?:...)`, character classes, `*`, `?`, `^`, `\\z` (absolute end; `$` differs between engines before
a final newline) and `\\x{HHHH}` for every character outside printable ASCII. Case-insensitivity
of non-ASCII letters is spelt out as `[xX]` classes, because `(?i)` alone is ASCII-only in Java.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from sigma.exceptions import SigmaFeatureNotSupportedByBackendError
from sigma.types import SigmaString, SpecialChars

PRINTABLE = {chr(c) for c in range(0x20, 0x7F)}
REGEX_META = set("\\^$.|?*+()[]{}/")  # `/` ends the regex literal in Logs Insights
JSON_SHORT_ESCAPES = {'"': '"', "\\": "\\", "\b": "b", "\f": "f", "\n": "n", "\r": "r", "\t": "t"}

# A JSON string's text, one character at a time (a literal, a short escape or \uXXXX, surrogate pairs).
JSON_CHAR = r'(?:[^"\\]|\\[^u]|\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}|\\u[0-9a-fA-F]{4})'
JSON_NON_DOT_CHAR = JSON_CHAR.replace(r'[^"\\]', r'[^"\\.]', 1)
JSON_STRING = r'"(?:[^"\\]|\\.)*"'
WS = r"\s*"


@dataclass(frozen=True)
class Lit:
    char: str


@dataclass(frozen=True)
class Raw:
    """A regex piece valid in both renderings (digits and dots only), never ending in a dot."""

    regex: str


ANY, STAR, NON_DOT, OPT_DOT = "any", "star", "non_dot", "opt_dot"


def items_of(value: SigmaString) -> list:
    items: list = []
    for part in value.s:
        if isinstance(part, str):
            items.extend(Lit(c) for c in part)
        elif part is SpecialChars.WILDCARD_MULTI:
            if not items or items[-1] != STAR:
                items.append(STAR)
        elif part is SpecialChars.WILDCARD_SINGLE:
            items.append(ANY)
        else:
            raise SigmaFeatureNotSupportedByBackendError(
                f"CloudWatch Logs Insights: the placeholder %{getattr(part, 'name', part)}% (|expand) has no value; a pipeline must replace it"
            )
    return items


def literal_items(text: str) -> list:
    return [Lit(c) for c in text]


def matches_text(items: list, text: str, ci: bool) -> bool:
    """Whether the value `items` matches the whole of `text` (Sigma's meaning, on Python's regex)."""
    regex = "".join(
        ".*" if i == STAR else "." if i == ANY else "[^.]" if i == NON_DOT else r"\.?" if i == OPT_DOT
        else re.escape(i.char) if isinstance(i, Lit) else i.regex
        for i in items
    )
    return re.fullmatch(regex, text, re.S | (re.I if ci else 0)) is not None


def _matches_single_dot(items: list, ci: bool) -> bool:
    return matches_text(items, ".", ci)


def _not_ending_in_dot(items: list) -> list[list]:
    """Alternatives matching exactly the strings of `items` that do not end with a dot."""
    if not items:
        return [[]]
    last = items[-1]
    if isinstance(last, Lit):
        return [] if last.char == "." else [items]
    if isinstance(last, Raw):
        return [items]
    if last == ANY:
        return [items[:-1] + [NON_DOT]]
    return [items[:-1] + [STAR, NON_DOT]] + _not_ending_in_dot(items[:-1])  # STAR


def one_trailing_dot_dropped(field: str) -> str:
    """The reference engine's normalisation (one trailing dot dropped from a value longer than one
    character) as a Logs Insights expression, for a regex that cannot be intersected like a value.
    Not rtrim(f, "."): it drops every trailing dot (AWS, "String functions": rtrim removes the
    characters of trimChars from the right). substr counts from 0 (`substr("xyZfooxyZ", 3, 3)` is
    "foo", same page); greatest keeps the length in range on "" whichever branch of if() runs."""
    return f"if({field} =~ /(?s).\\.\\z/, substr({field}, 0, greatest(strlen({field}) - 1, 0)), {field})"


def without_trailing_dot(items: list, ci: bool) -> list[list]:
    """Alternatives over the RAW value r that hold exactly when normalise(r) matches `items`.

    normalise drops one trailing dot from values longer than one character (the reference engine's
    `strip_trailing_dot`). Exact: r = u + "." with u a non-empty match, or r is a match not ending in
    a dot, or r is "." when "." itself matches.
    """
    if all(i == STAR for i in items) and items:
        return [items]
    last = items[-1] if items else None
    if isinstance(last, (Lit, Raw)) and not (isinstance(last, Lit) and last.char == "."):
        return [items + [OPT_DOT]]  # common case, e.g. `evil\.com\.?`
    if last == STAR and len(items) > 1 and isinstance(items[-2], (Lit, Raw)) and items[-2] != Lit("."):
        return [items]  # prefix ending in a non-dot: stripping a dot never changes the answer
    alternatives = ([items + [Lit(".")]] if items else []) + _not_ending_in_dot(items)
    if _matches_single_dot(items, ci):
        alternatives.append([Lit(".")])
    return alternatives


# ------------------------------------------------------------------ rule regexes (|re)

# What a Sigma regex (Python `re`) may hold that Logs Insights' engine cannot read the same way: RE2
# (re2 wiki "Syntax") has no lookarounds, backreferences, atomic groups, possessive quantifiers or
# conditionals. `\Z` (Python: the very end) is written `\z`.
_UNPORTABLE_GROUPS = (("?=", "a lookahead"), ("?!", "a lookahead"), ("?<=", "a lookbehind"), ("?<!", "a lookbehind"),
                      ("?>", "an atomic group"), ("?(", "a conditional group"), ("?P=", "a named backreference"))


def unportable_construct(regex: str) -> str | None:
    """The first construct of a rule's regex that Logs Insights cannot run, or None (escapes and
    character classes read as units)."""
    i, in_class, quantified = 0, False, False
    while i < len(regex):
        c = regex[i]
        if c == "\\":
            nxt = regex[i + 1:i + 2]
            if not in_class and (nxt.isdigit() and nxt != "0" or regex[i + 1:i + 3] == "k<"):
                return "a backreference"
            i, quantified = i + 2, False
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
            i += 2 if regex[i + 1:i + 2] == "]" else 3 if regex[i + 1:i + 3] == "^]" else 1
            quantified = False
            continue
        elif c == "(":
            found = next((name for opener, name in _UNPORTABLE_GROUPS if regex.startswith(opener, i + 1)), None)
            if found:
                return found
        elif c == "+" and quantified:
            return "a possessive quantifier"
        quantified = not in_class and c in "*+?}" and regex[i - 1:i] != "(" and not quantified
        i += 1
    return None


# ------------------------------------------------------------------ plain rendering


def hex_escape(c: str) -> str:
    return "\\x{%X}" % ord(c)


def plain_char(c: str, ci: bool) -> str:
    if ci and not c.isascii() and c.lower() != c.upper():
        variants = sorted({c, c.lower(), c.upper()} - {""}, key=ord)
        variants = [v for v in variants if len(v) == 1]
        if len(variants) > 1:
            return "[" + "".join(hex_escape(v) for v in variants) + "]"
    if c not in PRINTABLE:
        return hex_escape(c)
    return "\\" + c if c in REGEX_META else c


def render_plain(items: list, ci: bool) -> str:
    out = []
    for i in items:
        if isinstance(i, Lit):
            out.append(plain_char(i.char, ci))
        elif isinstance(i, Raw):
            out.append(i.regex)
        elif i == STAR:
            out.append(".*")
        elif i == ANY:
            out.append(".")
        elif i == NON_DOT:
            out.append("[^.]")
        elif i == OPT_DOT:
            out.append("\\.?")
    return "".join(out)


def plain_regex(alternatives: list[list], ci: bool, anchored: bool = True) -> str:
    """`(?s)` (and `(?i)`) + the anchored alternation, ready to sit between slashes."""
    body = union(alternatives, ci, render_plain)
    if anchored:
        body = f"^{body}\\z"
    return ("(?is)" if ci else "(?s)") + body


def render_column(items: list, ci: bool) -> str:
    """Like render_plain, for one column of a space-separated line: wildcards never cross a space."""
    out = []
    for i in items:
        out.append({STAR: "[^ ]*", ANY: "[^ ]", NON_DOT: "[^ .]"}.get(i) if isinstance(i, str) and i != OPT_DOT else render_plain([i], ci))
    return "".join(out)


# What a JSON number or Boolean is written with (never `n`, so no keyword reaches `null`, which the
# engine does not read as a value).
SCALAR_CHARS = set("0123456789+-.eEtrufalsTRUFALS")
SCALAR_CLASS = "[-+.0-9eEtrufalsTRUFALS]"


def render_scalar(items: list, ci: bool) -> str | None:
    """A keyword as an unquoted JSON number/Boolean token, or None when it could only match strings."""
    if not items or any(isinstance(i, Lit) and i.char not in SCALAR_CHARS for i in items) or any(isinstance(i, Raw) for i in items):
        return None
    return "".join(SCALAR_CLASS + "*" if i == STAR else SCALAR_CLASS if i == ANY else render_plain([i], ci) for i in items)


def column_positions(positions: list[int]) -> str:
    """A regex for "this many columns before": runs of positions as `(?:[^ ]+ ){a,b}`."""
    runs: list[list[int]] = []
    for k in sorted(positions):
        if runs and runs[-1][1] == k - 1:
            runs[-1][1] = k
        else:
            runs.append([k, k])
    pieces = ["" if b == 0 else f"(?:[^ ]+ ){{{a}}}" if a == b else f"(?:[^ ]+ ){{{a},{b}}}" for a, b in runs]
    return pieces[0] if len(pieces) == 1 else "(?:" + "|".join(pieces) + ")"


# ------------------------------------------------------------------ factored alternation


FACTOR_ABOVE = 400  # characters of plain alternation kept as written (short lists stay readable)


def union(alternatives: list[list], ci: bool, render, factor: bool | None = None) -> str:
    """One regex for "any of the alternatives", factored: `xA|xB` -> `x(?:A|B)`, `Ax|Bx` -> `(?:A|B)x`.

    Concatenation distributes over alternation, so every step keeps the language (a property test
    checks it against the plain alternation). At each level the sequences are grouped by their last
    item or by their first, whichever gives fewer groups: value lists share suffixes (`.com`, the
    optional trailing dot) and prefixes (`pool.`). With several alternatives and `ci`, ASCII letters
    are folded to lower case first (the plain regex carries `(?i)`, the JSON rendering spells both
    cases), so `Evil.com` and `evil.COM` share their items. The result is safe to concatenate: one
    sequence, or a group. A list whose plain alternation is at most FACTOR_ABOVE characters stays as
    written (readable), unless `factor` says otherwise.
    """
    sequences = list(dict.fromkeys(tuple(a) for a in alternatives))
    plain = "|".join(render(list(a), ci) for a in sequences)
    if factor is False or (factor is None and len(plain) <= FACTOR_ABOVE):
        return plain if len(sequences) == 1 else f"(?:{plain})"
    if len(alternatives) > 1 and ci:
        alternatives = [[Lit(i.char.lower()) if isinstance(i, Lit) and i.char.isascii() else i for i in a] for a in alternatives]
    sequences = list(dict.fromkeys(tuple(a) for a in alternatives))
    return _union(sequences, ci, render)


def _union(sequences: list[tuple], ci: bool, render) -> str:
    if len(sequences) == 1:
        return render(list(sequences[0]), ci)
    optional = () in sequences
    by_last: dict = {}
    by_first: dict = {}
    for s in sequences:
        if s:
            by_last.setdefault(s[-1], []).append(s[:-1])
            by_first.setdefault(s[0], []).append(s[1:])
    if len(by_last) <= len(by_first):
        parts = [_union(heads, ci, render) + render([last], ci) for last, heads in by_last.items()]
    else:
        parts = [render([first], ci) + _union(tails, ci, render) for first, tails in by_first.items()]
    if len(parts) == 1 and not optional:
        return parts[0]
    return "(?:" + "|".join(parts) + ")" + ("?" if optional else "")


# ------------------------------------------------------------------ JSON rendering


def _hex_class(digit: str) -> str:
    return f"[{digit.lower()}{digit.upper()}]" if digit.isalpha() else digit


def _unicode_escapes(c: str) -> list[str]:
    units = c.encode("utf-16-be")
    return ["".join("\\\\u" + "".join(_hex_class(d) for d in units[i:i + 2].hex()) for i in range(0, len(units), 2))]


def json_char(c: str, ci: bool) -> str:
    """Every way a JSON writer may spell character `c` inside a string (see README: encodings)."""
    variants = {c}
    if ci and c.lower() != c.upper():
        variants |= {v for v in (c.lower(), c.upper()) if len(v) == 1}
    spellings: list[str] = []
    for v in sorted(variants, key=ord):
        if v in JSON_SHORT_ESCAPES:
            spellings.append("\\\\" + ("\\" + JSON_SHORT_ESCAPES[v] if JSON_SHORT_ESCAPES[v] in '"\\' else JSON_SHORT_ESCAPES[v]))
            if v not in '"\\':
                spellings.extend(_unicode_escapes(v))
        elif ord(v) < 0x20:
            spellings.extend(_unicode_escapes(v))
        elif v == "/":
            spellings += ["\\/", "\\\\\\/"]
        elif v in PRINTABLE:
            spellings.append("\\" + v if v in REGEX_META else v)
        else:
            spellings += [hex_escape(v)] + _unicode_escapes(v)
    if len(spellings) == 1:
        return spellings[0]
    if all(len(s) == 1 for s in spellings):
        return "[" + "".join(spellings) + "]"
    return "(?:" + "|".join(spellings) + ")"


def render_json(items: list, ci: bool) -> str:
    out = []
    for i in items:
        if isinstance(i, Lit):
            out.append(json_char(i.char, ci))
        elif isinstance(i, Raw):
            out.append(i.regex)
        elif i == STAR:
            out.append(JSON_CHAR + "*")
        elif i == ANY:
            out.append(JSON_CHAR)
        elif i == NON_DOT:
            out.append(JSON_NON_DOT_CHAR)
        elif i == OPT_DOT:
            out.append("\\.?")
    return "".join(out)


def render_json_ascii_caseless(items: list, ci: bool) -> str:
    """As render_json, for use inside `(?i:...)`: ASCII letters as themselves (the group folds them,
    in RE2 and Java alike), every other character spelt as render_json does (Java's `(?i)` is
    ASCII-only, so non-ASCII letters keep their spelled-out cases)."""
    return "".join(
        i.char if isinstance(i, Lit) and i.char.isascii() and i.char.isalpha() else render_json([i], ci)
        for i in items
    )


def skip(depth: int) -> str:
    """Any run of complete JSON values/members nested at most `depth` levels (never an unmatched `}`/`]`)."""
    inner = rf'(?:[^"{{}}\[\]]|{JSON_STRING})*'
    for _ in range(depth):
        inner = rf'(?:[^"{{}}\[\]]|{JSON_STRING}|\{{{inner}\}}|\[{inner}\])*'
    return inner


def key(name: str) -> str:
    return '"' + "".join(json_char(c, False) for c in name) + '"' + WS + ":" + WS


def any_string_value(items: list, ci: bool, except_fields: list[str]) -> str:
    """Some string value in a JSON record matches: an array element or a member's value, except the
    members named last in `except_fields` (fields the engine reads without their trailing dot)."""
    keys = sorted({f.rsplit(".", 1)[-1] for f in except_fields})
    member = key_other_than(keys) if keys else ":" + WS
    return "(?s)(?:[\\[,]" + WS + "|" + member + ')"' + render_json(items, ci) + '"' + WS + "[,}\\]]"


def key_other_than(names: list[str]) -> str:
    """`"K":` for every JSON key K that is none of `names` (plain word characters), written out over
    the names' trie because RE2 has no look-ahead: a key either stops short of every name, or leaves
    it at some character (then anything up to its closing quote), or runs on past a whole name."""
    if not all(re.fullmatch(r"\w+", n, flags=re.ASCII) for n in names):
        raise ValueError(f"key names must be plain word characters: {names}")
    trie: dict = {}
    for name in names:
        node = trie
        for c in name:
            node = node.setdefault(c, {})
        node[""] = {}  # a name ends here
    rest = r'(?:[^"\\]|\\.)*"'

    def other(node: dict) -> str:
        chars = sorted(c for c in node if c)
        branches = [] if "" in node else ['"']  # ending here is a shorter key, unless a name ends here
        branches.append(r'(?:[^"\\' + "".join(chars) + r']|\\.)' + rest)
        branches += [c + other(node[c]) for c in chars]
        return "(?:" + "|".join(branches) + ")"

    return '"' + other(trie) + WS + ":" + WS


def array_member_regex(array_path: str, member_path: str, element_depth: int, value_regex: str | None) -> str:
    """A regex over @message true when SOME element of the array has the member with a matching value.

    Anchored at the array's key (and its parent's key when it has one), walking only balanced JSON so
    the match never leaves the array or the element. `value_regex=None` tests presence only.
    """
    steps = array_path.split(".")
    regex = ""
    if len(steps) > 1:
        regex += key(steps[-2]) + r"\{" + skip(0)
    regex += key(steps[-1]) + r"\[" + skip(element_depth + 1) + r"\{"
    members = member_path.split(".")
    for n, step in enumerate(members[:-1]):
        regex += skip(element_depth - n) + key(step) + r"\{"
    regex += skip(max(element_depth - len(members) + 1, 0)) + key(members[-1])
    if value_regex is not None:
        regex += '"' + value_regex + '"'
    return regex


# ------------------------------------------------------------------ CIDR


OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"


def ipv4_network_items(network: ipaddress.IPv4Network) -> list:
    """Items matching exactly the dotted-quad spellings (no leading zeros) of addresses in `network`."""
    octets = network.network_address.packed
    bits = network.prefixlen
    items: list = []
    for n in range(4):
        if n:
            items.append(Lit("."))
        fixed = min(max(bits - 8 * n, 0), 8)
        if fixed == 8:
            items.extend(literal_items(str(octets[n])))
        elif fixed == 0:
            items.append(Raw(OCTET))
        else:
            low = octets[n] & (0xFF << (8 - fixed)) & 0xFF
            high = low + (1 << (8 - fixed)) - 1
            items.append(Raw("(?:" + "|".join(str(v) for v in range(high, low - 1, -1)) + ")"))
    return items


# IPv6: every textual spelling of every address in a network (RFC 4291 section 2.2), as Python's
# `ipaddress` (the reference engine) and AWS's `isIpv6InSubnet` read them: 8 groups of 1-4 hex digits
# in either case (leading zeros optional), at most one `::` standing for one or more zero groups, and
# optionally the last two groups written as a dotted quad. The language is finite, so one regex is
# exact; it is built per group from the network's fixed bits, so its size does not depend on them.

HEX_DIGIT = "[0-9a-fA-F]"


def _nibble_class(low: int, count: int) -> str:
    digits = [format(v, "x") for v in range(low, low + count)]
    if count == 16:
        return HEX_DIGIT
    chars = "".join(d + d.upper() if d.isalpha() else d for d in digits)
    return chars if len(chars) == 1 else f"[{chars}]"


def _hextet(value: int, fixed_bits: int) -> tuple[str, bool]:
    """(regex of every spelling of a group whose top `fixed_bits` bits equal those of `value`, can it be 0)."""
    if fixed_bits == 0:
        return HEX_DIGIT + "{1,4}", True
    low = value & (0xFFFF << (16 - fixed_bits)) & 0xFFFF
    if fixed_bits == 16:
        digits = format(low, "x")
        spelt = "".join(_nibble_class(int(d, 16), 1) for d in digits)
        zeros = 4 - len(digits)
        if low == 0:
            return "0{1,4}", True
        return {0: "", 1: "0?"}.get(zeros, f"0{{0,{zeros}}}") + spelt, False
    nibbles = []
    for n in range(4):
        bits = min(max(fixed_bits - 4 * n, 0), 4)
        nib_low = (low >> (12 - 4 * n)) & 0xF
        nibbles.append((_nibble_class(nib_low, 1 << (4 - bits)), nib_low == 0))
    # a spelling drops leading nibbles only while they may be zero: ((n0)?n1)?n2 ...
    regex, droppable = nibbles[0][0], nibbles[0][1]
    for cls, may_be_zero in nibbles[1:]:
        regex = f"(?:{regex})?{cls}" if droppable else regex + cls
        droppable = droppable and may_be_zero
    return regex, low == 0


def _groups(groups: list[str], zeroable: list[bool], trailing_colon: bool) -> str:
    """Spellings of consecutive groups: all written, or one `::` for >= 1 zero groups. With
    `trailing_colon`, each spelling is followed by what may precede a dotted quad (`:` or the `::`)."""
    n, end = len(groups), (":" if trailing_colon else "")
    alternatives = [_join(groups) + end]
    for hi in range(n):  # groups written before the `::`
        if not zeroable[hi]:
            continue
        stop = next((i for i in range(hi, n) if not zeroable[i]), n)
        lo_min, lo_max = n - stop, n - 1 - hi  # groups written after the `::`
        suffix = ""
        if lo_max >= 1:
            required = max(lo_min, 1)
            suffix = _optional_leading(groups[n - lo_max:n - required]) + _join(groups[n - required:]) + end
            if lo_min == 0:
                suffix = f"(?:{suffix})?"
        alternatives.append(_join(groups[:hi]) + "::" + suffix)
    return "(?:" + "|".join(alternatives) + ")"


def _join(groups: list[str]) -> str:
    """`g:g:g` with runs of one group regex written once: `g(?::g){2}`."""
    pieces, i = [], 0
    while i < len(groups):
        run = 1
        while i + run < len(groups) and groups[i + run] == groups[i]:
            run += 1
        pieces.append(f"{groups[i]}(?::{groups[i]}){{{run - 1}}}" if run > 2 else ":".join([groups[i]] * run))
        i += run
    return ":".join(pieces)


def _optional_leading(groups: list[str]) -> str:
    """Any trailing part of `g1:g2:...:` (each group followed by `:`), the empty one included."""
    if not groups:
        return ""
    if len(set(groups)) == 1:
        return f"(?:{groups[0]}:){{0,{len(groups)}}}" if len(groups) > 1 else f"(?:{groups[0]}:)?"
    regex = ""
    for g in groups:
        regex = f"(?:{regex}{g}:)?"
    return regex


def ipv6_network_regex(network: ipaddress.IPv6Network) -> str:
    """A regex (plain and JSON text alike: hex digits, `:`, `.` only) matching exactly the spellings of
    the addresses in `network`."""
    value, bits = int(network.network_address), network.prefixlen
    pairs = [_hextet((value >> (16 * (7 - g))) & 0xFFFF, min(max(bits - 16 * g, 0), 16)) for g in range(8)]
    groups, zeroable = [p[0] for p in pairs], [p[1] for p in pairs]
    tail = ipaddress.IPv4Network((value & 0xFFFFFFFF, max(bits - 96, 0)), strict=False)
    dotted = render_plain(ipv4_network_items(tail), False)
    return f"(?:{_groups(groups, zeroable, False)}|{_groups(groups[:6], zeroable[:6], True)}{dotted})"


def escape_regex_literal(regex: str) -> str:
    """A rule's regex inside `/.../`: unescaped `/` escaped, characters outside printable ASCII as
    \\x{...} (the query stays one clean line), escape pairs kept as they are."""
    out, i = [], 0
    while i < len(regex):
        c = regex[i]
        if c == "\\" and i + 1 < len(regex):
            nxt = regex[i + 1]
            nxt = "z" if nxt == "Z" else nxt  # Python's \Z is the very end: RE2's and Java's \z
            out.append("\\" + nxt if nxt in PRINTABLE else hex_escape(nxt))
            i += 2
            continue
        out.append("\\/" if c == "/" else c if c in PRINTABLE else hex_escape(c))
        i += 1
    return "".join(out)
