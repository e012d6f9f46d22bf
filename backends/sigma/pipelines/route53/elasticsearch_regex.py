"""Sigma `|re` (a search anywhere in the value, Python/PCRE syntax) as a Lucene regular expression.

Lucene regexes (Elasticsearch `regexp`, query_string `/.../`, ES|QL `RLIKE`) always match the whole
value and know no anchors, look-arounds, back-references or lazy/possessive quantifiers
(Elasticsearch, "Regular expression syntax": https://www.elastic.co/guide/en/elasticsearch/reference/current/regexp-syntax.html).
The pattern is read with Python's own parser (``re._parser``), so its structure is known, not guessed:

- each alternative that starts with `^` is anchored at the start, every other one gets `.*` in front;
  likewise `$` and `.*` at the end. Anchors are followed into leading/trailing groups and branches,
  so `(^|\\.)evil\\.net$` becomes `(evil\\.net)|.*(\\.evil\\.net)`;
- `\\d`, `\\w`, `\\s` become explicit ASCII classes; the `i` flag (global or scoped) becomes case pairs;
- every literal that is not an ASCII letter or digit (or `/`) is backslash-escaped, so Lucene's own operators
  (`@ & ~ # < > "` with the ALL flags Elasticsearch enables) are never read as operators;
- what Lucene cannot state (an anchor elsewhere, `\\b`, look-arounds, back-references, atomic
  groups, possessive quantifiers) raises ``NotExpressible`` with the reason.

Python's `$` also matches before a final newline and `.` does not match a newline; the values matched
here (DNS names, answers, CloudTrail strings) are single-line, where both readings agree.
"""
from __future__ import annotations

import re
from re import _constants as sre  # noqa: the parser's opcodes
from re import _parser

START_ANCHORS = (sre.AT_BEGINNING, sre.AT_BEGINNING_STRING)
END_ANCHORS = (sre.AT_END, sre.AT_END_STRING)
CATEGORIES = {  # ASCII readings of Python's classes (the matched values are ASCII DNS/CloudTrail text)
    sre.CATEGORY_DIGIT: ("0-9", False),
    sre.CATEGORY_NOT_DIGIT: ("0-9", True),
    sre.CATEGORY_WORD: ("0-9A-Za-z_", False),
    sre.CATEGORY_NOT_WORD: ("0-9A-Za-z_", True),
    sre.CATEGORY_SPACE: (" \t\n\r\f\v", False),
    sre.CATEGORY_NOT_SPACE: (" \t\n\r\f\v", True),
}
MAX_CASE_RANGE = 2048  # a case-insensitive range is expanded character by character up to this size


class NotExpressible(ValueError):
    """The regex uses something Lucene's regex language lacks."""


def to_lucene(pattern: str, ignorecase: bool = False) -> str:
    """A Lucene regex that matches a whole value exactly when ``pattern`` is found somewhere in it."""
    try:
        tree = _parser.parse(pattern, re.IGNORECASE if ignorecase else 0)
    except re.error as error:
        raise NotExpressible(f"invalid regular expression: {error}") from error
    icase = bool(tree.state.flags & re.IGNORECASE)
    branches = []
    for start_anchored, items in _split(list(tree.data), front=True):
        for end_anchored, body in _split(items, front=False):
            text = ("" if start_anchored else ".*") + "(" + _sequence(body, icase) + ")" + ("" if end_anchored else ".*")
            if text not in branches:
                branches.append(text)
    return "|".join(branches)


def _has_anchor(item) -> bool:
    op, av = item
    if op is sre.AT:
        return av in START_ANCHORS + END_ANCHORS
    if op is sre.BRANCH:
        return any(_has_anchor(i) for alternative in av[1] for i in alternative.data)
    if op is sre.SUBPATTERN:
        return any(_has_anchor(i) for i in av[3].data)
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
        return any(_has_anchor(i) for i in av[2].data)
    return False


def _split(items: list, front: bool) -> list[tuple[bool, list]]:
    """The sequence as alternatives (anchored at that side?, items without the anchor)."""
    if not items:
        return [(False, items)]
    edge = items[0] if front else items[-1]
    rest = items[1:] if front else items[:-1]
    op, av = edge
    if op is sre.AT and av in (START_ANCHORS if front else END_ANCHORS):
        return [(True, r) for _, r in _split(rest, front)]  # `^^a` is `^a`
    if not _has_anchor(edge):
        return [(False, items)]
    if op is sre.SUBPATTERN:
        _group, add_flags, del_flags, content = av
        if add_flags or del_flags:
            raise NotExpressible("an anchor inside a group with its own flags cannot be rewritten for Lucene")
        inner = list(content.data)
        return _split(inner + rest if front else rest + inner, front)
    if op is sre.BRANCH:
        out = []
        for alternative in av[1]:
            inner = list(alternative.data)
            out.extend(_split(inner + rest if front else rest + inner, front))
        return out
    return [(False, items)]  # an anchor inside a repetition: left for _sequence to refuse


def _sequence(items, icase: bool) -> str:
    return "".join(_item(op, av, icase) for op, av in items)


def _item(op, av, icase: bool) -> str:
    if op is sre.LITERAL:
        return _literal(chr(av), icase)
    if op is sre.NOT_LITERAL:
        return "[^" + "".join(_class_char(c) for c in _cases(chr(av), icase)) + "]"
    if op is sre.ANY:
        return "."
    if op is sre.IN:
        return _class(av, icase)
    if op is sre.SUBPATTERN:
        _group, add_flags, del_flags, content = av
        inner_icase = (icase or bool(add_flags & re.IGNORECASE)) and not del_flags & re.IGNORECASE
        return "(" + _sequence(content.data, inner_icase) + ")"
    if op is sre.BRANCH:
        return "(" + "|".join(_sequence(alternative.data, icase) for alternative in av[1]) + ")"
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT):  # lazy or greedy: the same values contain a match
        low, high, content = av
        inner = _sequence(content.data, icase)
        single = len(content.data) == 1 and content.data[0][0] in (sre.LITERAL, sre.NOT_LITERAL, sre.ANY, sre.IN)
        return (inner if single else "(" + inner + ")") + _quantifier(low, high)
    if op is sre.AT:
        if av in START_ANCHORS + END_ANCHORS:
            raise NotExpressible("an anchor that is not at the start or end of an alternative cannot be stated in Lucene")
        raise NotExpressible("word boundaries (\\b, \\B) do not exist in Lucene regular expressions")
    reasons = {
        sre.ASSERT: "look-ahead/look-behind", sre.ASSERT_NOT: "negative look-ahead/look-behind",
        sre.GROUPREF: "back-references", sre.GROUPREF_EXISTS: "conditional groups",
        sre.ATOMIC_GROUP: "atomic groups", sre.POSSESSIVE_REPEAT: "possessive quantifiers",
    }
    raise NotExpressible(f"{reasons.get(op, str(op).lower())} do not exist in Lucene regular expressions")


def _quantifier(low: int, high) -> str:
    if high is sre.MAXREPEAT:
        return {0: "*", 1: "+"}.get(low, "{%d,}" % low)
    if (low, high) == (0, 1):
        return "?"
    return "{%d}" % low if low == high else "{%d,%d}" % (low, high)


def _cases(char: str, icase: bool) -> list[str]:
    variants = [char]
    if icase:
        for other in (char.lower(), char.upper()):
            if len(other) == 1 and other not in variants:
                variants.append(other)
    return variants


def _literal(char: str, icase: bool) -> str:
    variants = _cases(char, icase)
    if len(variants) == 1:
        return _escape(char)
    return "[" + "".join(_class_char(c) for c in variants) + "]"


def _escape(char: str) -> str:
    # `/` is left to the backend, which escapes it for query_string's /.../ (escaping it here too would
    # end the regex); it is no operator in Lucene's regex language
    return char if char.isascii() and char.isalnum() or char == "/" else "\\" + char


def _class_char(char: str) -> str:
    return _escape(char)


def _class(items, icase: bool) -> str:
    negated = bool(items) and items[0][0] is sre.NEGATE
    members = items[1:] if negated else items
    parts: list[str] = []
    for op, av in members:
        if op is sre.LITERAL:
            parts.extend(_class_char(c) for c in _cases(chr(av), icase))
        elif op is sre.RANGE:
            low, high = av
            parts.append(_class_char(chr(low)) + "-" + _class_char(chr(high)))
            if icase:
                if high - low > MAX_CASE_RANGE:
                    raise NotExpressible("a case-insensitive character range this wide cannot be rewritten for Lucene")
                extra = sorted({v for c in range(low, high + 1) for v in _cases(chr(c), True)} - {chr(c) for c in range(low, high + 1)})
                parts.extend(_class_char(c) for c in extra)
        elif op is sre.CATEGORY:
            chars, category_negated = CATEGORIES.get(av, (None, None))
            if chars is None:
                raise NotExpressible(f"character class {av} has no Lucene equivalent")
            if category_negated:
                if len(members) != 1:
                    raise NotExpressible("a negated shorthand (\\D, \\W, \\S) combined with other members of a class cannot be stated in Lucene")
                negated = not negated
            parts.append("".join(c if c in "-" or c.isalnum() else _class_char(c) for c in chars))
        else:
            raise NotExpressible(f"class member {op} has no Lucene equivalent")
    return "[" + ("^" if negated else "") + "".join(parts) + "]"
