"""`r53sigma deploy elastic --ioc-domains FILE`: the user's threat feed as the enrich policy the Resolver
pipeline looks query names up in (r53sigma.targets.elasticsearch.ioc_enrich), from the bodies in
dist/elastic/enrich/.

In order (Elasticsearch enrich APIs, https://www.elastic.co/guide/en/elasticsearch/reference/current/enrich-apis.html):

1. the source index ``r53sigma-ioc-domains``, replaced when the feed changed (DELETE, ``PUT <index>``
   with the mappings and the feed's sha256 in ``_meta``, ``POST _bulk`` of ``{domain, category}``
   documents, ``_id`` = the domain, refreshed), so a domain dropped from the feed is gone;
2. the ``match`` policy (``PUT _enrich/policy/<name>``). A policy cannot be updated: a changed one is
   deleted and put again, after the lookup pipeline that references it is deleted (Elasticsearch
   refuses to delete a policy a pipeline uses);
3. ``PUT _enrich/policy/<name>/_execute`` (waits for completion): the enrich index is a copy of the
   source index made here, so every load is followed by an execution;
4. the lookup pipeline ``r53sigma-resolver-ioc`` (only valid once the policy has been executed),
   carrying the feed's sha256 in ``_meta``: the record that this feed was executed, so a rerun with
   the same feed changes nothing, and a run interrupted before this step executes again.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from r53sigma import ioc
from r53sigma.deploy.common import CREATE, UNCHANGED, UPDATE, Action, Rejected, subset_equal
from r53sigma.deploy.dist import DistError, _read_json

FOLDER = "enrich"
BULK_CHUNK = 5000  # documents per _bulk request (10,000 lines)
FEED_META = "r53sigma_feed_sha256"


def feed_digest(entries: list[ioc.Entry]) -> str:
    return hashlib.sha256(ioc.lookup_csv(entries).encode("utf-8")).hexdigest()


def bodies(dist: Path) -> tuple[tuple[str, dict], tuple[str, dict], tuple[str, dict]]:
    """(index name, body), (policy name, body), (pipeline id, body) from dist/elastic/enrich/."""
    folder = dist / FOLDER
    found = {}
    for suffix in ("index", "policy", "pipeline"):
        paths = sorted(folder.glob(f"*.{suffix}.json")) if folder.is_dir() else []
        if len(paths) != 1:
            raise DistError(f"{folder}: expected one *.{suffix}.json (the threat-feed enrich objects); "
                            "rebuild the package with `r53sigma package`")
        found[suffix] = (paths[0].name[: -len(f".{suffix}.json")], _read_json(paths[0]))
    return found["index"], found["policy"], found["pipeline"]


class FeedPlanner:
    """The actions that make the cluster's enrich policy hold ``entries``."""

    def __init__(self, es, dist: Path, entries: list[ioc.Entry], force: bool = False):
        self.force = force
        self.es, self.entries, self.digest = es, entries, feed_digest(entries)
        (self.index, self.index_body), (self.policy, self.policy_body), (self.pipeline, pipeline) = bodies(dist)
        self.pipeline_body = {**pipeline, "_meta": {**pipeline.get("_meta", {}), FEED_META: self.digest}}

    # ---- reading the current state
    def _index_digest(self) -> str | None | bool:
        """The loaded feed's digest; None: no index; False: an index without our marker."""
        from elasticsearch import NotFoundError

        try:
            found = self.es.indices.get_mapping(index=self.index).body
        except NotFoundError:
            return None
        meta = (found.get(self.index, {}).get("mappings") or {}).get("_meta") or {}
        return meta.get(FEED_META, False)

    def _current_policy(self) -> dict | None:
        policies = self.es.enrich.get_policy(name=self.policy).body.get("policies") or []
        return policies[0].get("config") if policies else None

    def _current_pipeline(self) -> dict | None:
        from elasticsearch import NotFoundError

        try:
            return (self.es.ingest.get_pipeline(id=self.pipeline).body or {}).get(self.pipeline)
        except NotFoundError:
            return None

    def plan(self, retry, classify) -> list[Action]:
        loaded = retry.call("read the threat-feed index", self._index_digest, classify)
        policy = retry.call("read the enrich policy", self._current_policy, classify)
        pipeline = retry.call("read the lookup pipeline", self._current_pipeline, classify)
        actions: list[Action] = []
        feed_changed = loaded != self.digest
        note = f"{len(self.entries)} domains"
        if loaded is False:  # a user's own index of that name: never deleted unless asked
            if not self.force:
                from r53sigma.deploy.settings import SettingsError
                raise SettingsError(f"--ioc-domains: index {self.index} exists and r53sigma did not load it "
                                    f"(no {FEED_META} in its _meta); it is left alone: rename it, or give --force to replace it")
            note += "; replaces an index r53sigma did not load (--force)"
        actions.append(Action("threat-feed index", self.index, (CREATE if loaded is None else UPDATE) if feed_changed else UNCHANGED,
                              note if feed_changed else "", run=self._load if feed_changed else None))
        (kind, wanted), = self.policy_body.items()
        policy_same = policy is not None and subset_equal(wanted, policy.get(kind)) and set(policy) == {kind}
        if policy is None:
            actions.append(Action("enrich policy", self.policy, CREATE, run=self._put_policy))
        elif not policy_same:
            actions.append(Action("enrich policy", self.policy, UPDATE, "a policy cannot change: deleted and put again",
                                  run=self._replace_policy))
        else:
            actions.append(Action("enrich policy", self.policy, UNCHANGED))
        stale = feed_changed or not policy_same or pipeline is None or not subset_equal(self.pipeline_body, pipeline)
        actions.append(Action("enrich policy execution", self.policy, UPDATE if stale else UNCHANGED,
                              "builds the enrich index from the feed" if stale else "", run=self._execute if stale else None))
        if pipeline is None or not policy_same:
            actions.append(Action("ingest pipeline", self.pipeline, CREATE, run=self._put_pipeline))
        elif stale:
            actions.append(Action("ingest pipeline", self.pipeline, UPDATE, "records the executed feed", run=self._put_pipeline))
        else:
            actions.append(Action("ingest pipeline", self.pipeline, UNCHANGED))
        return actions

    # ---- applying
    def _load(self) -> None:
        from elasticsearch import NotFoundError

        try:
            self.es.indices.delete(index=self.index)
        except NotFoundError:
            pass
        mappings = {**self.index_body.get("mappings", {})}
        mappings["_meta"] = {**mappings.get("_meta", {}), FEED_META: self.digest}
        self.es.indices.create(index=self.index, mappings=mappings)
        for start in range(0, len(self.entries), BULK_CHUNK):
            operations: list[dict] = []
            for entry in self.entries[start:start + BULK_CHUNK]:
                operations.append({"index": {"_index": self.index, "_id": entry.domain}})
                operations.append({"domain": entry.domain, **({"category": entry.category} if entry.category else {})})
            result = self.es.bulk(operations=operations).body
            if result.get("errors"):
                reasons = [i for item in result.get("items", []) for i in item.values() if i.get("error")]
                raise Rejected(f"Elasticsearch: _bulk refused {len(reasons)} documents, e.g. {reasons[0].get('error')}")
        self.es.indices.refresh(index=self.index)

    def _put_policy(self) -> None:
        self.es.enrich.put_policy(name=self.policy, **self.policy_body)

    def _replace_policy(self) -> None:
        from elasticsearch import NotFoundError

        try:
            self.es.ingest.delete_pipeline(id=self.pipeline)
        except NotFoundError:
            pass
        self.es.enrich.delete_policy(name=self.policy)
        self._put_policy()

    def _execute(self) -> None:
        self.es.enrich.execute_policy(name=self.policy, wait_for_completion=True)

    def _put_pipeline(self) -> None:
        self.es.ingest.put_pipeline(id=self.pipeline, body=self.pipeline_body)

