"""pySigma's Lucene backend with every negation in its own group.

In the Lucene query syntax Elasticsearch's query_string parses, NOT is a clause modifier, not an
operator: `a OR NOT b` is one boolean query of SHOULD a and MUST_NOT b, i.e. "a and not b", and
`NOT NOT b` is a syntax error (a clause takes one modifier). A group holding only a negation,
`a OR (NOT b)`, is a boolean query of its own, which Elasticsearch completes with match-all
("Boolean operators", query_string docs:
https://www.elastic.co/guide/en/elasticsearch/reference/current/query-dsl-query-string-query.html#_boolean_operators),
so it reads as Sigma's `a or not b`.
"""
from __future__ import annotations

from sigma.backends.elasticsearch import LuceneBackend as StockLuceneBackend


class LuceneBackend(StockLuceneBackend):
    field_not_exists_expression = "(NOT _exists_:{field})"

    def convert_condition_not(self, cond, state):
        converted = super().convert_condition_not(cond, state)
        if isinstance(converted, str) and converted.startswith(self.not_token + self.token_separator):
            return self.group_expression.format(expr=converted)
        return converted
