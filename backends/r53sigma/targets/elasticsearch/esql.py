"""pySigma's ES|QL backend with negations that read a null as false.

ES|QL has three-valued logic: a comparison on a missing (null) field is null, NOT null is null, and
WHERE keeps only rows whose condition is true ("null values", https://www.elastic.co/guide/en/elasticsearch/reference/current/esql-language.html
and the WHERE command docs). So `not field == "x"` drops events without the field, where Sigma's
`not sel` selects them. ``case(X, false, true)`` is true exactly when X is not true (false or null):
Sigma's negation. Outside a negation a null already acts as false (WHERE drops it; null OR true is true).
"""
from __future__ import annotations

from sigma.backends.elasticsearch import ESQLBackend as StockESQLBackend


class ESQLBackend(StockESQLBackend):
    def convert_condition_not(self, cond, state):
        converted = super().convert_condition_not(cond, state)
        prefix = self.not_token + self.token_separator
        if isinstance(converted, str) and converted.startswith(prefix):
            return f"case({converted[len(prefix):]}, false, true)"
        return converted
