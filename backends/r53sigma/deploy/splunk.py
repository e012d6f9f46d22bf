"""Deploy to Splunk: one saved search per rule in the pack's app namespace (`splunklib.client`).

Saved searches come from dist/splunk/<app>/default/savedsearches.conf, one stanza per rule named by
the rule's id (`r53sigma-<id>`, so a renamed rule is the same search), and live at
`servicesNS/nobody/<app>/saved/searches` (app-shared, owned by nobody). The app itself (field
extractions, event types) must be installed first from dist/splunk/<app>.spl: REST cannot upload an
app from this machine.

The .conf file and the REST API name some settings differently: `REST_NAMES` translates (Splunk REST
API reference, saved/searches: https://docs.splunk.com/Documentation/Splunk/latest/RESTREF/RESTsearch#saved.2Fsearches).
A user who changed a search's schedule or turned it on or off keeps that change: the keys in
`USER_KEYS` are set when a search is created and left alone on update unless `--force`. `--prune`
deletes only searches the pack created: named `r53sigma-<uuid>` (or its `-tstats` alternate, or a
first-seen rule's `-baseline` search) and carrying the pack's marker line in their description,
never a user's own search in the same app; `--only` selects a rule's baseline and alternate with it.

A first-seen rule's KV store collection (collections.conf) and its lookup definition (transforms.conf,
`external_type = kvstore`) are created or updated over REST before the searches
(deploy/splunk_kvstore.py), so an app installed before the rule was added needs no re-install; they
are never deleted (a collection holds the rule's baseline).
"""
from __future__ import annotations

import re
import socket
import ssl
import urllib.parse
from pathlib import Path

from r53sigma.deploy import dist as dist_files
from r53sigma.deploy.splunk_kvstore import KVStorePlan
from r53sigma.deploy.common import (
    CREATE, DELETE, UNCHANGED, UPDATE, Action, DeployError, Rejected, Retry, Unreachable, http_error,
)
from r53sigma.deploy.dist import DistError, Selection
from r53sigma.deploy.settings import Settings

NAME = "splunk"
KEYS = ["url", "app", "token", "username", "password", "ca_certs", "insecure"]
OWNER = "nobody"
SHARING = "app"
# savedsearches.conf name -> REST parameter name, where they differ
REST_NAMES = {"enableSched": "is_scheduled", "counttype": "alert_type", "relation": "alert_comparator", "quantity": "alert_threshold"}
USER_KEYS = frozenset({"cron_schedule", "is_scheduled", "disabled", "schedule_window", "schedule_priority"})
# -tstats: the alternates; -baseline: a first-seen rule's baseline search (targets/splunk/first_seen.py)
MANAGED_NAME = re.compile(r"^r53sigma-(?P<id>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})(?:-tstats|-baseline)?$")
MARKER = "Managed by r53sigma"  # the description's last line in every packaged search (targets/splunk/savedsearches.py)
TRUE, FALSE = {"1", "true", "t", "yes", "y", "on"}, {"0", "false", "f", "no", "n", "off"}
DEFAULT_PORT = 8089


def classify(error: BaseException) -> DeployError | None:
    from splunklib.binding import HTTPError

    if isinstance(error, HTTPError):
        detail = str(error).split(" -- ", 1)[1] if " -- " in str(error) else ""
        return http_error(error.status, "Splunk", detail)
    if isinstance(error, ssl.SSLError):
        return Unreachable(f"Splunk: TLS failure ({error}); give the CA with --ca-certs (or --insecure for a lab)")
    if isinstance(error, (ConnectionError, socket.timeout, socket.gaierror, OSError)):
        return Unreachable(f"Splunk: cannot connect ({error}); check --url (the management port, usually {DEFAULT_PORT})")
    return None


def comparable(value) -> str:
    """Splunk echoes booleans as 0/1 and trims values: compare the way it stores them."""
    text = "" if value is None else str(value).strip()  # an empty <s:key> reads back as None
    lowered = text.lower()
    return "1" if lowered in TRUE else "0" if lowered in FALSE else text


def connect(settings: Settings, app: str):
    from splunklib import client

    url = urllib.parse.urlsplit(settings.require("url", "--url"))
    options = {
        "scheme": url.scheme or "https", "host": url.hostname, "port": url.port or DEFAULT_PORT,
        "app": app, "owner": OWNER, "sharing": SHARING, "autologin": False,
        "verify": settings.verify_tls,  # splunklib's own default is no verification
    }
    if settings.verify_tls and settings.get("ca_certs"):
        options["context"] = ssl.create_default_context(cafile=settings.get("ca_certs"))
    if settings.get("token"):
        options["splunkToken"] = settings.get("token")
    else:
        options["username"] = settings.require("username", "--username (or a token)")
        options["password"] = settings.get("password") or ""
    return client.connect(**options)


def find_app(dist: Path) -> str:
    folder = dist / "splunk"
    apps = sorted(p.parent.parent.name for p in folder.glob("*/default/savedsearches.conf"))
    if not apps:
        raise DistError(f"{folder}/<app>/default/savedsearches.conf is missing: run `r53sigma package` first")
    return apps[0]


def rest_parameters(keys: dict[str, str]) -> dict[str, str]:
    """A stanza's settings under the REST API's names (`enableSched` is `is_scheduled`, ...)."""
    return {REST_NAMES.get(k, k): v for k, v in keys.items()}


def created_by_pack(name: str, content) -> bool:
    """A search the pack made: its name and its description's marker line, both."""
    lines = str(content.get("description") or "").strip().splitlines()
    return bool(MANAGED_NAME.match(name)) and bool(lines) and lines[-1].startswith(MARKER)


class SplunkTarget:
    label = "Splunk"

    def __init__(self, dist: Path, settings: Settings, selection: Selection, prune: bool = False,
                 force: bool = False, service=None):
        self.dist = dist
        self.settings = settings
        self.selection = selection
        self.prune = prune
        self.force = force
        self.app = settings.get("app") or find_app(dist)
        self._service = service

    def service(self, retry: Retry):
        if self._service is None:
            self._service = retry.call("connect to Splunk", lambda: connect(self.settings, self.app), classify)
        return self._service

    def _app_installed(self, service) -> bool:
        from splunklib.binding import HTTPError

        try:
            service.get(f"/services/apps/local/{urllib.parse.quote(self.app, safe='')}")
            return True
        except HTTPError as error:
            if error.status == 404:
                return False
            raise

    def _current(self, service) -> dict:
        return {s.name: s for s in service.saved_searches.list() if (s.access or {}).get("app") == self.app}

    def plan(self, retry: Retry) -> list[Action]:
        desired = dist_files.conf_stanzas(self.dist / "splunk" / find_app(self.dist) / "default" / "savedsearches.conf")
        defaults = desired.pop("default", {})  # .conf semantics: [default] applies to every stanza
        desired = {name: rest_parameters({**defaults, **keys}) for name, keys in desired.items() if self._selected(name, keys)}
        service = self.service(retry)
        if not retry.call(f"look up app {self.app}", lambda: self._app_installed(service), classify):
            raise Rejected(
                f"Splunk: the app {self.app!r} is not installed: install dist/splunk/{find_app(self.dist)}.spl "
                "(Apps > Manage Apps > Install app from file, or your deployment server), then deploy again"
            )
        selected_rules = {found.group("id") for found in map(MANAGED_NAME.match, desired) if found}
        # the first-seen rules' collections and lookups first: the searches read them
        actions: list[Action] = KVStorePlan(service, lambda rule_id: rule_id in selected_rules, classify).plan(
            retry, self.dist / "splunk" / find_app(self.dist))
        current = retry.call("list saved searches", lambda: self._current(service), classify)
        for name, keys in desired.items():
            if "search" not in keys:
                raise DistError(f"savedsearches.conf [{name}] has no search")
            live = current.get(name)
            if live is None:
                label = keys.get("action.correlationsearch.label", "")
                actions.append(Action("saved search", name, CREATE, label, run=self._create(service, name, keys)))
                continue
            managed = {k: v for k, v in keys.items() if self.force or k not in USER_KEYS}
            content = live.content
            differing = sorted(k for k, v in managed.items() if comparable(v) != comparable(content.get(k, "")))
            if not differing:
                actions.append(Action("saved search", name, UNCHANGED))
                continue
            kept = sorted(k for k in keys if k in USER_KEYS and comparable(keys[k]) != comparable(content.get(k, "")))
            note = "changed: " + ", ".join(differing) + (f"; keeps the user's {', '.join(kept)}" if kept and not self.force else "")
            actions.append(Action("saved search", name, UPDATE, note, run=self._update(live, managed)))
        if self.prune:
            for name in sorted(set(current) - set(desired)):
                if created_by_pack(name, current[name].content) and self._selected(name, current[name].content):
                    actions.append(Action("saved search", name, DELETE, "no longer in dist", run=self._delete(service, name)))
        return actions

    def _selected(self, name: str, keys) -> bool:
        found = MANAGED_NAME.match(name)
        return self.selection(rule_id=found.group("id") if found else None,
                              title=keys.get("action.correlationsearch.label") or (None if found else name))

    def _create(self, service, name: str, keys: dict):
        params = {k: v for k, v in keys.items() if k != "search"}
        return lambda: service.saved_searches.create(name, keys["search"], **params)

    def _update(self, live, keys: dict):
        params = {k: v for k, v in keys.items() if k != "search"}
        return lambda: live.update(search=keys["search"], **params)

    def _delete(self, service, name: str):
        def delete():
            try:
                service.saved_searches.delete(name)
            except KeyError:  # splunklib's word for 404: already gone is what we wanted
                pass
        return delete

    classify = staticmethod(classify)
