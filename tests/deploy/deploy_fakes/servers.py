"""In-process fakes of the documented HTTP APIs `r53sigma deploy` uses, on 127.0.0.1 in a thread.

Each fake keeps its objects in memory, checks auth and the request shapes the vendor documents
(required headers and fields, conflicts, dependencies), echoes objects the way the real service
does where that matters for idempotence (Elasticsearch template settings, Kibana's server-side rule
fields, Splunk's 0/1 booleans), logs every request, and can be told to fail the next matching
requests (`fail`) to exercise retries and partial failures.

- Elasticsearch: `_ingest/pipeline`, `_component_template`, `_index_template` (GET all / PUT / DELETE);
  for the threat feed, indices (`PUT/DELETE <index>`, `GET <index>/_mapping`, `POST <index>/_refresh`),
  `_bulk` (NDJSON index actions) and the enrich APIs (`GET/PUT/DELETE _enrich/policy/<name>`,
  `PUT|POST _enrich/policy/<name>/_execute`), with the rules the enrich docs state: one policy type
  with `indices`, `match_field`, `enrich_fields`; existing source indices; no update of a policy; no
  delete of a policy a pipeline uses; a pipeline's enrich processor needs an executed policy.
- Kibana: `/api/detection_engine/rules` (GET by rule_id, POST, PUT, DELETE) and `_find` with a tags filter.
- Splunk: `/services/auth/login`, `/services/apps/local/<app>`, `/servicesNS/nobody/<app>/saved/searches[/<name>]`,
  and the KV store collection and transforms.conf endpoints (splunk_kvstore.py), answering in Atom
  XML, as splunkd does without `output_mode=json`.
"""
from __future__ import annotations

import base64
import json
import re
import threading
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, unquote_plus, urlsplit
from xml.sax.saxutils import escape

from .splunk_kvstore import KVStoreEndpoints  # relative: the package is imported as deploy_fakes and as deploy.deploy_fakes


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body) if self.body else None

    def form(self) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(self.body.decode("utf-8"), keep_blank_values=True).items()}

    def arg(self, name: str, default=None):
        return self.query.get(name, [default])[-1]


@dataclass
class Failure:
    method: str
    pattern: re.Pattern
    status: int
    times: int
    body: bytes


class FakeServer:
    """A real HTTP server; subclasses implement `route(request) -> (status, headers, body)`."""

    content_type = "application/json"
    plus_is_space = False

    def __init__(self):
        self.requests: list[Request] = []
        self.failures: list[Failure] = []
        self.lock = threading.RLock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output clean
                pass

            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                split = urlsplit(self.path)
                path = unquote_plus(split.path) if fake.plus_is_space else unquote(split.path)
                request = Request(self.command, path, parse_qs(split.query, keep_blank_values=True),
                                  {k.lower(): v for k, v in self.headers.items()}, body)
                with fake.lock:
                    fake.requests.append(request)
                    status, headers, payload = fake._failure(request) or fake.route(request)
                self.send_response(status)
                for key, value in {"Content-Type": fake.content_type, **fake.extra_headers(), **headers}.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                if request.headers.get("connection", "").lower() == "close":
                    self.close_connection = True  # even when the fake answered keep-alive

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    def extra_headers(self) -> dict[str, str]:
        return {}

    def fail(self, method: str, path_regex: str, status: int, times: int = 1, body: bytes | None = None) -> None:
        """Answer the next ``times`` requests matching ``method`` and ``path_regex`` with ``status``."""
        self.failures.append(Failure(method, re.compile(path_regex), status, times,
                                     body if body is not None else self.error_body(status, "injected failure")))

    def _failure(self, request: Request):
        for failure in self.failures:
            if failure.times > 0 and failure.method == request.method and failure.pattern.search(request.path):
                failure.times -= 1
                return failure.status, {"Retry-After": "1"}, failure.body
        return None

    def error_body(self, status: int, message: str) -> bytes:
        return json.dumps({"status_code": status, "message": message}).encode()

    def changes(self) -> list[Request]:
        return [r for r in self.requests if r.method in ("POST", "PUT", "DELETE") and "auth/login" not in r.path]

    def route(self, request: Request):
        raise NotImplementedError


def _elastic_auth(api_key: str, username: str, password: str) -> set[str]:
    return {f"ApiKey {api_key}", "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


def _json(status: int, data) -> tuple[int, dict, bytes]:
    return status, {}, json.dumps(data).encode()


class FakeElasticsearch(FakeServer):
    """Ingest pipelines, component and index templates; an API key or basic auth."""

    def __init__(self, api_key: str = "es-key", username: str = "deployer", password: str = "s3cret"):
        super().__init__()
        self.accepted = _elastic_auth(api_key, username, password)
        self.pipelines: dict[str, dict] = {}
        self.component_templates: dict[str, dict] = {}
        self.index_templates: dict[str, dict] = {}
        self.indices: dict[str, dict] = {}  # name -> {"mappings": ..., "docs": {id: source}}
        self.policies: dict[str, dict] = {}  # name -> {type: config}
        self.enrich_indices: dict[str, list[dict]] = {}  # policy -> the documents its last execution copied

    def extra_headers(self):
        return {"X-Elastic-Product": "Elasticsearch"}

    def error_body(self, status, message):
        return json.dumps({"error": {"type": "injected", "reason": message}, "status": status}).encode()

    def _error(self, status, kind, reason):
        return _json(status, {"error": {"root_cause": [{"type": kind, "reason": reason}], "type": kind, "reason": reason}, "status": status})

    def route(self, request: Request):
        if request.headers.get("authorization") not in self.accepted:
            return self._error(401, "security_exception", "unable to authenticate with provided credentials")
        parts = [p for p in request.path.split("/") if p]
        if not parts:
            return _json(200, {"version": {"number": "9.1.0"}, "tagline": "You Know, for Search"})
        if parts[0] == "_enrich":
            return self._enrich(request, parts[1:])
        if parts[0] == "_bulk":
            return self._bulk(request)
        if not parts[0].startswith("_"):
            return self._index(request, parts)
        collections = {"_ingest": self.pipelines, "_component_template": self.component_templates, "_index_template": self.index_templates}
        if parts[0] == "_ingest" and len(parts) >= 2 and parts[1] == "pipeline":
            parts = ["_ingest"] + parts[2:]
        if parts[0] not in collections:
            return self._error(400, "illegal_argument_exception", f"no handler for {request.path}")
        store, name = collections[parts[0]], (parts[1] if len(parts) > 1 else None)
        if request.method == "GET":
            return self._get(parts[0], store, name)
        if request.method == "PUT" and name:
            return self._put(parts[0], store, name, request.json() or {})
        if request.method == "DELETE" and name:
            return self._delete(parts[0], store, name)
        return self._error(405, "method_not_allowed", request.method)

    def _get(self, kind, store, name):
        names = [name] if name else sorted(store)
        if name and name not in store:
            return self._error(404, "resource_not_found_exception", f"{name} not found") if kind != "_ingest" else _json(404, {})
        if kind == "_ingest":
            return _json(200, {n: store[n] for n in names})
        key = "component_templates" if kind == "_component_template" else "index_templates"
        inner = "component_template" if kind == "_component_template" else "index_template"
        return _json(200, {key: [{"name": n, inner: store[n]} for n in names]})

    def _put(self, kind, store, name, body):
        if kind == "_ingest" and not isinstance(body.get("processors"), list):
            return self._error(400, "parse_exception", "[processors] required property is missing")
        if kind == "_ingest":  # the enrich processor factory reads the executed policy's enrich index
            for processor in body["processors"]:
                enrich = processor.get("enrich")
                if enrich is not None and enrich.get("policy_name") not in self.enrich_indices:
                    return self._error(400, "illegal_argument_exception",
                                       f"no enrich index exists for policy with name [{enrich.get('policy_name')}]")
                if enrich is not None and not 1 <= int(enrich.get("max_matches", 1)) <= 128:
                    return self._error(400, "parse_exception", "[max_matches] should be between 1 and 128")
        if kind == "_index_template":
            if not body.get("index_patterns"):
                return self._error(400, "action_request_validation_exception", "index patterns are missing")
            missing = [c for c in body.get("composed_of", []) if c not in self.component_templates]
            if missing:
                return self._error(400, "invalid_index_template_exception",
                                   f"index template [{name}] specifies component templates {missing} that do not exist")
        if kind != "_ingest" and isinstance(body.get("template", {}).get("settings"), dict):
            body = {**body, "template": {**body["template"], "settings": _nested_string_settings(body["template"]["settings"])}}
        store[name] = body
        return _json(200, {"acknowledged": True})

    def _delete(self, kind, store, name):
        if name not in store:
            return self._error(404, "resource_not_found_exception", f"{name} missing")
        if kind == "_component_template":
            users = [t for t, body in self.index_templates.items() if name in body.get("composed_of", [])]
            if users:
                return self._error(400, "illegal_argument_exception",
                                   f"component templates [{name}] cannot be removed as they are still in use by index templates {users}")
        del store[name]
        return _json(200, {"acknowledged": True})


    # ---- the threat feed: indices, _bulk, enrich policies
    def _index(self, request: Request, parts: list[str]):
        name, rest = parts[0], parts[1:]
        if name != name.lower():
            return self._error(400, "invalid_index_name_exception", f"Invalid index name [{name}], must be lowercase")
        if not rest and request.method == "PUT":
            if name in self.indices:
                return self._error(400, "resource_already_exists_exception", f"index [{name}] already exists")
            body = request.json() or {}
            unknown = set(body) - {"mappings", "settings", "aliases"}
            if unknown:
                return self._error(400, "parse_exception", f"unknown key {sorted(unknown)} for create index")
            self.indices[name] = {"mappings": body.get("mappings", {}), "docs": {}}
            return _json(200, {"acknowledged": True, "shards_acknowledged": True, "index": name})
        if name not in self.indices:
            return self._error(404, "index_not_found_exception", f"no such index [{name}]")
        if not rest and request.method == "DELETE":
            del self.indices[name]
            return _json(200, {"acknowledged": True})
        if rest == ["_mapping"] and request.method == "GET":
            return _json(200, {name: {"mappings": self.indices[name]["mappings"]}})
        if rest == ["_refresh"] and request.method == "POST":
            return _json(200, {"_shards": {"total": 1, "successful": 1, "failed": 0}})
        return self._error(400, "illegal_argument_exception", f"no handler for {request.method} {request.path}")

    def _bulk(self, request: Request):
        if request.method not in ("POST", "PUT"):
            return self._error(405, "method_not_allowed", request.method)
        lines = [json.loads(line) for line in request.body.decode("utf-8").splitlines() if line.strip()]
        items = []
        while lines:
            ((action, meta),) = lines.pop(0).items()
            if action not in ("index", "create") or not lines:
                return self._error(400, "illegal_argument_exception", f"Malformed action/metadata line [{action}]")
            source = lines.pop(0)
            index = meta.get("_index")
            if index not in self.indices:  # the pack creates its index first: auto-creation would guess the mappings
                items.append({action: {"_index": index, "status": 404, "error": {"type": "index_not_found_exception"}}})
                continue
            self.indices[index]["docs"][meta.get("_id") or uuid.uuid4().hex] = source
            items.append({action: {"_index": index, "_id": meta.get("_id"), "status": 201, "result": "created"}})
        return _json(200, {"took": 1, "errors": any("error" in i[a] for i in items for a in i), "items": items})

    def _enrich(self, request: Request, parts: list[str]):
        if not parts or parts[0] != "policy" or len(parts) not in (2, 3):
            return self._error(400, "illegal_argument_exception", f"no handler for {request.path}")
        name = parts[1]
        if len(parts) == 3:
            if parts[2] != "_execute" or request.method not in ("PUT", "POST"):
                return self._error(400, "illegal_argument_exception", f"no handler for {request.method} {request.path}")
            if name not in self.policies:
                return self._error(404, "resource_not_found_exception", f"policy [{name}] does not exist")
            ((_kind, config),) = self.policies[name].items()
            missing = [i for i in config["indices"] if i not in self.indices]
            if missing:
                return self._error(404, "index_not_found_exception", f"no such index {missing}")
            fields = [config["match_field"], *config["enrich_fields"]]
            self.enrich_indices[name] = [{k: d[k] for k in fields if k in d} for i in config["indices"]
                                         for d in self.indices[i]["docs"].values() if config["match_field"] in d]
            return _json(200, {"status": {"phase": "COMPLETE"}})
        if request.method == "GET":
            found = [{"config": {kind: {"name": name, **config}}} for kind, config in self.policies.get(name, {}).items()]
            return _json(200, {"policies": found})
        if request.method == "DELETE":
            if name not in self.policies:
                return self._error(404, "resource_not_found_exception", f"policy [{name}] not found")
            users = [p for p, body in self.pipelines.items()
                     if any((proc.get("enrich") or {}).get("policy_name") == name for proc in body.get("processors", []))]
            if users:
                return self._error(400, "illegal_argument_exception",
                                   f"Could not delete policy [{name}] because a pipeline is referencing it {users}")
            del self.policies[name]
            self.enrich_indices.pop(name, None)
            return _json(200, {"acknowledged": True})
        if request.method != "PUT":
            return self._error(405, "method_not_allowed", request.method)
        if name != name.lower():
            return self._error(400, "illegal_argument_exception", f"Invalid policy name [{name}], must be lowercase")
        if name in self.policies:
            return self._error(400, "resource_already_exists_exception", f"policy [{name}] already exists")
        body = request.json() or {}
        kinds = [k for k in body if k in ("match", "geo_match", "range")]
        if len(kinds) != 1 or len(body) != 1:
            return self._error(400, "x_content_parse_exception", "one policy type (match, geo_match, range) expected")
        config = dict(body[kinds[0]])
        unknown = set(config) - {"indices", "match_field", "enrich_fields", "query"}
        if unknown or not config.get("indices") or not config.get("match_field") or not config.get("enrich_fields"):
            return self._error(400, "x_content_parse_exception", f"indices, match_field and enrich_fields required; unknown {sorted(unknown)}")
        config["indices"] = [config["indices"]] if isinstance(config["indices"], str) else list(config["indices"])
        missing = [i for i in config["indices"] if i not in self.indices]
        if missing:
            return self._error(404, "index_not_found_exception", f"no such index [{missing[0]}]")
        self.policies[name] = {kinds[0]: config}
        return _json(200, {"acknowledged": True})


def _nested_string_settings(settings: dict) -> dict:
    """Elasticsearch echoes template settings as `{"index": {...}}` with string leaves."""
    flat = {}

    def walk(node, prefix):
        for key, value in node.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")
            else:
                name = f"{prefix}{key}"
                flat[name if name.startswith("index.") else "index." + name] = (
                    str(value).lower() if isinstance(value, bool) else [str(v) for v in value] if isinstance(value, list) else str(value)
                )

    walk(settings, "")
    nested: dict = {}
    for name, value in flat.items():
        holder = nested
        *parents, leaf = name.split(".")
        for part in parents:
            holder = holder.setdefault(part, {})
        holder[leaf] = value
    return nested


KIBANA_REQUIRED = ("rule_id", "name", "description", "risk_score", "severity", "type")
KIBANA_SERVER_FIELDS = {
    "enabled": True, "interval": "5m", "from": "now-6m", "to": "now", "max_signals": 100, "author": [],
    "false_positives": [], "references": [], "tags": [], "threat": [], "exceptions_list": [], "actions": [],
    "immutable": False, "related_integrations": [], "required_fields": [], "setup": "",
}


class FakeKibana(FakeServer):
    """Kibana's detection-engine rules API, with basic auth and the kbn-xsrf header rule."""

    def __init__(self, api_key: str = "es-key", username: str = "deployer", password: str = "s3cret"):
        super().__init__()
        self.accepted = _elastic_auth(api_key, username, password)  # Kibana accepts the cluster's credentials
        self.rules: dict[str, dict] = {}

    def route(self, request: Request):
        if request.headers.get("authorization") not in self.accepted:
            return _json(401, {"statusCode": 401, "error": "Unauthorized", "message": "[security_exception]: unable to authenticate user"})
        if request.method != "GET" and request.headers.get("kbn-xsrf") is None:
            return _json(400, {"statusCode": 400, "error": "Bad Request", "message": "Request must contain a kbn-xsrf header."})
        path = request.path
        if path.startswith("/s/"):
            path = "/" + path.split("/", 3)[3]
        if path == "/api/detection_engine/rules/_find" and request.method == "GET":
            return self._find(request)
        if path != "/api/detection_engine/rules":
            return _json(404, {"statusCode": 404, "error": "Not Found", "message": "Not Found"})
        if request.method == "GET":
            rule = self.rules.get(request.arg("rule_id"))
            return _json(200, rule) if rule else self._not_found(request.arg("rule_id"))
        if request.method == "DELETE":
            rule = self.rules.pop(request.arg("rule_id"), None)
            return _json(200, rule) if rule else self._not_found(request.arg("rule_id"))
        body = request.json() or {}
        missing = [k for k in KIBANA_REQUIRED if k not in body] + (["query"] if body.get("type") in ("query", "esql") and "query" not in body else [])
        if missing:
            return _json(400, {"status_code": 400, "message": f"{', '.join(missing)}: Required"})
        if body.get("type") == "esql" and body.get("language") != "esql":
            return _json(400, {"status_code": 400, "message": "language: Invalid literal value, expected \"esql\""})
        rule_id = body["rule_id"]
        if request.method == "POST":
            if rule_id in self.rules:
                return _json(409, {"status_code": 409, "message": f"rule_id: \"{rule_id}\" already exists"})
            self.rules[rule_id] = {**KIBANA_SERVER_FIELDS, **body, "id": str(uuid.uuid4()), "revision": 0}
            return _json(200, self.rules[rule_id])
        if request.method == "PUT":
            old = self.rules.get(rule_id)
            if old is None:
                return self._not_found(rule_id)
            self.rules[rule_id] = {**KIBANA_SERVER_FIELDS, **body, "id": old["id"], "revision": old["revision"] + 1}
            return _json(200, self.rules[rule_id])
        return _json(405, {"status_code": 405, "message": request.method})

    def _not_found(self, rule_id):
        return _json(404, {"status_code": 404, "message": f"rule_id: \"{rule_id}\" not found"})

    def _find(self, request: Request):
        page, per_page = int(request.arg("page", 1)), int(request.arg("per_page", 20))
        rules = sorted(self.rules.values(), key=lambda r: r["rule_id"])
        wanted = re.fullmatch(r'alert\.attributes\.tags:"([^"]*)"', request.arg("filter", "") or "")
        if request.arg("filter") and not wanted:
            return _json(400, {"status_code": 400, "message": "unsupported filter in this fake"})
        if wanted:
            rules = [r for r in rules if wanted.group(1) in r.get("tags", [])]
        chunk = rules[(page - 1) * per_page: page * per_page]
        return _json(200, {"page": page, "perPage": per_page, "total": len(rules), "data": chunk})


# splunkd's saved/searches endpoint as Splunk documents it. It takes the REST names, not the .conf ones:
# `is_scheduled` (enableSched), `alert_type` (counttype), `alert_comparator` (relation), `alert_threshold`
# (quantity); any other argument is refused with 'Argument "<name>" is not supported by this handler.'
# Sources: Splunk's REST API Reference, "Search endpoint descriptions", saved/searches POST
# (https://docs.splunk.com/Documentation/Splunk/latest/RESTREF/RESTsearch#saved.2Fsearches); the stored
# copy of that page the search tool reaches holds only its opening sections, so the argument list below
# is the one Splunk's own Go SDK transcribes from it (github.com/splunk/go-sdk, package entry,
# SavedSearchContent: every read/write argument, `args.*` and `dispatch.*` as documented wildcards),
# plus `action.<name>` / `action.<name>.<parameter>`, the alert-action family the page documents.
# Checked against it (issue 14): `alert.managedBy` and a `display.*` family were written from memory
# (savedsearches.conf keys, no REST argument) and are gone; `alert.suppress.group_name`,
# `dispatch.auto_cancel`, `dispatch.auto_pause`, `dispatch.indexedRealtimeOffset`,
# `dispatch.indexedRealtimeMinSpan`, `dispatch.rt_maximum_span` and the four `durable.*` arguments
# (instead of any `durable.` key) and the `auto_summarize.*` arguments by name were missing.
SPLUNK_PARAMS = {
    "actions", "alert.digest_mode", "alert.expires", "alert.severity", "alert.suppress", "alert.suppress.fields",
    "alert.suppress.group_name", "alert.suppress.period", "alert.track", "alert_comparator", "alert_condition",
    "alert_threshold", "alert_type", "allow_skew", "auto_summarize", "auto_summarize.command",
    "auto_summarize.cron_schedule", "auto_summarize.dispatch.earliest_time", "auto_summarize.dispatch.latest_time",
    "auto_summarize.dispatch.time_format", "auto_summarize.dispatch.ttl", "auto_summarize.max_concurrent",
    "auto_summarize.max_disabled_buckets", "auto_summarize.max_summary_ratio", "auto_summarize.max_summary_size",
    "auto_summarize.max_time", "auto_summarize.suspend_period", "auto_summarize.timespan", "cron_schedule",
    "description", "disabled", "dispatch.allow_partial_results", "dispatch.auto_cancel", "dispatch.auto_pause",
    "dispatch.buckets", "dispatch.earliest_time", "dispatch.index_earliest", "dispatch.index_latest",
    "dispatch.indexedRealtime", "dispatch.indexedRealtimeOffset", "dispatch.indexedRealtimeMinSpan",
    "dispatch.latest_time", "dispatch.lookups", "dispatch.max_count", "dispatch.max_time", "dispatch.reduce_freq",
    "dispatch.rt_backfill", "dispatch.rt_maximum_span", "dispatch.sample_ratio", "dispatch.spawn_process",
    "dispatch.time_format", "dispatch.ttl", "dispatchAs", "displayview", "durable.backfill_type", "durable.lag_time",
    "durable.max_backfill_intervals", "durable.track_time_type", "is_scheduled", "is_visible", "max_concurrent",
    "realtime_schedule", "request.ui_dispatch_app", "request.ui_dispatch_view", "restart_on_searchpeer_add",
    "run_n_times", "run_on_startup", "schedule_priority", "schedule_window", "search", "vsid", "workload_pool",
}
# Documented families: action.<action_name>[.<parameter>] (alert actions, ES's notable/risk among them),
# args.* and dispatch.* (the page's wildcard arguments).
SPLUNK_PARAM_PREFIXES = ("action.", "args.", "dispatch.")
# Listed among the arguments by the SDK too, but computed by splunkd (the next run, the expanded search):
# the reference calls them read-only, their value ignored on POST (not re-read from the page this time);
# the fake accepts and drops them.
SPLUNK_READ_ONLY = {"next_scheduled_time", "qualifiedSearch"}
SPLUNK_ENUMS = {
    "alert_type": {"always", "custom", "number of events", "number of hosts", "number of sources"},
    "alert_comparator": {"greater than", "less than", "equal to", "rises by", "drops by", "rises by perc", "drops by perc"},
}
SPLUNK_BOOLEANS = {"disabled", "is_scheduled", "is_visible", "alert.track", "alert.digest_mode", "alert.suppress",
                   "run_on_startup", "restart_on_searchpeer_add", "realtime_schedule"}
# What a GET shows for a search that did not set them (splunkd echoes every setting, REST names).
SPLUNK_DEFAULTS = {"disabled": "0", "is_scheduled": "0", "cron_schedule": "", "description": "", "alert.track": "0",
                   "alert_type": "always", "alert_comparator": "", "alert_threshold": "", "dispatch.earliest_time": "",
                   "dispatch.latest_time": "", "is_visible": "1", "next_scheduled_time": "", "qualifiedSearch": ""}


def _splunk_invalid(form: dict[str, str]) -> str | None:
    """The refusal real splunkd gives a saved/searches POST, or None."""
    for key in form:
        if key not in SPLUNK_PARAMS | SPLUNK_READ_ONLY | {"name"} and not key.startswith(SPLUNK_PARAM_PREFIXES):
            return f'Argument "{key}" is not supported by this handler.'
    for key, allowed in SPLUNK_ENUMS.items():
        if key in form and form[key] not in allowed:
            return f"Invalid value for {key}: {form[key]!r}"
    for key in SPLUNK_BOOLEANS & set(form):
        if form[key].strip().lower() not in ("0", "1", "true", "false", "t", "f", "yes", "no", "y", "n", "on", "off"):
            return f"Invalid boolean for {key}: {form[key]!r}"
    return None


class FakeSplunk(KVStoreEndpoints, FakeServer):
    """splunkd's saved/searches endpoints in one app namespace, Atom XML like splunkd's default output."""

    content_type = "text/xml; charset=utf-8"
    plus_is_space = True  # splunklib writes spaces in entity names as "+"

    def extra_headers(self):
        # splunklib reads a body only from a connection the server calls keep-alive, as splunkd does.
        return {"Connection": "Keep-Alive"}

    def __init__(self, app: str = "r53sigma_route53", username: str = "admin", password: str = "changeme",
                 token: str | None = None, installed: bool = True):
        super().__init__()
        self.app, self.username, self.password, self.token = app, username, password, token
        self.installed = installed
        self.session = "sk-" + uuid.uuid4().hex
        self.init_kvstore()
        # name -> (app, content); one search of another app shows through, as app-shared searches do.
        self.searches: dict[str, tuple[str, dict[str, str]]] = {"Other app search": ("search", {**SPLUNK_DEFAULTS, "search": "index=main"})}

    def error_body(self, status, message):
        return f'<?xml version="1.0" encoding="UTF-8"?>\n<response><messages><msg type="ERROR">{escape(message)}</msg></messages></response>'.encode()

    def _error(self, status, message):
        return status, {}, self.error_body(status, message)

    def route(self, request: Request):
        if request.path == "/services/auth/login" and request.method == "POST":
            form = request.form()
            if (form.get("username"), form.get("password")) != (self.username, self.password):
                return self._error(401, "Login failed")
            return 200, {}, f"<response><sessionKey>{self.session}</sessionKey></response>".encode()
        allowed = {f"Splunk {self.session}"} | ({f"Bearer {self.token}"} if self.token else set())
        if request.headers.get("authorization") not in allowed:
            return self._error(401, "call not properly authenticated")
        if request.path == f"/services/apps/local/{self.app}" and request.method == "GET":
            return (200, {}, self._feed([(self.app, "apps/local", {"label": "r53sigma", "version": "0.1.0"})])) if self.installed \
                else self._error(404, f"Could not find object id={self.app}")
        if self.installed and (kvstore := self.kvstore_route(request, Request.form)):
            return kvstore
        match = re.fullmatch(r"/servicesNS/nobody/([^/]+)/saved/searches(?:/(.*))?", request.path)
        if not match or match.group(1) != self.app:
            return self._error(404, f"no handler for {request.path}")
        if not self.installed:
            return self._error(404, f"Application does not exist: {self.app}")
        name = match.group(2) or None
        if request.method == "GET" and name is None:
            return 200, {}, self._feed([(n, "saved/searches", c, a) for n, (a, c) in sorted(self.searches.items())])
        if request.method == "GET":
            return self._entry_response(name)
        if request.method == "DELETE":
            if name not in self.searches or self.searches[name][0] != self.app:
                return self._error(404, f"Could not find object id={name}")
            del self.searches[name]
            return 200, {}, self._feed([])
        form = request.form()
        refusal = _splunk_invalid(form)
        if refusal:
            return self._error(400, refusal)
        form = {k: v for k, v in form.items() if k not in SPLUNK_READ_ONLY}
        if name is None:  # create
            new = form.pop("name", None)
            if not new or "search" not in form:
                return self._error(400, "Missing name or search")
            if new in self.searches:
                return self._error(409, f"An object with name={new} already exists")
            self.searches[new] = (self.app, {**SPLUNK_DEFAULTS, **_splunk_values(form)})
            return 201, {}, self._feed([(new, "saved/searches", self.searches[new][1])])
        if "name" in form:
            return self._error(400, 'Argument "name" is not supported by this handler.')
        if name not in self.searches:
            return self._error(404, f"Could not find object id={name}")
        app, content = self.searches[name]
        self.searches[name] = (app, {**content, **_splunk_values(form)})
        return self._entry_response(name)

    def _entry_response(self, name):
        if name not in self.searches:
            return self._error(404, f"Could not find object id={name}")
        app, content = self.searches[name]
        return 200, {}, self._feed([(name, "saved/searches", content, app)])

    def _feed(self, entries) -> bytes:
        parts = ['<?xml version="1.0" encoding="UTF-8"?>',
                 '<feed xmlns="http://www.w3.org/2005/Atom" xmlns:s="http://dev.splunk.com/ns/rest" '
                 'xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/">',
                 f"<title>feed</title><opensearch:totalResults>{len(entries)}</opensearch:totalResults>"]
        for entry in entries:
            name, collection, content = entry[:3]
            app = entry[3] if len(entry) > 3 else self.app
            href = f"/servicesNS/nobody/{app}/{collection}/{name}"
            keys = "".join(f'<s:key name="{escape(k)}">{escape(str(v))}</s:key>' for k, v in sorted(content.items()))
            acl = (f'<s:key name="eai:acl"><s:dict><s:key name="app">{escape(app)}</s:key><s:key name="owner">nobody</s:key>'
                   f'<s:key name="sharing">app</s:key></s:dict></s:key>')
            parts.append(f'<entry><title>{escape(name)}</title><id>{escape(href)}</id>'
                         f'<link href="{escape(href)}" rel="alternate"/><content type="text/xml"><s:dict>{keys}{acl}</s:dict></content></entry>')
        parts.append("</feed>")
        return "".join(parts).encode("utf-8")


def _splunk_values(form: dict[str, str]) -> dict[str, str]:
    out = {}
    for key, value in form.items():
        if key in SPLUNK_BOOLEANS:
            value = "1" if value.strip().lower() in ("1", "true", "t", "yes", "y", "on") else "0"
        out[key] = value
    return out
