"""`r53sigma deploy splunk` against an in-process fake splunkd (splunklib.client, Atom XML)."""
from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request

import pytest

from deploy_fakes import Sleeps, deploy, dist_fixture, isolate_environment
from deploy_fakes.servers import FakeSplunk

TXT = "r53sigma-0b7d3c2a-1111-4aaa-8bbb-000000000001"  # Resolver TXT queries to a paste site
METADATA = "r53sigma-0b7d3c2a-1111-4aaa-8bbb-000000000002"  # Resolver query for the instance metadata name
APP = dist_fixture.APP
CONF_ONLY_NAMES = {"enableSched", "counttype", "relation", "quantity"}


@pytest.fixture
def dist(tmp_path, monkeypatch):
    isolate_environment(monkeypatch, tmp_path)
    monkeypatch.setenv("R53SIGMA_SPLUNK_PASSWORD", "changeme")
    return dist_fixture.build(tmp_path)


@pytest.fixture
def splunk():
    with FakeSplunk(app=APP, token="tok-123") as server:
        yield server


def argv(dist, splunk, *extra):
    return ["splunk", "--dist", str(dist), "--url", splunk.url, "--username", "admin", *extra]


def ours(splunk):
    return {name: content for name, (app, content) in splunk.searches.items() if app == APP}


def packaged_stanzas(dist):
    from r53sigma.deploy.dist import conf_stanzas

    return conf_stanzas(dist / "splunk" / APP / "default" / "savedsearches.conf")


def test_first_deploy_creates_one_saved_search_per_rule_in_the_app(dist, splunk):
    assert deploy(argv(dist, splunk)) == 0
    assert set(ours(splunk)) == {TXT, METADATA}
    stanza = packaged_stanzas(dist)[TXT]
    live = ours(splunk)[TXT]
    assert live["search"] == stanza["search"] and live["cron_schedule"] == "*/5 * * * *" and live["is_scheduled"] == "1"
    assert (live["alert_type"], live["alert_comparator"], live["alert_threshold"]) == ("number of events", "greater than", "0")
    assert live["action.correlationsearch.label"] == "Resolver TXT queries to a paste site"
    assert all(r.path.startswith(("/services/auth/login", f"/services/apps/local/{APP}", f"/servicesNS/nobody/{APP}/"))
               for r in splunk.requests)
    assert "Other app search" in splunk.searches  # another app's search is never touched


def test_redeploy_plans_zero_changes(dist, splunk, capsys):
    assert deploy(argv(dist, splunk)) == 0
    writes = len(splunk.changes())
    capsys.readouterr()
    assert deploy(argv(dist, splunk)) == 0
    assert "0 to create, 0 to update, 0 to delete, 2 unchanged" in capsys.readouterr().out
    assert len(splunk.changes()) == writes


def test_update_keeps_the_users_schedule_unless_forced(dist, splunk, tmp_path, capsys):
    assert deploy(argv(dist, splunk)) == 0
    ours(splunk)[TXT].update(is_scheduled="0", cron_schedule="0 * * * *")  # the admin slowed it down, then paused it
    changed = dist_fixture.RULE_TXT.replace("query_type: TXT", "query_type: ANY")
    dist_fixture.build(tmp_path, {"txt_paste.yml": changed, "metadata_name.yml": dist_fixture.RULE_METADATA})
    capsys.readouterr()
    assert deploy(argv(dist, splunk)) == 0
    assert "keeps the user's cron_schedule, is_scheduled" in capsys.readouterr().out
    live = ours(splunk)[TXT]
    assert 'record_type="ANY"' in live["search"]
    assert (live["is_scheduled"], live["cron_schedule"]) == ("0", "0 * * * *")
    assert deploy(argv(dist, splunk)) == 0 and "2 unchanged" in capsys.readouterr().out
    assert deploy(argv(dist, splunk, "--force")) == 0
    assert (ours(splunk)[TXT]["is_scheduled"], ours(splunk)[TXT]["cron_schedule"]) == ("1", "*/5 * * * *")


def test_prune_deletes_only_the_packs_own_searches_that_dist_dropped(dist, splunk, tmp_path):
    assert deploy(argv(dist, splunk)) == 0
    # a user's own searches in the same app: one of their own, and a copy of ours renamed to an id-like
    # name without the pack's marker; neither is the pack's to delete
    splunk.searches["My DNS report"] = (APP, {"search": "sourcetype=aws:route53:resolver | stats count"})
    lookalike = "r53sigma-0b7d3c2a-1111-4aaa-8bbb-0000000000ff"
    splunk.searches[lookalike] = (APP, {**ours(splunk)[METADATA], "description": "my tuned copy"})
    dist_fixture.build(tmp_path, {"txt_paste.yml": dist_fixture.RULE_TXT})
    assert deploy(argv(dist, splunk)) == 0
    assert METADATA in ours(splunk)
    assert deploy(argv(dist, splunk, "--prune")) == 0
    assert set(ours(splunk)) == {TXT, "My DNS report", lookalike} and "Other app search" in splunk.searches


def test_deploy_speaks_the_rest_api_names_never_the_conf_ones(dist, splunk):
    assert deploy(argv(dist, splunk)) == 0
    posted = [r.form() for r in splunk.requests if r.method == "POST" and "/saved/searches" in r.path]
    assert posted and all(not (CONF_ONLY_NAMES & set(form)) for form in posted)
    assert all({"is_scheduled", "alert_type", "alert_comparator", "alert_threshold"} <= set(form) for form in posted)


def test_fake_splunkd_refuses_conf_names_bad_values_and_ignores_read_only_ones(splunk):
    def post(**form):
        data = "&".join(f"{k}={urllib.parse.quote(v)}" for k, v in form.items()).encode()
        request = urllib.request.Request(f"{splunk.url}/servicesNS/nobody/{APP}/saved/searches", data=data,
                                         headers={"Authorization": "Bearer tok-123"})
        try:
            with urllib.request.urlopen(request) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    status, body = post(name="a", search="index=main", enableSched="1")
    assert status == 400 and 'Argument "enableSched" is not supported by this handler.' in body
    assert post(name="b", search="index=main", alert_comparator="bigger than")[0] == 400
    assert post(name="c", search="index=main", next_scheduled_time="2030-01-01")[0] == 201
    assert splunk.searches["c"][1]["next_scheduled_time"] == ""  # read-only: ignored on POST


def test_a_renamed_rule_updates_its_search_and_keeps_the_users_state(dist, splunk, tmp_path, capsys):
    assert deploy(argv(dist, splunk)) == 0
    ours(splunk)[TXT].update(is_scheduled="0", disabled="0")  # the admin enabled it, then paused its schedule
    renamed = dist_fixture.RULE_TXT.replace("title: Resolver TXT queries to a paste site", "title: TXT lookups of paste sites")
    dist_fixture.build(tmp_path, {"txt_paste.yml": renamed, "metadata_name.yml": dist_fixture.RULE_METADATA})
    capsys.readouterr()
    assert deploy(argv(dist, splunk)) == 0
    assert "0 to create, 1 to update, 0 to delete" in capsys.readouterr().out
    live = ours(splunk)[TXT]
    assert live["action.correlationsearch.label"] == "TXT lookups of paste sites"
    assert (live["is_scheduled"], live["disabled"]) == ("0", "0")


def test_only_selects_by_rule_id_or_title(dist, splunk):
    assert deploy(argv(dist, splunk, "--only", "Resolver query for the instance metadata name")) == 0
    assert set(ours(splunk)) == {METADATA}
    assert deploy(argv(dist, splunk, "--only", "0b7d3c2a-1111-4aaa-8bbb-000000000001")) == 0
    assert set(ours(splunk)) == {TXT, METADATA}


def test_dry_run_changes_nothing(dist, splunk, capsys):
    assert deploy(argv(dist, splunk, "--dry-run")) == 0
    assert "2 to create" in capsys.readouterr().out
    assert not splunk.changes() and not ours(splunk)


def test_token_auth_is_sent_as_bearer(dist, splunk, monkeypatch):
    monkeypatch.setenv("R53SIGMA_SPLUNK_TOKEN", "tok-123")
    assert deploy(["splunk", "--dist", str(dist), "--url", splunk.url]) == 0
    assert not [r for r in splunk.requests if r.path == "/services/auth/login"]
    assert set(ours(splunk)) == {TXT, METADATA}


def test_bad_password_is_an_auth_failure(dist, splunk, monkeypatch, capsys):
    monkeypatch.setenv("R53SIGMA_SPLUNK_PASSWORD", "nope")
    assert deploy(argv(dist, splunk)) == 1
    err = capsys.readouterr().err
    assert "Splunk: authentication failed (HTTP 401)" in err and "nope" not in err
    assert not ours(splunk)


def test_missing_app_says_to_install_the_package_first(dist, capsys):
    with FakeSplunk(app=APP, installed=False) as splunk:
        assert deploy(argv(dist, splunk)) == 1
    assert f"install dist/splunk/{APP}.spl" in capsys.readouterr().err


def test_throttling_and_unavailability_are_retried(dist, splunk):
    splunk.fail("GET", r"/saved/searches/?$", 503)
    splunk.fail("POST", r"/saved/searches/?$", 429, times=2)
    sleeps = Sleeps()
    assert deploy(argv(dist, splunk), sleeps=sleeps) == 0
    assert sleeps == [1.0, 1.0, 2.0]
    assert set(ours(splunk)) == {TXT, METADATA}


def test_partial_failure_reports_each_search(dist, splunk, capsys):
    splunk.fail("POST", r"/saved/searches/?$", 400,
                body=b'<response><messages><msg type="ERROR">Error in \'search\' command: bad</msg></messages></response>')
    assert deploy(argv(dist, splunk)) == 1
    captured = capsys.readouterr()
    assert f"FAILED: create saved search {TXT}: Splunk: HTTP 400: Error in 'search' command: bad" in captured.err
    assert f"applied: create saved search {METADATA}" in captured.out
    assert "1 of 2 changes applied, 1 failed" in captured.err
    assert set(ours(splunk)) == {METADATA}


def test_unreachable_management_port(dist, capsys):
    assert deploy(["splunk", "--dist", str(dist), "--url", "http://127.0.0.1:9", "--username", "admin"]) == 1
    assert "Splunk: cannot connect" in capsys.readouterr().err


def test_fake_splunkd_takes_the_documented_arguments_only():
    """The fake's argument list (deploy_fakes/servers.py, from Splunk's REST reference as its Go SDK
    transcribes it): .conf-only names and keys written from memory are refused like splunkd refuses them."""
    from deploy_fakes.servers import _splunk_invalid

    assert _splunk_invalid({"search": "x", "is_scheduled": "1", "alert.suppress.group_name": "g", "dispatch.auto_cancel": "30",
                            "action.notable.param.severity": "low", "next_scheduled_time": ""}) is None
    for conf_only in ("enableSched", "counttype", "relation", "quantity", "alert.managedBy", "display.general.type", "durable.anything"):
        assert _splunk_invalid({"search": "x", conf_only: "1"}) == f'Argument "{conf_only}" is not supported by this handler.'


def test_a_first_seen_baseline_search_is_the_packs_to_select_and_prune(dist, splunk):
    assert deploy(argv(dist, splunk)) == 0
    rule_id = "0b7d3c2a-1111-4aaa-8bbb-0000000000aa"  # a first-seen rule an earlier dist had, since removed
    marker = "keeps the KV store baseline r53sigma_first_seen_x.\nManaged by r53sigma (rule 0b7d3c2a-...)"
    splunk.searches[f"r53sigma-{rule_id}-baseline"] = (APP, {**ours(splunk)[TXT], "description": marker})
    splunk.searches[f"r53sigma-{rule_id}-mine"] = (APP, {**ours(splunk)[TXT], "description": marker})  # not a pack name
    assert deploy(argv(dist, splunk, "--prune", "--only", TXT.removeprefix("r53sigma-"))) == 0
    assert f"r53sigma-{rule_id}-baseline" in ours(splunk)  # --only names another rule
    assert deploy(argv(dist, splunk, "--prune")) == 0
    assert f"r53sigma-{rule_id}-baseline" not in ours(splunk) and f"r53sigma-{rule_id}-mine" in ours(splunk)


# ---- first-seen rules: their KV store collection and lookup definition over REST

FIRST_SEEN = "r53sigma-0b7d3c2a-1111-4aaa-8bbb-000000000005"
COLLECTION = "r53sigma_first_seen_0b7d3c2a_1111_4aaa_8bbb_000000000005"
FIELDS = {"field.account_id": "string", "field.query": "string", "field.first_seen": "number", "field.last_seen": "number"}


@pytest.fixture
def first_seen_dist(dist, tmp_path):
    return dist_fixture.build(tmp_path, {**dist_fixture.RULES, "first_seen.yml": dist_fixture.RULE_FIRST_SEEN})


def post(splunk, path, **form):
    data = "&".join(f"{k}={urllib.parse.quote(v)}" for k, v in form.items()).encode()
    request = urllib.request.Request(f"{splunk.url}/servicesNS/nobody/{APP}/{path}", data=data,
                                     headers={"Authorization": "Bearer tok-123"})
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_deploy_creates_the_first_seen_collection_and_lookup_before_the_searches(first_seen_dist, splunk):
    assert deploy(argv(first_seen_dist, splunk)) == 0
    assert {k: v for k, v in splunk.collections[COLLECTION].items() if k.startswith("field.")} == FIELDS
    lookup = splunk.transforms[COLLECTION]
    assert (lookup["external_type"], lookup["collection"]) == ("kvstore", COLLECTION)
    assert lookup["fields_list"] == "_key, account_id, query, first_seen, last_seen"
    assert set(splunk.transforms) == {COLLECTION}  # the app's CSV lookup stanza is the app install's alone
    writes = [r for r in splunk.changes()]
    order = [("storage" in r.path, "conf-transforms" in r.path, "saved/searches" in r.path) for r in writes]
    assert order.index((False, False, True)) > max(i for i, o in enumerate(order) if o[0] or o[1])
    created = next(r for r in writes if r.path.endswith("/storage/collections/config"))
    assert created.form() == {"name": COLLECTION}  # then its fields, on the collection (the guide's example)
    assert {FIRST_SEEN, f"{FIRST_SEEN}-baseline"} <= set(ours(splunk))


def test_redeploy_and_an_app_installed_collection_plan_no_change(first_seen_dist, splunk, capsys):
    # the app's default/collections.conf and transforms.conf, as an app install leaves them
    splunk.collections[COLLECTION] = {"disabled": "0", **FIELDS}
    splunk.transforms[COLLECTION] = {"external_type": "kvstore", "collection": COLLECTION,
                                     "fields_list": "_key,account_id,query,first_seen,last_seen"}
    assert deploy(argv(first_seen_dist, splunk)) == 0
    assert not [r for r in splunk.changes() if "saved/searches" not in r.path]
    writes = len(splunk.changes())
    capsys.readouterr()
    assert deploy(argv(first_seen_dist, splunk)) == 0
    assert "0 to create, 0 to update, 0 to delete, 6 unchanged" in capsys.readouterr().out
    assert len(splunk.changes()) == writes


def test_a_collection_missing_a_field_gets_only_that_field(first_seen_dist, splunk, capsys):
    splunk.collections[COLLECTION] = {"disabled": "0", **{k: v for k, v in FIELDS.items() if k != "field.last_seen"},
                                      "field.mine": "string"}
    assert deploy(argv(first_seen_dist, splunk)) == 0
    assert "changed: field.last_seen" in capsys.readouterr().out
    posted = [r.form() for r in splunk.changes() if r.path.endswith(f"/storage/collections/config/{COLLECTION}")]
    assert posted == [{"field.last_seen": "number"}]
    assert splunk.collections[COLLECTION]["field.mine"] == "string"  # a field POST changes only what it names


def test_prune_never_deletes_a_collection_or_lookup(first_seen_dist, splunk, tmp_path):
    assert deploy(argv(first_seen_dist, splunk)) == 0
    splunk.collections["my_collection"] = {"field.x": "string"}
    dist_fixture.build(tmp_path, dist_fixture.RULES)  # the first-seen rule retired
    assert deploy(argv(first_seen_dist, splunk, "--prune")) == 0
    assert FIRST_SEEN not in ours(splunk) and f"{FIRST_SEEN}-baseline" not in ours(splunk)  # the pack's searches
    assert set(splunk.collections) == {COLLECTION, "my_collection"} and COLLECTION in splunk.transforms  # the baseline data
    assert not [r for r in splunk.requests if r.method == "DELETE" and ("storage" in r.path or "conf-" in r.path)]


def test_only_takes_a_first_seen_rules_collection_with_its_searches(first_seen_dist, splunk):
    assert deploy(argv(first_seen_dist, splunk, "--only", TXT.removeprefix("r53sigma-"))) == 0
    assert not splunk.collections and not splunk.transforms
    assert deploy(argv(first_seen_dist, splunk, "--only", "First-seen query name in an account")) == 0
    assert COLLECTION in splunk.collections and COLLECTION in splunk.transforms


def test_fake_splunkd_kv_store_endpoints_refuse_what_splunkd_refuses(splunk):
    assert post(splunk, "storage/collections/config", name="c")[0] == 201
    assert post(splunk, "storage/collections/config", name="c")[0] == 409
    status, body = post(splunk, "storage/collections/config/c", **{"field.a": "text"})
    assert status == 400  # not a collections.conf.spec type
    status, body = post(splunk, "storage/collections/config/c", fields_list="a")
    assert status == 400 and 'Argument "fields_list" is not supported by this handler.' in body
    assert post(splunk, "storage/collections/config/c", name="d")[0] == 400
    assert post(splunk, "storage/collections/config/c", **{"field.a": "number", "enforceTypes": "true"})[0] == 200
    assert post(splunk, "storage/collections/config/missing", **{"field.a": "number"})[0] == 404
    assert post(splunk, "configs/conf-transforms", external_type="kvstore")[0] == 400  # no name
    assert post(splunk, "configs/conf-transforms", name="c", external_type="kvstore", collection="c")[0] == 201
    assert post(splunk, "configs/conf-transforms/c", name="x")[0] == 400
