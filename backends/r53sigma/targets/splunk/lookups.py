"""The threat-feed rule as a Splunk lookup: the app's CSV lookup ``r53sigma_ioc_domains`` (transforms.conf
``[r53sigma_ioc_domains]``, ``lookups/r53sigma_ioc_domains.csv``) searched for the queried name and each
of its parent domains, so a feed of any size is a file the user uploads, never an inline search.

The parents come from eval (Search Reference, "Multivalue eval functions"): ``split`` the lower-cased
name into labels, ``mvrange`` the label positions, ``mvmap`` each position to ``mvjoin(mvindex(labels,
i, -1), ".")`` (the name from that label on); ``mvexpand`` makes one result per candidate and ``lookup``
matches each exactly, so an event is one result per list entry it falls under, with that entry and its
category (``ioc_domain``, ``ioc_category``). A lone last label is looked up too and never matches: list
entries have at least two labels (:func:`r53sigma.ioc.normalise`).

The app ships the CSV with its header only (``domain,category``); the user's feed goes there
(``r53sigma.ioc.lookup_csv`` writes the file from any list format r53sigma reads).
"""
from __future__ import annotations

import copy

from sigma.backends.splunk import SplunkBackend
from sigma.rule import SigmaDetection
from sigma.types import SigmaString

from r53sigma import catalogue, ioc

LOOKUP = ioc.BASE_NAME  # the lookup definition (transforms.conf stanza) the searches name
CSV = f"{LOOKUP}.csv"
TRANSFORMS_STANZA = (
    f"[{LOOKUP}]\n"
    f"filename = {CSV}\n"
    # the search lower-cases the name; a hand-edited feed may not be
    "case_sensitive_match = false\n"
)
CSV_HEADER = ",".join(ioc.LOOKUP_COLUMNS) + "\n"


def search(base: str, field: str) -> str:
    """``base`` (the events having ``field``, the queried name) narrowed to those whose name or a parent
    domain of it is in the lookup."""
    quoted = field if field.replace("_", "a").isalnum() else "'" + field.replace("'", "\\'") + "'"
    return "\n".join([
        base,
        f'| eval r53_labels=split(lower({quoted}), ".")',
        "| eval r53_from=mvrange(0, mvcount(r53_labels))",
        '| eval r53_parent=mvmap(r53_from, mvjoin(mvindex(r53_labels, r53_from, -1), "."))',
        "| mvexpand r53_parent",
        f"| lookup {LOOKUP} domain AS r53_parent OUTPUT domain AS ioc_domain category AS ioc_category",
        "| where isnotnull(ioc_domain)",
        "| fields - r53_labels r53_from r53_parent",
    ])


class LookupSplunkBackend(SplunkBackend):
    """pySigma's SplunkBackend, except that a threat-feed rule (:func:`r53sigma.ioc.list_match`)
    searches the app's lookup: its base search is the rule with the list match replaced by "the name
    field exists", converted by the pipeline as any rule; the list given at conversion time (if any)
    is not inlined (the lookup is the list)."""

    def convert_rule(self, rule, output_format=None, callback=None):
        match = ioc.list_match(rule)
        # the plain search only: the data_model format searches the CIM's own field names
        field = _splunk_field(rule, match.field) if match and output_format in (None, "default") else None
        if field is None:
            return super().convert_rule(rule, output_format, callback)
        exists = copy.deepcopy(rule)
        items = next(iter(exists.detection.detections.values())).detection_items
        while isinstance(items[0], SigmaDetection):
            items = items[0].detection_items
        items[0].value = [SigmaString("*")]
        return [search(str(q), field) for q in super().convert_rule(exists, output_format, callback)]


def _splunk_field(rule, name: str) -> str | None:
    ls = rule.logsource
    found = catalogue.for_logsource(ls.category, ls.product, ls.service)
    field = found[0].field_for(name, generic_dns=found[1]) if found else None
    target = field.targets.get("splunk") if field else None
    return getattr(target, "name", None) if target else None
