"""The fake splunkd's KV store collection and transforms.conf endpoints, in the app's namespace.

From the Splunk REST API Reference ("KV store endpoint descriptions", "Configuration endpoint
descriptions") and the developer guide's example (dev.splunk.com, "Use the REST API to manage KV Store
collections and data": create with `name`, then POST `field.<name>` to the collection):

- `storage/collections/config`: GET lists, POST creates (`name` required, with the collection
  settings below; 409 when it exists);
- `storage/collections/config/<name>`: GET reads (404 when absent), POST updates (`field.<name>`,
  `accelerated_fields.<name>` and the settings; `name` is refused), DELETE removes;
- `configs/conf-transforms`: POST creates a stanza (`name` required, any other key is the stanza's);
  `configs/conf-transforms/<stanza>`: GET, POST (any key but `name`), DELETE.

A field's type is one collections.conf.spec allows (number|bool|string|time); any other argument is
refused the way splunkd refuses one ('Argument "x" is not supported by this handler.').
"""
from __future__ import annotations

import re

COLLECTION_SETTINGS = {"enforceTypes", "profilingEnabled", "profilingThresholdMs", "replicate",
                       "replication_dump_maximum_file_size", "replication_dump_strategy"}
FIELD_TYPES = {"number", "bool", "string", "time"}
# what a GET shows for a collection that set nothing (splunkd echoes its settings)
COLLECTION_DEFAULTS = {"disabled": "0", "enforceTypes": "false", "profilingEnabled": "false",
                       "profilingThresholdMs": "1000", "replicate": "false"}
STANZA_DEFAULTS = {"disabled": "0"}


def collection_refusal(form: dict[str, str], creating: bool) -> str | None:
    for key, value in form.items():
        if key == "name" and creating:
            continue
        if key.startswith("field.") and len(key) > 6:
            if value not in FIELD_TYPES:
                return f"Invalid type for {key}: {value!r}"
            continue
        if key.startswith("accelerated_fields.") and len(key) > 19:
            continue
        if key not in COLLECTION_SETTINGS:
            return f'Argument "{key}" is not supported by this handler.'
    return None


class KVStoreEndpoints:
    """Mixed into FakeSplunk: ``collections`` and ``transforms`` hold name -> content."""

    def init_kvstore(self):
        self.collections: dict[str, dict[str, str]] = {}
        self.transforms: dict[str, dict[str, str]] = {}

    def kvstore_route(self, request, form_of):
        match = re.fullmatch(rf"/servicesNS/nobody/{re.escape(self.app)}/(storage/collections/config|configs/conf-transforms)(?:/(.+))?",
                             request.path)
        if not match:
            return None
        kind, name = match.groups()
        store, collection = (self.collections, True) if kind.startswith("storage") else (self.transforms, False)
        if request.method == "GET":
            if name is None:
                return 200, {}, self._feed([(n, kind, c) for n, c in sorted(store.items())])
            if name not in store:
                return self._error(404, f"Could not find object id={name}")
            return 200, {}, self._feed([(name, kind, store[name])])
        if request.method == "DELETE":
            if name not in store:
                return self._error(404, f"Could not find object id={name}")
            del store[name]
            return 200, {}, self._feed([])
        form = form_of(request)
        if name is None:  # create
            new = form.pop("name", None)
            if not new:
                return self._error(400, 'Missing argument "name"')
            refusal = collection_refusal(form, creating=True) if collection else None
            if refusal:
                return self._error(400, refusal)
            if new in store:
                return self._error(409, f"An object with name={new} already exists")
            store[new] = {**(COLLECTION_DEFAULTS if collection else STANZA_DEFAULTS), **form}
            return 201, {}, self._feed([(new, kind, store[new])])
        if "name" in form:
            return self._error(400, 'Argument "name" is not supported by this handler.')
        refusal = collection_refusal(form, creating=False) if collection else None
        if refusal:
            return self._error(400, refusal)
        if name not in store:
            return self._error(404, f"Could not find object id={name}")
        store[name].update(form)
        return 200, {}, self._feed([(name, kind, store[name])])
