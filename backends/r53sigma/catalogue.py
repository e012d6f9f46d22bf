"""The field catalogue: one YAML file per Route 53 log source under ``mappings/catalogue/``.

Every place that names a field (pipelines, ingestion mappings, engines, docs) asks this module.
"""
from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

TARGETS = ("elasticsearch", "splunk", "cloudwatch", "ocsf")
SIGMA_DNS_LOGSOURCE = {"category": "dns"}


class CatalogueError(ValueError):
    """The catalogue itself is malformed."""


def catalogue_dir() -> Path:
    """The repository's ``mappings/catalogue`` in a checkout, else the copy installed with the package."""
    in_checkout = Path(__file__).resolve().parents[2] / "mappings" / "catalogue"
    if (in_checkout / "schema.json").is_file():
        return in_checkout
    return Path(__file__).resolve().parent / "catalogue_files"  # package r53sigma.catalogue_files (pyproject)


@dataclass(frozen=True)
class TargetField:
    name: str
    values: str  # case the target stores values in: mixed, upper or lower
    cidr: str | None = None  # an ip-typed companion field for |cidr, where the field itself is not ip
    keyword: str | None = None  # a keyword companion holding the text as written (an ip field's, a flattened key's), for string matching


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    values: str
    example: Any
    description: str
    array: str | None
    normalize: tuple[str, ...]
    sigma_dns: tuple[str, ...]
    targets: Mapping[str, TargetField]
    role: str | None = None
    derived: "Derivation | None" = None  # computed from another field at ingest, not read from the record

    def target(self, target: str) -> TargetField:
        return self.targets[target]

    @property
    def is_string(self) -> bool:
        return self.type == "string"

    @property
    def strip_trailing_dot(self) -> bool:
        return "strip_trailing_dot" in self.normalize


@dataclass(frozen=True)
class Derivation:
    """How a derived field is computed, and the targets that cannot compute it (target -> reason)."""

    source_field: str
    by: str
    part: str
    unavailable: Mapping[str, str]


@dataclass(frozen=True)
class Delivery:
    """One way AWS delivers a log source, and how late AWS says its records can arrive."""

    via: str  # cloudwatch_logs, s3, firehose
    delay_minutes: int
    documented: bool  # False: AWS states no figure; `statement` says where ours comes from
    statement: str
    doc: str  # the AWS documentation page


@dataclass(frozen=True)
class LogSource:
    source: str
    title: str
    logsource: Mapping[str, str]
    format: str
    timestamp: str
    targets: Mapping[str, Mapping[str, Any]]
    fields: Mapping[str, Field]
    columns: tuple[str, ...] = ()
    sigma_dns_logsource: Mapping[str, str] | None = None
    dns_aliases: Mapping[str, str] = field(default_factory=dict)  # generic Sigma DNS name -> field name
    delivery: tuple[Delivery, ...] = ()
    derived: Mapping[str, Field] = field(default_factory=dict)  # computed fields; rules may name them too

    def delay_minutes(self, via: tuple[str, ...] | None = None) -> int:
        """The latest arrival to plan for: the largest delay of the given deliveries (default: all)."""
        chosen = [d for d in self.delivery if via is None or d.via in via]
        if not chosen:
            raise CatalogueError(f"{self.source}: no delivery via {', '.join(via or ())} is catalogued")
        return max(d.delay_minutes for d in chosen)

    def field_for(self, name: str, *, generic_dns: bool = False) -> Field | None:
        """The catalogue entry a rule's field name refers to (generic DNS names only for category: dns rules)."""
        if generic_dns:
            name = self.dns_aliases.get(name, name)
        return self.fields.get(name) or self.derived.get(name)

    def flattened_roots(self, target: str) -> tuple[str, ...]:
        """Target objects whose keys are indexed as one `flattened` field (Elasticsearch)."""
        return tuple(self.targets[target].get("flattened_roots", ()))

    def is_flattened(self, target: str, name: str) -> bool:
        return any(name == root or name.startswith(root + ".") for root in self.flattened_roots(target))

    def with_role(self, role: str) -> Field | None:
        """The field that plays a DNS role (question_name, answer_data, ...), if this log source has one."""
        return next((f for f in self.fields.values() if f.role == role), None)

    def rule_field_names(self, *, generic_dns: bool = False) -> list[str]:
        names = list(self.dns_aliases) if generic_dns else []
        return names + list(self.fields) + list(self.derived)

    def unavailable_in(self, target: str) -> dict[str, str]:
        """Derived fields the target cannot compute, with the reason."""
        return {n: f.derived.unavailable[target] for n, f in self.derived.items() if target in f.derived.unavailable}


def _target_field(spec: Any, default_values: str) -> TargetField:
    if isinstance(spec, str):
        return TargetField(spec, default_values)
    return TargetField(spec["name"], spec.get("values", default_values), spec.get("cidr"), spec.get("keyword"))


def _build(doc: Mapping[str, Any]) -> LogSource:
    fields: dict[str, Field] = {}
    aliases: dict[str, str] = {}
    for name, spec in doc["fields"].items():
        values = spec.get("values", "mixed")
        fields[name] = Field(
            name=name,
            type=spec["type"],
            values=values,
            example=spec["example"],
            description=spec["description"],
            array=spec.get("array"),
            normalize=tuple(spec.get("normalize", ())),
            sigma_dns=tuple(spec.get("sigma_dns", ())),
            targets={t: _target_field(spec["targets"][t], values) for t in TARGETS},
            role=spec.get("role"),
        )
        for alias in spec.get("sigma_dns", ()):
            if alias in aliases:
                raise CatalogueError(f"{doc['source']}: generic DNS name {alias!r} given to two fields")
            aliases[alias] = name
    derived: dict[str, Field] = {}
    for name, spec in doc.get("derived", {}).items():
        if spec["from"] not in fields or name in fields:
            raise CatalogueError(f"{doc['source']}: derived field {name!r} must come from a catalogued field and not shadow one")
        missing = set(TARGETS) - set(spec["targets"]) - set(spec["unavailable"])
        if missing:
            raise CatalogueError(f"{doc['source']}: derived field {name!r} names neither a field nor a reason for {sorted(missing)}")
        kind = spec.get("type", "string")
        values = "lower" if kind == "string" else "mixed"  # a count has no case
        derived[name] = Field(
            name=name, type=kind, values=values, example=spec["example"],
            description=" ".join(spec["description"].split()), array=None, normalize=(), sigma_dns=(),
            targets={t: TargetField(n, values) for t, n in spec["targets"].items()},
            derived=Derivation(spec["from"], spec["by"], spec["part"],
                               {t: " ".join(r.split()) for t, r in spec["unavailable"].items()}),
        )
    if doc["timestamp"] not in fields:
        raise CatalogueError(f"{doc['source']}: timestamp field {doc['timestamp']!r} is not catalogued")
    for column in doc.get("columns", ()):
        if column not in fields:
            raise CatalogueError(f"{doc['source']}: column {column!r} is not catalogued")
    return LogSource(
        source=doc["source"],
        title=doc["title"],
        logsource=dict(doc["logsource"]),
        format=doc["format"],
        timestamp=doc["timestamp"],
        targets=doc["targets"],
        fields=fields,
        columns=tuple(doc.get("columns", ())),
        sigma_dns_logsource=doc.get("sigma_dns_logsource"),
        dns_aliases=aliases,
        derived=derived,
        delivery=tuple(
            Delivery(d["via"], d["delay_minutes"], d["basis"] == "documented", " ".join(d["statement"].split()), d["doc"])
            for d in doc["delivery"]
        ),
    )


def schema() -> dict:
    return json.loads((catalogue_dir() / "schema.json").read_text())


@functools.cache
def load() -> dict[str, LogSource]:
    """All catalogued log sources by their short name (resolver, public_zone, cloudtrail)."""
    texts = {path: path.read_text() for path in sorted(catalogue_dir().glob("*.yml"))}
    schema_text = (catalogue_dir() / "schema.json").read_text()
    digest = hashlib.sha256("\0".join([schema_text] + [p.name + "\0" + t for p, t in texts.items()]).encode()).hexdigest()
    # the same files passed the schema before: jsonschema not imported; and their documents as JSON, where
    # they were kept with the mark (a warm scan's start: neither PyYAML imported nor the files parsed)
    validated, docs = _validated_before(digest)
    if docs is None or set(docs) != {path.name for path in texts}:
        import yaml

        validator = None
        docs = {}
        for path, text in texts.items():
            doc = docs[path.name] = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
            if not validated:
                import jsonschema

                validator = validator or jsonschema.Draft202012Validator(json.loads(schema_text))
                errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
                if errors:
                    where = "/".join(str(p) for p in errors[0].path)
                    raise CatalogueError(f"{path.name}: {where}: {errors[0].message}")
        _remember_validated(digest, docs)
    sources: dict[str, LogSource] = {}
    for path in texts:
        log_source = _build(docs[path.name])
        sources[log_source.source] = log_source
    return sources


def cache_dir() -> Path | None:
    """Where r53sigma keeps what it may recompute (this loader's validation, the scan's plan cache):
    ``$R53SIGMA_CACHE_DIR``, else ``$XDG_CACHE_HOME/r53sigma``, else ``~/.cache/r53sigma``;
    ``R53SIGMA_CACHE_DIR=off`` disables every cache (None). Here because plugins load only this module."""
    import os

    configured = os.environ.get("R53SIGMA_CACHE_DIR")
    if configured == "off":
        return None
    return Path(configured) if configured else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "r53sigma"


def _validated_marker() -> Path | None:
    base = cache_dir()
    return base / "catalogue-validated" if base is not None else None


def _validated_before(digest: str) -> tuple[bool, dict[str, Any] | None]:
    """Whether files of this digest passed the schema before, and their documents if kept with the mark."""
    marker = _validated_marker()
    try:
        if marker is None:
            return False, None
        kept, _, docs = marker.read_text(encoding="utf-8").partition("\n")
        if kept != digest:
            return False, None
        return True, (json.loads(docs) if docs else None)
    except (OSError, ValueError):
        return False, None


def _remember_validated(digest: str, docs: dict[str, Any]) -> None:
    """The digest, then the documents as JSON where JSON gives them back equal (else the YAML is parsed
    each time). Written atomically; a cache that cannot be written only means validating again next time."""
    import os
    import tempfile

    marker = _validated_marker()
    if marker is None:
        return
    try:
        text = json.dumps(docs)
        if json.loads(text) != docs:
            text = ""
    except (TypeError, ValueError):
        text = ""
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".catalogue.", dir=marker.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(digest + ("\n" + text if text else ""))
        os.replace(tmp, marker)
    except OSError:
        pass


def log_sources() -> Iterator[LogSource]:
    return iter(load().values())


def for_logsource(category: str | None, product: str | None, service: str | None) -> tuple[LogSource, bool] | None:
    """The log source a rule's ``logsource`` selects, and whether it uses the generic DNS names."""
    wanted = {k: v for k, v in (("category", category), ("product", product), ("service", service)) if v}
    for log_source in load().values():
        if wanted == dict(log_source.logsource):
            return log_source, False
        if log_source.sigma_dns_logsource and _generic_dns_matches(wanted, log_source.sigma_dns_logsource):
            return log_source, True
    return None


def _generic_dns_matches(wanted: Mapping[str, str], dns_logsource: Mapping[str, str]) -> bool:
    # `category: dns` alone, or with `product: aws` narrowing it, selects the Resolver logs.
    if wanted.get("category") != dns_logsource.get("category"):
        return False
    return wanted.get("product") in (None, "aws") and wanted.get("service") in (None, "route53resolver")
