"""pySigma's Lucene backend with every negation in its own group.

In the Lucene query syntax Elasticsearch's query_string parses, NOT is a clause modifier, not an
operator: `a OR NOT b` is one boolean query of SHOULD a and MUST_NOT b, i.e. "a and not b", and
`NOT NOT b` is a syntax error (a clause takes one modifier). A group holding only a negation,
`a OR (NOT b)`, is a boolean query of its own, which Elasticsearch completes with match-all
("Boolean operators", query_string docs:
https://www.elastic.co/guide/en/elasticsearch/reference/current/query-dsl-query-string-query.html#_boolean_operators),
so it reads as Sigma's `a or not b`.

The threat-feed rule reads the field the Resolver pipeline's enrich lookup writes (ioc_enrich).
"""
from __future__ import annotations

import copy
import os

from sigma.backends.elasticsearch import LuceneBackend as StockLuceneBackend
from sigma.rule import SigmaDetection
from sigma.types import SigmaString

from r53sigma import ioc
from r53sigma.targets.elasticsearch import ioc_enrich

# "1": the threat-feed rule inlines the list given (R53SIGMA_IOC_DOMAINS / pipeline variables) as
# stock pySigma does, and is refused without one, instead of reading the enrich lookup's field (for a
# cluster without the enrich policy; the list is then frozen in the query).
INLINE_ENV = "R53SIGMA_ELASTIC_IOC_INLINE"


class LuceneBackend(StockLuceneBackend):
    field_not_exists_expression = "(NOT _exists_:{field})"

    def convert_condition_not(self, cond, state):
        converted = super().convert_condition_not(cond, state)
        if isinstance(converted, str) and converted.startswith(self.not_token + self.token_separator):
            return self.group_expression.format(expr=converted)
        return converted

    def convert_rule(self, rule, output_format=None, callback=None):
        # The threat-feed rule (r53sigma.ioc.list_match) matches what the ingest lookup wrote
        # (ioc_enrich): the enrich index is the list, so a feed of any size is data, not query text.
        # Its base query is the rule with the list match replaced by "the name field exists".
        match = ioc.list_match(rule)
        if match is None or os.environ.get(INLINE_ENV) == "1" or output_format not in (None, "default"):
            return super().convert_rule(rule, output_format, callback)
        exists = copy.deepcopy(rule)
        items = next(iter(exists.detection.detections.values())).detection_items
        while isinstance(items[0], SigmaDetection):
            items = items[0].detection_items
        items[0].value = [SigmaString("*")]
        return [ioc_enrich.lucene(str(q)) for q in super().convert_rule(exists, output_format, callback)]
