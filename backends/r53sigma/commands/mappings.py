"""`r53sigma mappings [--check]`: render mappings/<target>/ and mappings/README.md from the catalogue.

Deterministic: the same catalogue (and, for CloudWatch field indexes, the same rules) gives the same
bytes. `--check` writes nothing and exits 1 listing every stale, missing or extra file.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from r53sigma import catalogue, owned_folder
from r53sigma.targets import registry

REPO_ROOT = Path(__file__).resolve().parents[3]
MAPPINGS = REPO_ROOT / "mappings"  # the checkout's folder (what the tests compare)
DEFAULT_ROOT = Path("mappings")  # the command writes relative to the current folder, never into site-packages
README = "README.md"
OCSF = ("ocsf", "OCSF")  # a mapping only (for Security Lake), not a conversion target


def _mapped_targets() -> list:
    return [t for t in registry.all_targets().values() if t.render_ingestion is not None]


def generated_dirs() -> tuple[str, ...]:
    """mappings/<dir>/: one per target with an ingestion renderer, and OCSF."""
    return (*(t.name for t in _mapped_targets()), OCSF[0])


def target_columns() -> tuple[tuple[str, str], ...]:
    return (*((t.name, t.mapping_column or t.name) for t in _mapped_targets()), OCSF)


def _serialise(content: Any) -> str:
    if isinstance(content, str):
        return content if content.endswith("\n") else content + "\n"
    return json.dumps(content, indent=2, ensure_ascii=False) + "\n"


def field_table() -> str:
    lines = []
    for log_source in catalogue.log_sources():
        logsource = ", ".join(f"{k}: {v}" for k, v in log_source.logsource.items())
        lines += [f"### {log_source.title} (`{logsource}`)", ""]
        lines.append("| raw field | type | " + " | ".join(title for _, title in target_columns()) + " | generic Sigma DNS |")
        lines.append("|---" * (len(target_columns()) + 3) + "|")
        for f in log_source.fields.values():
            cells = [f"`{f.name}`", f.type + (" (array)" if f.array else "")]
            cells += [f"`{f.target(target).name}`" for target, _ in target_columns()]
            cells.append(", ".join(f"`{a}`" for a in f.sigma_dns))
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def readme(elastic_caseless: dict[str, list[str]]) -> str:
    caseless = "\n".join(
        f"- {catalogue.load()[source].title}: " + ", ".join(f"`{n}`" for n in names)
        for source, names in elastic_caseless.items()
    )
    return f"""# Ingestion mappings

Rendered by `r53sigma mappings` from `mappings/catalogue/*.yml` (and, for CloudWatch field indexes,
the rules in `sigma_rules/`). Do not edit the files below by hand: change the catalogue and run
`r53sigma mappings`; `r53sigma mappings --check` (and the test suite) fails when they are stale.

## Elasticsearch (`elasticsearch/`)

- `ingest_pipelines/r53sigma-<source>.json`: raw Resolver JSON / public hosted-zone lines to ECS as
  Elastic's AWS integration writes it (trailing dot removed from `dns.question.name` and
  `dns.answers.data`, `registered_domain`, `dns.answers.{{data,type,class}}`, `related.ip` /
  `related.hosts`, lower-case `network.transport`, `event.kind/category/type/outcome`, `@timestamp`).
  The catalogue's derived `query_length` (the name's characters) is written to
  `aws.route53.query_length` by a Painless script. Fields the catalogue does not know stay under
  `aws.route53.*` with their raw names. A record that
  does not parse is kept: `event.kind: pipeline_error`, tag `r53sigma_ingest_failure`, `error.message`.
  `PUT _ingest/pipeline/r53sigma-resolver` with the file as body.
- `component_templates/r53sigma-<source>@mappings.json` and `index_templates/r53sigma-<source>.json`:
  the pack's own data streams on the catalogue's index patterns (priority 150: above the built-in
  `logs-*-*`, below Fleet's integration templates), `default_pipeline` set to the pipeline above.
- `component_templates/logs-aws.*@custom.json`: for users of Elastic's AWS integration instead. Fleet's
  templates compose `<data stream>@custom`; `PUT _component_template/logs-aws.route53_resolver_logs@custom`
  (and `..._public_logs@custom`, `logs-aws.cloudtrail@custom`), then roll the data stream over
  (`POST logs-aws.route53_resolver_logs-default/_rollover`) so new backing indices get the sub-fields.
- `enrich/`: the threat feed's objects, put by `r53sigma deploy elastic --ioc-domains FILE` in this
  order: the source index `r53sigma-ioc-domains` (`*.index.json`, documents `{{domain, category}}`),
  the `match` enrich policy `r53sigma_ioc_domains` (`*.policy.json`, then `_execute`), and the lookup
  pipeline `r53sigma-resolver-ioc` (`*.pipeline.json`; Elasticsearch accepts it only once the policy
  has been executed). The Resolver pipeline calls it with `ignore_missing_pipeline`, so without a feed
  ingest is unchanged; with one, every listed domain the query name or a parent of it is lands in
  `r53sigma.ioc.domain` / `r53sigma.ioc.category`, which the threat-feed rule's query reads.

Case: `keyword` comparisons are case-sensitive, Sigma's are not. For fields AWS writes in one case
the `route53_elasticsearch` pipeline folds rule values; for mixed-case strings it queries the
`<field>.caseless` sub-field, a keyword with the `r53sigma_lowercase` normalizer, which these templates
declare:

{caseless}

CloudTrail `requestParameters.*` live in `aws.cloudtrail.flattened.request_parameters`, a `flattened`
field in Elastic's integration: its keys are indexed as plain keywords and cannot carry a sub-field
or normalizer, so no `.caseless` is declared there, and Elasticsearch runs only term and prefix queries
on them (no wildcard or regexp). The catalogue claims one case only where AWS guarantees it (API enums,
whose Valid Values the service enforces; each claim says why); rule values are folded to it. Values the
caller writes in any case (record-set names, zone and rule ids, domain names) are `mixed`: there the
pipeline matches a value exactly only when it has no letters, and refuses (not expressible) a
case-insensitive value with letters, a wildcard other than a trailing `*`, or `|re`. ES|QL reads a
flattened field only whole, so each catalogued request key also has a keyword companion
(`r53sigma.cloudtrail.request_parameters.<key>`, with `.caseless`) declared in
`logs-aws.cloudtrail@custom` and filled, as written, by the `logs-aws.cloudtrail@custom` ingest
pipeline (which Elastic's integration pipeline calls last); the ES|QL queries read those.

Addresses: `dns.answers.data` is a keyword (answers hold names and text too), so a rule's `|cidr` on
answers is matched on ECS `dns.resolved_ip` (type `ip`), which the pack's ingest pipeline fills with
the A/AAAA answers (the catalogue names it as the field's `cidr` companion). Elastic's integration
pipeline does not fill it: ingest through the pack's pipeline for those rules to match.

Differences from Elastic's integration pipeline, on purpose: `aws.route53.version`,
`aws.route53.srcids.resolver_endpoint` and `..._network_interface` are kept (Elastic drops them), and
unknown fields are kept under `aws.route53.*`; `aws.instance_id`, `source.address`, geo/AS lookups are
not added. Rules on those kept fields only match data ingested by the pack's pipeline.

## Splunk (`splunk/TA-r53sigma-route53/`)

A technology add-on: copy the folder to `$SPLUNK_HOME/etc/apps/`. Sourcetypes come from the catalogue.
Resolver records (`KV_MODE = json`, one JSON object per line, `_time` from `query_timestamp`, UTC; the
milliseconds, when present, are not kept) get the CIM Network_Resolution fields `query` and `answer`
(trailing dot removed; `answer` is multivalue over every answer: A, AAAA, CNAME, PTR, TXT ...),
`record_type` (AWS `query_type`; CIM's own `query_type` is the opcode), `reply_code`, `src`,
`src_port`, `transport`, `vendor_product`; every other field keeps the name JSON extraction gives
(`srcids.instance`, `answers{{}}.Type`). Public hosted-zone lines are split by the `REPORT` regex in
transforms.conf into the same CIM names plus `hosted_zone_id`, `edge_location`, `edns_client_subnet`.
Event types `r53sigma_route53_*` carry the tags `network`, `resolution`, `dns`. CloudTrail uses the
Splunk Add-on for AWS (`aws:cloudtrail`) unchanged.

## CloudWatch Logs (`cloudwatch/`)

- `field-index-policy-<source>.json`: `aws logs put-index-policy --log-group-identifier <group>
  --policy-document file://...`. At most 20 fields, chosen by how many rules filter on each field
  (ties in catalogue order); array fields are left out (Logs Insights flattens them by index).
  A log source that no valid rule filters on gets no policy.
- `transformer-<source>.json`: `aws logs put-transformer --transformer-config file://...`
  (`parseJSON` for Resolver, `parseRoute53` for public hosted-zone lines; Standard log class).
- `transformer-resolver-ocsf.json`: optional `parseToOCSF` (OCSF 1.1). It rewrites events to OCSF,
  so the pack's Logs Insights queries, which use AWS's names, no longer match: for Security Lake-style
  setups only, not together with the queries.
- `cloudformation.json`: the transformers and field indexes (AWS::Logs::AccountPolicy,
  FIELD_INDEX_POLICY, selected by log-group name prefix) for existing log groups; passes cfn-lint.

## OCSF (`ocsf/`)

Where each raw field lives in OCSF DNS Activity / API Activity, for Amazon Security Lake users:
`ocsf/README.md` and one JSON file per log source.

## Field table

{field_table()}"""


def render() -> dict[str, str]:
    """Relative path under mappings/ -> file text."""
    from r53sigma.targets import ocsf
    from r53sigma.targets.elasticsearch import ingestion as elastic

    files: dict[str, Any] = {}
    for target in _mapped_targets():
        files.update(target.render_ingestion())
    files.update(ocsf.render())
    caseless = {ls.source: elastic.caseless_fields(ls) for ls in catalogue.log_sources()}
    files[README] = readme(caseless)
    return {path: _serialise(content) for path, content in sorted(files.items())}


def existing_files(root: Path) -> set[str]:
    found = {README} if (root / README).is_file() else set()
    for directory in generated_dirs():
        found |= {str(p.relative_to(root)) for p in (root / directory).rglob("*") if p.is_file()}
    return found


def stale(root: Path = MAPPINGS) -> list[str]:
    """Files that differ from a fresh render, are missing, or are no longer rendered."""
    rendered = render()
    problems = []
    for path, text in rendered.items():
        target = root / path
        if not target.is_file():
            problems.append(f"missing: {path}")
        elif target.read_text(encoding="utf-8") != text:
            problems.append(f"stale: {path}")
    problems += [f"extra: {path}" for path in sorted(existing_files(root) - set(rendered))]
    return problems


def write(root: Path = MAPPINGS, force: bool = False) -> list[str]:
    """Render into ``root`` through r53sigma.owned_folder: only a folder that is new, empty or holds
    our MANIFEST.json (else ``force``), never deleting a file that manifest does not list."""
    rendered = {path: text.encode("utf-8") for path, text in render().items()}
    before = {path: (root / path).read_bytes() for path in rendered if (root / path).is_file()}
    removed = owned_folder.write(root, rendered, force=force)
    changed = [f"removed: {path}" for path in removed]
    changed += [f"wrote: {path}" for path, data in rendered.items() if before.get(path) != data]
    return changed


def run(args) -> int:
    root = Path(args.root) if args.root else DEFAULT_ROOT
    if args.check:
        problems = stale(root)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print(f"{len(problems)} mapping file(s) out of date: run `r53sigma mappings`", file=sys.stderr)
        return 1 if problems else 0
    try:
        changed = write(root, force=args.force)
    except owned_folder.FolderError as error:
        print(f"mappings: {error}", file=sys.stderr)
        return 2
    for line in changed:
        print(line)
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "mappings",
        help="render the ingestion mappings (Elasticsearch, Splunk, CloudWatch, OCSF, docs) from the catalogue",
        description=__doc__,
    )
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 listing stale files")
    parser.add_argument("--root", help="mappings folder (default: ./mappings); it must be new, empty or hold our MANIFEST.json")
    parser.add_argument("--force", action="store_true",
                        help="write into a folder that is not ours (no file is deleted that our MANIFEST.json does not list)")
    parser.set_defaults(func=run)
