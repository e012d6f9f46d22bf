"""ES|QL postprocessing for the route53_elasticsearch pipeline (only when the backend is pySigma's ES|QL).

pySigma's ESQLBackend writes every value with its generic escaping (a backslash before `*`, `?`, `\\`
and `"`), which is outside the ES|QL grammar and wrong inside LIKE; and its correlations count an
event for the first matching rule only and let a null group-by value form a group. The queries it
writes are re-read here with the backend's own conventions and restated as ES|QL means them:

- string literals (ES|QL grammar, EsqlBaseLexer.g4: `"` followed by unescaped characters or the escapes
  `\\t \\n \\r \\" \\\\`, https://www.elastic.co/guide/en/elasticsearch/reference/current/esql-syntax.html):
  every literal is re-encoded with exactly those escapes;
- LIKE patterns (https://www.elastic.co/guide/en/elasticsearch/reference/current/esql-functions-operators.html#esql-like):
  `*` and `?` are wildcards and a backslash escapes the next character, so a literal `*`, `?` or `\\` is
  written `\\*`, `\\?`, `\\\\` in the pattern, each backslash doubled again in the string literal;
- a correlation's group-by fields must not be null (`STATS ... BY` makes null a group of its own; Sigma,
  the reference engine and the other targets leave such events out);
- a temporal correlation flags each event once per rule it matches (`rule_N = case(query_N, 1, 0)`) and
  counts the rules seen per group (`max` of each flag, summed), instead of one `case(...)` that names
  only the first matching rule.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from sigma.correlations import SigmaCorrelationRule, SigmaCorrelationType
from sigma.exceptions import SigmaConversionError
from sigma.processing.postprocessing import QueryPostprocessingTransformation

STRING = re.compile(r'"((?:[^"\\]|\\.)*)"', re.DOTALL)  # a literal as the backend writes it (it escapes every `"`)
LIKE_BEFORE = re.compile(r"\blike\s*$", re.IGNORECASE)
ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
TYPING = "| eval event_type=case("
TEMPORAL_COUNT = "event_type_count=count_distinct(event_type)"


def is_esql(transformation) -> bool:
    pipeline = transformation._pipeline
    return pipeline is not None and "ES|QL" in str(pipeline.vars.get("backend", ""))


def _decode(body: str) -> list[tuple[str, bool]]:
    """The backend's literal as (character, escaped?) pairs: a backslash makes the next character literal."""
    out, i = [], 0
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body):
            out.append((body[i + 1], True))
            i += 2
        else:
            out.append((body[i], False))
            i += 1
    return out


def string_literal(text: str) -> str:
    """``text`` as an ES|QL string literal, with only the escapes the grammar has."""
    return '"' + "".join(ESCAPES.get(c, c) for c in text) + '"'


def like_pattern(characters: list[tuple[str, bool]]) -> str:
    """A LIKE pattern: unescaped `*`/`?` stay wildcards, literal `*`, `?` and `\\` are escaped for LIKE."""
    return "".join("\\" + c if escaped and c in "*?\\" or not escaped and c == "\\" else c for c, escaped in characters)


def restate_strings(query: str) -> str:
    """Every literal of a query as the backend wrote it, restated for ES|QL (apply once: not idempotent)."""
    def literal(match: re.Match) -> str:
        characters = _decode(match.group(1))
        before = query[max(0, match.start() - 16):match.start()]
        if LIKE_BEFORE.search(before):
            return string_literal(like_pattern(characters))
        return string_literal("".join(c for c, _ in characters))

    return STRING.sub(literal, query)


def _field(name: str) -> str:
    return name if re.fullmatch(r"[\w.]+", name) else "`" + name.replace("`", "``") + "`"


@dataclass
class ESQLQueries(QueryPostprocessingTransformation):
    """Restate string literals (all ES|QL queries) and correlations (see the module docstring)."""

    def apply(self, rule, query):
        super().apply(rule, query)
        if not is_esql(self) or not isinstance(query, str):
            return query
        query = restate_strings(query)  # exactly once per literal: restating is not idempotent
        if isinstance(rule, SigmaCorrelationRule):
            query = self.correlation(rule, query)
        return query

    @staticmethod
    def correlation(rule: SigmaCorrelationRule, query: str) -> str:
        lines = query.split("\n")  # ESQLBackend: "{search}\n[{typing}\n]{aggregate}\n{condition}"
        notes = [line for line in lines if line.startswith("//")]  # a backend's comment lines stay last
        lines = [line for line in lines if not line.startswith("//")]
        if rule.type == SigmaCorrelationType.TEMPORAL:
            if len(lines) != 4 or not lines[1].startswith(TYPING) or TEMPORAL_COUNT not in lines[2]:
                raise SigmaConversionError(rule, rule.source, "unexpected ES|QL temporal correlation layout from the backend")
            flags = []
            for number, reference in enumerate(rule.rules, 1):
                queries = reference.rule.get_conversion_result()
                condition = " or ".join(f"({q})" for q in queries) if len(queries) > 1 else queries[0]
                condition = restate_strings(condition)  # the backend's raw condition, not yet restated
                flags.append((f"rule_{number}", condition))
            lines[1] = "| eval " + ", ".join(f"{name}=case({condition}, 1, 0)" for name, condition in flags)
            seen = ", ".join(f"{name}=max({name})" for name, _ in flags)
            lines[2] = lines[2].replace(TEMPORAL_COUNT, seen) + " | eval event_type_count=" + " + ".join(n for n, _ in flags)
        if rule.group_by:
            lines.insert(1, "| where " + " and ".join(f"{_field(g)} is not null" for g in rule.group_by))
        return "\n".join(lines + notes)
