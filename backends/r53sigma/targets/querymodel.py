"""The mechanics the query-language models share: a token, a regex lexer, a token cursor and the
base of their syntax errors.

Only mechanics live here. What a value, a case, a wildcard, a null or a multivalue field means
stays in each model (cloudwatch.insights_model, elasticsearch.esql_model, splunk.spl_model), each
cited from its vendor's documentation: that independence is what makes a model a proof. Every
model offers the same entry point, ``parse(text)`` returning a query with ``.run(rows)``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass


class QuerySyntaxError(ValueError):
    """The text is not a query of the modelled subset (each model subclasses this)."""


@dataclass
class Token:
    kind: str  # the lexer pattern's group name
    text: str


def tokenize(pattern: re.Pattern, text: str, error: type[Exception], what: str,
             skip: tuple[str, ...] = ("ws",), reject: dict[str, str] | None = None) -> list[Token]:
    """``text`` as tokens of ``pattern``'s named groups, dropping the ``skip`` kinds; ``error`` names
    the first place no group matches, or the first token of a ``reject`` kind (with its message)."""
    out, pos = [], 0
    while pos < len(text):
        match = pattern.match(text, pos)
        if not match:
            raise error(f"cannot read {what} at {text[pos:pos + 20]!r}")
        if reject and match.lastgroup in reject:
            raise error(f"{reject[match.lastgroup]} at {text[pos:pos + 30]!r}")
        pos = match.end()
        if match.lastgroup not in skip:
            out.append(Token(match.lastgroup, match.group()))
    return out


class Cursor:
    """A position in a token list: ``peek``, ``take`` (``error`` at the end), ``done``."""

    error: type[Exception] = QuerySyntaxError
    end_message = "unexpected end of query"

    def __init__(self, tokens: list[Token]):
        self.tokens, self.pos = tokens, 0

    def peek(self, offset: int = 0) -> Token | None:
        index = self.pos + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise self.error(self.end_message)
        self.pos += 1
        return token

    def done(self) -> bool:
        return self.pos >= len(self.tokens)
