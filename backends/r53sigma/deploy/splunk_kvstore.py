"""Deploy a first-seen rule's KV store collection and its lookup definition to Splunk over REST.

The app's default/collections.conf and the `external_type = kvstore` stanzas of its
default/transforms.conf (targets/splunk/first_seen.py) are what dist says. Each is read back and
created or updated in the app's namespace (servicesNS/nobody/<app>), before the saved searches that
read them:

- the collection: `POST storage/collections/config` with `name` creates it, then
  `POST storage/collections/config/<name>` with `field.<name>=<type>` defines its fields, as the
  developer guide's example does (dev.splunk.com, "Use the REST API to manage KV Store collections
  and data"; Splunk REST API Reference, "KV store endpoint descriptions"; the types as
  collections.conf.spec states them: number|bool|string|time). A field POST adds or changes the
  fields named and leaves the others;
- the lookup definition: `POST configs/conf-transforms` with `name` and the stanza's keys creates it,
  `POST configs/conf-transforms/<name>` with the changed keys updates it (REST API Reference,
  "Configuration endpoint descriptions": configs/conf-{file}).

Nothing here is ever deleted, `--prune` included: a collection holds the rule's baseline (the values
seen), which no dist can give back, and a user may have made the same name by hand.
"""
from __future__ import annotations

import re
from pathlib import Path

from r53sigma.deploy import dist as dist_files
from r53sigma.deploy.common import CREATE, UNCHANGED, UPDATE, Action, Retry

COLLECTIONS = "storage/collections/config"
TRANSFORMS = "configs/conf-transforms"
# the collection's name is the lookup's: r53sigma_first_seen_<rule id with underscores>
RULE_ID = re.compile(r"^r53sigma_first_seen_(?P<id>[0-9a-f]{8}(?:_[0-9a-f]{4}){3}_[0-9a-f]{12})$")


def desired(app_dir: Path) -> tuple[dict[str, dict], dict[str, dict]]:
    """(collection name -> its `field.*` settings, lookup name -> its transforms.conf keys), from dist."""
    path = app_dir / "default" / "collections.conf"
    if not path.exists():  # a dist without first-seen rules
        return {}, {}
    collections = {name: keys for name, keys in dist_files.conf_stanzas(path).items() if name != "default"}
    transforms = app_dir / "default" / "transforms.conf"
    lookups = {name: keys for name, keys in (dist_files.conf_stanzas(transforms).items() if transforms.exists() else [])
               if keys.get("external_type") == "kvstore" and keys.get("collection") in collections}
    return collections, lookups


def rule_id(name: str) -> str | None:
    found = RULE_ID.match(name)
    return found.group("id").replace("_", "-") if found else None


def _same(key: str, want: str, live) -> bool:
    text = "" if live is None else str(live).strip()
    if key == "fields_list":  # a list: splunkd may respace it
        return [f.strip() for f in want.split(",")] == [f.strip() for f in text.split(",")]
    return want.strip() == text


class KVStorePlan:
    """Plans the collections and lookup definitions; ``service``: a splunklib Service in the app's namespace."""

    def __init__(self, service, selected, classify):
        self.service, self.selected, self.classify = service, selected, classify

    def _read(self, path: str) -> dict | None:
        from splunklib.binding import HTTPError
        from splunklib.client import Entity

        try:
            return dict(Entity(self.service, path).content)
        except HTTPError as error:
            if error.status == 404:
                return None
            raise

    def plan(self, retry: Retry, app_dir: Path) -> list[Action]:
        collections, lookups = desired(app_dir)
        actions = []
        for name, fields in collections.items():
            if not self.selected(rule_id(name)):
                continue
            live = retry.call(f"read KV store collection {name}", lambda n=name: self._read(f"{COLLECTIONS}/{n}"), self.classify)
            if live is None:
                actions.append(Action("KV store collection", name, CREATE, run=self._create_collection(name, fields)))
                continue
            differing = {k: v for k, v in fields.items() if not _same(k, v, live.get(k))}
            if not differing:
                actions.append(Action("KV store collection", name, UNCHANGED))
            else:
                actions.append(Action("KV store collection", name, UPDATE, "changed: " + ", ".join(sorted(differing)),
                                      run=lambda n=name, d=differing: self.service.post(f"{COLLECTIONS}/{n}", **d)))
        for name, keys in lookups.items():
            if not self.selected(rule_id(name)):
                continue
            live = retry.call(f"read lookup definition {name}", lambda n=name: self._read(f"{TRANSFORMS}/{n}"), self.classify)
            if live is None:
                actions.append(Action("lookup definition", name, CREATE,
                                      run=lambda n=name, k=keys: self.service.post(TRANSFORMS, name=n, **k)))
                continue
            differing = {k: v for k, v in keys.items() if not _same(k, v, live.get(k))}
            if not differing:
                actions.append(Action("lookup definition", name, UNCHANGED))
            else:
                actions.append(Action("lookup definition", name, UPDATE, "changed: " + ", ".join(sorted(differing)),
                                      run=lambda n=name, d=differing: self.service.post(f"{TRANSFORMS}/{n}", **d)))
        return actions

    def _create_collection(self, name: str, fields: dict):
        def create():
            from splunklib.binding import HTTPError

            try:
                self.service.post(COLLECTIONS, name=name)
            except HTTPError as error:
                if error.status != 409:  # 409: made by this action's earlier attempt (a retried field POST)
                    raise
            if fields:
                self.service.post(f"{COLLECTIONS}/{name}", **fields)
        return create
