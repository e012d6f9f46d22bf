"""Athena (Trino SQL) for Resolver query logs in S3, over AWS's documented table ``r53_rlogs``.

The table is the one AWS's Athena guide creates for Resolver query logs (JSON SerDe, partitioned by
``date`` as ``yyyy/MM/dd`` with partition projection, and ``vpc``): :data:`CREATE_TABLE`. Rule
predicates come from the same compiler as the DuckDB engine (:mod:`r53sigma.scan.sqlcompile`), with the
Trino dialect: ``any_match`` over ``answers``, ``regexp_like``, ``IPADDRESS`` for ``|cidr``. The
trailing dot AWS writes on ``query_name`` and name answers is stripped in the query, as the rules
expect. Correlations become one grouped query per rule over epoch-aligned windows
(``floor(to_unixtime(t) / span) * span``), rows without a group-by value left out.

A threat-feed rule (the ``%ioc_domains%`` list match, :func:`r53sigma.ioc.list_match`) is a join with
the table :data:`CREATE_IOC_TABLE` (the CSV of ``r53sigma.ioc.lookup_csv`` in S3) on the name and each
of its parent domains, whatever the list's size: one row per list entry the name falls under, with
that entry and its category; the list given at conversion time is not inlined (the table is the list).

Limits: Resolver rules only (public hosted-zone logs are not delivered to S3; CloudTrail has its own
Athena table); keywords, group-by on an answer field and value_sum/avg/median/temporal_ordered
correlations are refused with a reason. Add a partition filter such as
``AND "date" BETWEEN '2024/05/01' AND '2024/05/31'`` to scan less.
"""
from __future__ import annotations

from typing import Any

from sigma.correlations import SigmaCorrelationRule, SigmaCorrelationType, SigmaExtendedCorrelationCondition
from sigma.exceptions import SigmaError, SigmaFeatureNotSupportedByBackendError
from sigma.rule import SigmaRule

from r53sigma import catalogue, ioc
from r53sigma.scan import sqlcompile
from r53sigma.scan.correlations import aliased
from r53sigma.scan.results import EngineError, describe

TABLE = "r53_rlogs"
# Column types of AWS's documented table (srcport is an int there; srcids has no resolver_network_interface).
CREATE_TABLE = """CREATE EXTERNAL TABLE r53_rlogs (
  version string,
  account_id string,
  region string,
  vpc_id string,
  query_timestamp string,
  query_name string,
  query_type string,
  query_class string,
  rcode string,
  answers array<struct<Rdata: string, Type: string, Class: string>>,
  srcaddr string,
  srcport int,
  transport string,
  srcids struct<instance: string, resolver_endpoint: string>,
  firewall_rule_action string,
  firewall_rule_group_id string,
  firewall_domain_list_id string
)
PARTITIONED BY (`date` string, `vpc` string)
ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
LOCATION 's3://<bucket>/AWSLogs/<account>/vpcdnsquerylogs/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.date.type' = 'date',
  'projection.date.range' = '2023/01/01,NOW',
  'projection.date.format' = 'yyyy/MM/dd',
  'projection.date.interval' = '1',
  'projection.date.interval.unit' = 'DAYS',
  'projection.vpc.type' = 'injected',
  'storage.location.template' = 's3://<bucket>/AWSLogs/<account>/vpcdnsquerylogs/${vpc}/${date}'
)"""
# The threat feed, as the CSV r53sigma.ioc.lookup_csv writes (header domain,category; normalised names).
IOC_TABLE = ioc.BASE_NAME
CREATE_IOC_TABLE = f"""CREATE EXTERNAL TABLE {IOC_TABLE} (
  domain string,
  category string
)
ROW FORMAT DELIMITED FIELDS TERMINATED BY ','
LOCATION 's3://<bucket>/r53sigma/ioc_domains/'
TBLPROPERTIES ('skip.header.line.count' = '1')"""
INTEGER_COLUMNS = {"srcport"}
ABSENT = {"srcids.resolver_network_interface"}  # catalogued, not in AWS's table
_CORRELATIONS = {SigmaCorrelationType.EVENT_COUNT, SigmaCorrelationType.VALUE_COUNT, SigmaCorrelationType.TEMPORAL}


def column(field: catalogue.Field) -> sqlcompile.Column:
    """Where a Resolver catalogue field is in ``r53_rlogs`` (Hive lower-cases nested names)."""
    if field.name in ABSENT:
        raise EngineError(f"field {field.name!r} is not a column of AWS's Athena table {TABLE}")
    if field.derived:  # Athena's Trino functions include no Public Suffix List, and AWS's table has no such column
        why = ("no Public Suffix List function in Athena SQL" if field.derived.by == "public_suffix_list"
               else "this backend does not compute derived fields (Trino's length() could)")
        raise EngineError(f"field {field.name!r} (derived from {field.derived.source_field}) is not available in Athena: "
                          f"{why} and no such column in {TABLE}")
    if field.array:
        member = field.name[len(field.array) + 1:].lower()
        text = (lambda v: sqlcompile.strip_dot(f"{v}.{member}")) if field.strip_trailing_dot else (lambda v: f"{v}.{member}")
        return sqlcompile.Column(field.array, text)
    expr = field.name.lower()
    if field.name in INTEGER_COLUMNS:
        expr = f"CAST({expr} AS VARCHAR)"
    if field.strip_trailing_dot:
        expr = sqlcompile.strip_dot(expr)
    return sqlcompile.Column(expr)


def _resolver_only(rule: SigmaRule) -> None:
    ls = rule.logsource
    found = catalogue.for_logsource(ls.category, ls.product, ls.service)
    if found is None or found[0].source != "resolver":
        raise EngineError(f"{describe(rule)}: Athena queries are generated for Resolver query logs only")


def predicate(rule: SigmaRule) -> str:
    _resolver_only(rule)
    return sqlcompile.compile_rule(rule, column, sqlcompile.TrinoDialect())


def rule_query(rule: SigmaRule) -> str:
    match = ioc.list_match(rule)
    if match is not None:
        return ioc_join_query(rule, match.field)
    return f"SELECT *\nFROM {TABLE}\nWHERE {predicate(rule)}"


def ioc_join_query(rule: SigmaRule, name: str) -> str:
    """Rows whose ``name`` field, or a parent domain of it, is in the list table: the name and the
    text after each of its dots, unnested and joined on equality (a hash join, any list size)."""
    _resolver_only(rule)
    field = catalogue.load()["resolver"].field_for(name, generic_dns=_generic(rule))
    if field is None or field.array or field.derived:
        raise EngineError(f"{describe(rule)}: the list match needs a single-valued Resolver field, not {name!r}")
    text = f"lower({column(field).expr})"
    # Trino: sequence(1, 0) fails, so at least 1; substr(s, p) is the text from position p (1-based)
    suffixes = (f"concat(ARRAY[{text}], transform(filter(sequence(1, greatest(length({text}), 1)), "
                f"p -> substr({text}, p, 1) = '.'), p -> substr({text}, p + 1)))")
    return (f"SELECT r.*, i.domain AS ioc_domain, i.category AS ioc_category\nFROM {TABLE} AS r\n"
            f"CROSS JOIN UNNEST({suffixes}) AS s(suffix)\n"
            f"JOIN {IOC_TABLE} AS i ON i.domain = s.suffix")


def _timestamp() -> str:
    return "to_unixtime(from_iso8601_timestamp(query_timestamp))"


def correlation_query(rule: SigmaCorrelationRule) -> str:
    if rule.type not in _CORRELATIONS:
        raise EngineError(f"{describe(rule)}: correlation type {rule.type} has no Athena query here")
    targets = [r.rule for r in rule.rules]
    if not targets or any(not isinstance(t, SigmaRule) for t in targets):
        raise EngineError(f"{describe(rule)}: referenced rules must be single-event rules")
    predicates = [predicate(t) for t in targets]
    resolver = catalogue.load()["resolver"]
    groups = []
    for name in rule.group_by or []:
        field = resolver.field_for(aliased(rule, name, targets[0]), generic_dns=_generic(targets[0]))
        if field is None or field.array:
            raise EngineError(f"{describe(rule)}: group-by field {name!r} must be a single-valued Resolver field")
        groups.append((name, column(field).expr))
    span = rule.timespan.seconds
    window = f"floor({_timestamp()} / {span}) * {span}"
    selects = [f"{window} AS window_start"] + [f"{expr} AS \"{name}\"" for name, expr in groups]
    condition = rule.condition
    if rule.type == SigmaCorrelationType.EVENT_COUNT:
        aggregate = "count(*)"
    elif rule.type == SigmaCorrelationType.VALUE_COUNT:
        fieldref = condition.fieldref if isinstance(condition.fieldref, str) else condition.fieldref[0]
        field = resolver.field_for(aliased(rule, fieldref, targets[0]), generic_dns=_generic(targets[0]))
        if field is None or field.array:
            raise EngineError(f"{describe(rule)}: value_count field {fieldref!r} must be a single-valued Resolver field")
        aggregate = f"count(DISTINCT {column(field).expr})"
    else:
        if isinstance(condition, SigmaExtendedCorrelationCondition):
            raise EngineError(f"{describe(rule)}: extended temporal conditions have no Athena query here")
        aggregate = " + ".join(f"max(CASE WHEN {p} THEN 1 ELSE 0 END)" for p in predicates)
    if isinstance(condition, SigmaExtendedCorrelationCondition) or condition is None:
        having = f"{aggregate} = {len(targets)}"
    else:
        op = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "eq": "=", "neq": "<>"}[condition.op.name.lower()]
        having = f"{aggregate} {op} {condition.count}"
    where = " OR ".join(f"({p})" for p in predicates)
    not_null = "".join(f" AND {expr} IS NOT NULL" for _, expr in groups)
    group_by = ", ".join(str(i) for i in range(1, len(selects) + 1))
    return (
        f"SELECT {', '.join(selects)}, {aggregate} AS value\nFROM {TABLE}\n"
        f"WHERE ({where}) AND query_timestamp IS NOT NULL{not_null}\n"
        f"GROUP BY {group_by}\nHAVING {having}\nORDER BY 1"
    )


def _generic(rule: SigmaRule) -> bool:
    ls = rule.logsource
    return catalogue.for_logsource(ls.category, ls.product, ls.service)[1]


class AthenaBackend:
    """The few calls ``r53sigma.conversion`` makes of a pySigma backend (no processing pipeline:
    the catalogue names the columns)."""

    default_format = "default"

    def __init__(self, pipeline: Any = None, **options: Any):
        self.options = options

    def init_processing_pipeline(self, output_format: str | None = None) -> None:
        return None

    def convert_rule(self, rule: SigmaRule) -> list[str]:
        return [self._guard(rule_query, rule)]

    def convert_correlation_rule(self, rule: SigmaCorrelationRule) -> list[str]:
        return [self._guard(correlation_query, rule)]

    @staticmethod
    def _guard(make, rule) -> str:
        try:
            return make(rule)
        except EngineError as error:
            if "is not a field of" in str(error) or "log source is not" in str(error):
                raise SigmaError(str(error)) from None  # a broken rule, not a limit of Athena
            raise SigmaFeatureNotSupportedByBackendError(str(error)) from None
