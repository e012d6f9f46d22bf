"""Deploy to Elasticsearch + Kibana: ingest pipelines and templates, then detection rules.

- Elasticsearch (official `elasticsearch` client): `PUT _ingest/pipeline/<id>`,
  `PUT _component_template/<name>`, `PUT _index_template/<name>` with the bodies in
  dist/elastic/{ingest_pipelines,component_templates,index_templates}/. The pack's objects carry
  `_meta.managed_by: r53sigma`; only those are candidates for `--prune`.
- Kibana detection engine (`/api/detection_engine/rules`, plain HTTPS with `kbn-xsrf`): rules from
  dist/elastic/rules.ndjson are found by `rule_id`, created with POST or replaced with PUT. A PUT
  replaces the whole rule, so the user's own state is carried over from the live rule: `enabled`,
  `exceptions_list` and `actions`. Every deployed rule carries the tag `r53sigma`, which is how
  `--prune` finds the pack's rules.
- With `--ioc-domains FILE`: the threat feed as the enrich policy the Resolver pipeline looks query
  names up in (r53sigma.deploy.elastic_ioc), after the ingestion objects and before the rules.
"""
from __future__ import annotations

import base64
import json
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from r53sigma.deploy import dist as dist_files
from r53sigma.deploy.common import (
    CREATE, DELETE, UNCHANGED, UPDATE, Action, DeployError, Retry, Unreachable,
    http_error, readable, subset_equal,
)
from r53sigma.deploy.dist import Selection
from r53sigma.deploy.settings import Settings, SettingsError

NAME = "elastic"
KEYS = ["url", "kibana_url", "space", "api_key", "username", "password", "ca_certs", "insecure", "ioc_domains"]
MANAGED_BY = "r53sigma"
RULE_TAG = "r53sigma"
USER_RULE_FIELDS = ("enabled", "exceptions_list", "actions")  # the user's, kept across updates
RULES_API = "/api/detection_engine/rules"
PAGE_SIZE = 100
TIMEOUT = 30
# dist/elastic sub-folders, in the order their objects must be put (index templates compose the others).
ES_KINDS = ("ingest_pipelines", "component_templates", "index_templates")
KIND_LABEL = {"ingest_pipelines": "ingest pipeline", "component_templates": "component template",
              "index_templates": "index template"}


class KibanaHTTPError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(f"HTTP {status}: {message}")
        self.status, self.message = status, message


def ssl_context(settings: Settings) -> ssl.SSLContext:
    if not settings.verify_tls:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=settings.get("ca_certs"))


class Kibana:
    """The few Kibana requests a deploy needs, with auth headers that are never logged."""

    def __init__(self, url: str, settings: Settings):
        self.base = url.rstrip("/") + (f"/s/{urllib.parse.quote(settings.get('space'))}" if settings.get("space") else "")
        self.context = ssl_context(settings) if url.startswith("https") else None
        self._headers = {"kbn-xsrf": "true", "elastic-api-version": "2023-10-31", "Content-Type": "application/json",
                         "Accept": "application/json"}
        if settings.get("api_key"):
            self._headers["Authorization"] = f"ApiKey {settings.get('api_key')}"
        elif settings.get("username"):
            pair = f"{settings.get('username')}:{settings.get('password') or ''}".encode()
            self._headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")

    def request(self, method: str, path: str, params: dict | None = None, body: dict | None = None):
        url = self.base + path + ("?" + urllib.parse.urlencode(params) if params else "")
        data = json.dumps(body).encode("utf-8") if body is not None else None
        request = urllib.request.Request(url, data=data, method=method, headers=self._headers)
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT, context=self.context) as response:
                payload = response.read()
            status = response.status
        except urllib.error.HTTPError as error:
            raise KibanaHTTPError(error.code, _error_message(error.read())) from None
        if not payload:
            return None
        try:
            return json.loads(payload)
        except ValueError:
            # e.g. an SSO or login proxy in front of Kibana answering 200 with its own page
            raise Unreachable(f"Kibana at {self.base} answered HTTP {status} with "
                              f"{readable(payload.decode('utf-8', 'replace'))}, not JSON: is a login or SSO proxy in front "
                              "of it? check --kibana-url and the credentials") from None


def _error_message(raw: bytes) -> str:
    try:
        data = json.loads(raw)
    except ValueError:
        return readable(raw.decode("utf-8", "replace"))
    if isinstance(data, dict):
        return str(data.get("message") or data.get("error") or data)[:500]
    return str(data)[:500]


def classify(error: BaseException) -> DeployError | None:
    from elastic_transport import ConnectionError as TransportConnectionError, TransportError
    from elasticsearch import ApiError, UnsupportedProductError

    if isinstance(error, KibanaHTTPError):
        return http_error(error.status, "Kibana", error.message)
    if isinstance(error, UnsupportedProductError):
        return Unreachable(f"Elasticsearch: the server at the --url is not Elasticsearch ({error.message})")
    if isinstance(error, ApiError):
        return http_error(error.meta.status, "Elasticsearch", _api_error_reason(error))
    if isinstance(error, TransportConnectionError):
        return Unreachable(f"Elasticsearch: cannot connect ({error.message}); check --url and the network")
    if isinstance(error, TransportError):
        return Unreachable(f"Elasticsearch: {error}")
    if isinstance(error, urllib.error.URLError):
        return Unreachable(f"Kibana: cannot connect ({error.reason}); check --kibana-url and the network")
    if isinstance(error, (socket.timeout, ConnectionError, ssl.SSLError)):
        return Unreachable(f"Kibana: {error}")
    return None


def _api_error_reason(error) -> str:
    body = error.body
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("reason") or body["error"].get("type"))[:500]
    return str(error.message)[:500]


def connect_elasticsearch(settings: Settings):
    from elasticsearch import Elasticsearch

    options = {"max_retries": 0, "retry_on_status": (), "request_timeout": TIMEOUT}  # retries are ours
    if settings.get("api_key"):
        options["api_key"] = settings.get("api_key")
    elif settings.get("username"):
        options["basic_auth"] = (settings.get("username"), settings.get("password") or "")
    if settings.require("url", "--url").startswith("https"):
        options["verify_certs"] = settings.verify_tls
        if settings.get("ca_certs"):
            options["ca_certs"] = settings.get("ca_certs")
        if not settings.verify_tls:
            options["ssl_show_warn"] = False
    return Elasticsearch(settings.get("url"), **options)


def normalise_template(body: dict) -> dict:
    """What Elasticsearch echoes for a template: settings flattened under `index.` with string values."""
    body = json.loads(json.dumps(body))
    holder = body.get("template") if isinstance(body.get("template"), dict) else None
    if holder is not None and isinstance(holder.get("settings"), dict):
        holder["settings"] = _flat_settings(holder["settings"])
    return body


def _flat_settings(settings: dict, prefix: str = "") -> dict:
    flat: dict[str, object] = {}
    for key, value in settings.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flat_settings(value, name + "."))
        else:
            flat[name if name.startswith("index.") else "index." + name] = _setting_value(value)
    return flat


def _setting_value(value):
    if isinstance(value, list):
        return [_setting_value(v) for v in value]
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _differences(desired: dict, current: dict) -> str:
    keys = [k for k, v in desired.items() if not subset_equal(v, current.get(k))]
    return "changed: " + ", ".join(keys) if keys else ""


class ElasticTarget:
    label = "Elasticsearch + Kibana"

    def __init__(self, dist: Path, settings: Settings, selection: Selection, prune: bool = False,
                 force: bool = False, es=None, kibana: Kibana | None = None):
        self.dist = dist / "elastic"
        self.settings = settings
        self.selection = selection
        self.prune = prune
        self.force = force  # --force: replace an index of the feed's name that r53sigma did not load
        self._es = es
        self._kibana = kibana

    @property
    def es(self):
        if self._es is None:
            self._es = connect_elasticsearch(self.settings)
        return self._es

    @property
    def kibana(self) -> Kibana:
        if self._kibana is None:
            self._kibana = Kibana(self.settings.require("kibana_url", "--kibana-url"), self.settings)
        return self._kibana

    # ---- Elasticsearch objects -------------------------------------------------------------
    def _current_es(self, kind: str) -> dict[str, dict]:
        from elasticsearch import NotFoundError

        try:
            if kind == "ingest_pipelines":
                return dict(self.es.ingest.get_pipeline().body or {})
            if kind == "component_templates":
                found = self.es.cluster.get_component_template().body
                return {t["name"]: t["component_template"] for t in found.get("component_templates", [])}
            found = self.es.indices.get_index_template().body
            return {t["name"]: t["index_template"] for t in found.get("index_templates", [])}
        except NotFoundError:  # no objects of that kind at all
            return {}

    def _put(self, kind: str, name: str, body: dict):
        if kind == "ingest_pipelines":
            return lambda: self.es.ingest.put_pipeline(id=name, body=body)
        if kind == "component_templates":
            return lambda: self.es.cluster.put_component_template(name=name, body=body)
        return lambda: self.es.indices.put_index_template(name=name, body=body)

    def _delete(self, kind: str, name: str):
        if kind == "ingest_pipelines":
            return lambda: self.es.ingest.delete_pipeline(id=name)
        if kind == "component_templates":
            return lambda: self.es.cluster.delete_component_template(name=name)
        return lambda: self.es.indices.delete_index_template(name=name)

    def plan_ingestion(self, retry: Retry) -> tuple[list[Action], list[Action]]:
        puts: list[Action] = []
        deletes: list[Action] = []
        for kind in ES_KINDS:
            desired = dist_files.json_objects(self.dist / kind)
            current = retry.call(f"read {KIND_LABEL[kind]}s", lambda: self._current_es(kind), classify)
            for name, body in desired.items():
                label = KIND_LABEL[kind]
                if name not in current:
                    puts.append(Action(label, name, CREATE, run=self._put(kind, name, body)))
                    continue
                want, have = (normalise_template(body), normalise_template(current[name])) if kind != "ingest_pipelines" else (body, current[name])
                if subset_equal(want, have):
                    puts.append(Action(label, name, UNCHANGED))
                else:
                    puts.append(Action(label, name, UPDATE, _differences(want, have), run=self._put(kind, name, body)))
            if self.prune:
                for name, body in sorted(current.items()):
                    if name not in desired and (body.get("_meta") or {}).get("managed_by") == MANAGED_BY:
                        deletes.append(Action(KIND_LABEL[kind], name, DELETE, "no longer in dist", run=self._delete(kind, name)))
        deletes.reverse()  # index templates before the component templates and pipelines they use
        return puts, deletes

    # ---- Kibana rules --------------------------------------------------------------------
    def _tagged_rules(self) -> dict[str, dict]:
        found: dict[str, dict] = {}
        page = 1
        while True:
            result = self.kibana.request("GET", f"{RULES_API}/_find", {
                "page": page, "per_page": PAGE_SIZE, "filter": f'alert.attributes.tags:"{RULE_TAG}"',
            })
            for rule in result.get("data", []):
                found[rule["rule_id"]] = rule
            if page * PAGE_SIZE >= int(result.get("total", 0)) or not result.get("data"):
                return found
            page += 1

    def _rule_by_id(self, rule_id: str) -> dict | None:
        try:
            return self.kibana.request("GET", RULES_API, {"rule_id": rule_id})
        except KibanaHTTPError as error:
            if error.status == 404:
                return None
            raise

    def plan_rules(self, retry: Retry) -> tuple[list[Action], list[Action]]:
        desired = {}
        for rule in dist_files.ndjson(self.dist / "rules.ndjson"):
            if self.selection(str(rule.get("rule_id")), rule.get("name")):
                tags = list(rule.get("tags") or [])
                desired[str(rule["rule_id"])] = {**rule, "tags": tags if RULE_TAG in tags else [*tags, RULE_TAG]}
        current = retry.call("find the pack's rules in Kibana", self._tagged_rules, classify)
        for rule_id in desired:
            if rule_id not in current:  # an untagged copy must be updated, not created twice
                found = retry.call(f"read rule {rule_id}", lambda: self._rule_by_id(rule_id), classify)
                if found is not None:
                    current[rule_id] = found
        puts: list[Action] = []
        for rule_id, rule in desired.items():
            label = f"{rule.get('name')} [{rule_id}]"
            live = current.get(rule_id)
            if live is None:
                puts.append(Action("detection rule", label, CREATE, run=self._create(rule)))
                continue
            compared = {k: v for k, v in rule.items() if k not in USER_RULE_FIELDS}
            if subset_equal(compared, live):
                puts.append(Action("detection rule", label, UNCHANGED))
                continue
            body = {**rule, **{k: live[k] for k in USER_RULE_FIELDS if k in live}}
            note = _differences(compared, live)
            if "enabled" in live and live["enabled"] != rule.get("enabled"):
                note += f"; keeps enabled={str(live['enabled']).lower()}"
            puts.append(Action("detection rule", label, UPDATE, note, run=self._update(body)))
        deletes = []
        if self.prune:
            for rule_id, live in sorted(current.items()):
                if rule_id not in desired and RULE_TAG in (live.get("tags") or []) and self.selection(rule_id, live.get("name")):
                    deletes.append(Action("detection rule", f"{live.get('name')} [{rule_id}]", DELETE, "no longer in dist",
                                          run=self._delete_rule(rule_id)))
        return puts, deletes

    def _create(self, rule: dict):
        return lambda: self.kibana.request("POST", RULES_API, body=rule)

    def _update(self, rule: dict):
        return lambda: self.kibana.request("PUT", RULES_API, body=rule)

    def _delete_rule(self, rule_id: str):
        return lambda: self.kibana.request("DELETE", RULES_API, {"rule_id": rule_id})

    def plan(self, retry: Retry) -> list[Action]:
        dist_files.require_dir(self.dist)
        if self.selection.everything:
            es_puts, es_deletes = self.plan_ingestion(retry)
        else:  # --only: the named rules, not the shared ingestion objects
            es_puts, es_deletes = [], []
        feed = self.plan_feed(retry)
        rule_puts, rule_deletes = self.plan_rules(retry)
        return es_puts + feed + rule_puts + rule_deletes + es_deletes

    def plan_feed(self, retry: Retry) -> list[Action]:
        """--ioc-domains FILE: the threat feed as the enrich policy the Resolver pipeline looks up (elastic_ioc)."""
        path = self.settings.get("ioc_domains")
        if not path:
            return []
        from r53sigma import ioc
        from r53sigma.deploy.elastic_ioc import FeedPlanner

        try:
            entries = ioc.read(path)
        except ioc.IocListError as error:
            raise SettingsError(f"--ioc-domains: {error}") from None
        if not entries:
            raise SettingsError(f"--ioc-domains: {path} holds no domain")
        return FeedPlanner(self.es, self.dist, entries, force=self.force).plan(retry, classify)

    classify = staticmethod(classify)
