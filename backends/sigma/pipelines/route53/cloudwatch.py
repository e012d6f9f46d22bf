"""route53_cloudwatch: Route 53 rules onto the raw records as CloudWatch Logs Insights sees them.

Logs Insights reads the raw record: field names are AWS's own (the catalogue's `cloudwatch` names),
`query_name` and `answers[].Rdata` keep their trailing dot, and arrays are flattened by index
(`answers.0.Rdata`). The pipeline therefore only renames fields and hands the backend the facts it
needs, through the processing state (the backend's README, "Pipeline contract"):

- which fields are members of a JSON array (matched with a regex over `@message`, any element);
- which fields are compared without their trailing dot;
- which are the catalogue's derived fields (not in the record; the backend computes them in the query);
- the `fields` line and the default log group of the rule's log source.

Case: values of fields AWS writes in one case (`values: upper|lower`) are folded to that case and then
marked exact (`SigmaCasedString`), so they become plain `=` / `in`. Every other string value stays a
`SigmaString`, which the backend matches case-insensitively (`(?i)` regex); `|cased` values stay exact.
"""
from __future__ import annotations


from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import SetStateTransformation

from . import correlation_limits, placeholders, shared

TARGET = "cloudwatch"

# Deepest nesting inside one element of each catalogued array (the any-element regex walks balanced
# JSON up to this depth): Resolver answers are flat {Rdata, Type, Class}; a ChangeResourceRecordSets
# change nests resourceRecordSet -> resourceRecords[] -> {value}.
ELEMENT_DEPTH = {"answers": 0, "requestParameters.changeBatch.changes": 3}


def field_facts(view: shared.RuleView) -> dict[str, dict]:
    facts: dict[str, dict] = {}
    for _, field in view.rule_fields(TARGET):
        name = field.target(TARGET).name
        entry: dict = {}
        if view.log_source.columns:
            # A space-separated line writes `-` for an absent value (the EDNS client subnet, AWS's
            # "Public DNS query log format"); the reference engine reads it as absent.
            entry["dash_absent"] = True
        if field.array:
            entry.update(array=field.array, member=field.name[len(field.array) + 1:], element_depth=ELEMENT_DEPTH.get(field.array, 3))
        if field.strip_trailing_dot:
            entry["strip_trailing_dot"] = True
        if field.derived:  # not in the record: the Logs Insights backend computes it in the query
            source = view.log_source.fields[field.derived.source_field]
            entry = {"derived": {"by": field.derived.by, "part": field.derived.part, "from": source.target(TARGET).name,
                                 "strip_trailing_dot": source.strip_trailing_dot}}
        if entry:
            facts[name] = entry
    return facts


def columns(view: shared.RuleView) -> list[list]:
    """[name, compared without its trailing dot] per column of a space-separated line, in order."""
    log_source = view.log_source
    return [[log_source.fields[c].target(TARGET).name, bool(log_source.fields[c].strip_trailing_dot)] for c in log_source.columns]


def fields_line(view: shared.RuleView) -> list[str]:
    """What an analyst reads first: time, every field outside an array (catalogue order), the raw record."""
    log_source = view.log_source
    names = [log_source.fields[log_source.timestamp].target(TARGET).name]
    names += [f.target(TARGET).name for f in log_source.fields.values() if not f.array and f.name not in (log_source.timestamp, "version")]
    return ["@timestamp", *names, "@message"]


# The log sources only Route 53 writes: the backend applies the pipeline to them by itself when it is
# given none (`sigma convert -t cloudwatch` without `-p`), since their raw names and trailing dots make
# a pipeline-less query miss every event. CloudTrail (`product: aws, service: cloudtrail`) and
# `category: dns` are shared with other rule sets, so they keep needing `-p route53_cloudwatch`.
ROUTE53_ONLY_SOURCES = ("resolver", "public_zone")


def route53_cloudwatch_pipeline(only_sources: tuple[str, ...] | None = None) -> ProcessingPipeline:
    """The pipeline; with `only_sources`, just the items for those log sources' own names (the backend's
    default) and no refusal of other log sources."""
    pid = "route53_cloudwatch"
    items = [] if only_sources else [shared.reject_unknown_logsources(pid)]
    items += [
        placeholders.resolve_ioc_domains(pid),
        correlation_limits.refuse_correlations(
            pid, "CloudWatch Logs Insights: ", {},
            aliases="one Logs Insights query reads one log source under its own field names; a group-by shared by log sources with different field names is not stated",
        ),
    ]
    for view in shared.rule_views():
        if only_sources and (view.generic_dns or view.log_source.source not in only_sources):
            continue
        items.append(shared.reject_unknown_fields(pid, view, TARGET, "CloudWatch Logs Insights: "))
        items.extend(shared.fold_case(pid, view, TARGET))
        items.append(shared.map_fields(pid, view, TARGET))
        state = {
            "cloudwatch_fields": field_facts(view),
            "cloudwatch_fields_line": fields_line(view),
            "cloudwatch_log_source": view.log_source.source,
            "cloudwatch_log_group": view.log_source.targets[TARGET]["log_group"],
            "cloudwatch_columns": columns(view),
        }
        items.extend(
            ProcessingItem(
                identifier=f"{pid}_state_{key}_{view.id_suffix}",
                transformation=SetStateTransformation(key, value),
                rule_conditions=[view.condition],
            )
            for key, value in state.items()
        )
    return ProcessingPipeline(
        name="Route 53 logs as CloudWatch Logs Insights reads them (raw records, catalogue names)",
        priority=20,
        allowed_backends=frozenset({"cloudwatch"}),
        items=items,
    )
