"""What every deploy target shares: settings precedence, secrets, retries, .conf reading, --only."""
from __future__ import annotations

import pytest

from deploy_fakes import Sleeps
from r53sigma.deploy import common, settings
from r53sigma.deploy.dist import RuleNames, Selection, conf_stanzas


def test_flags_beat_target_env_beat_generic_env_beat_config_file(tmp_path):
    config = tmp_path / "deploy.toml"
    config.write_text('[splunk]\nurl = "https://from-file:8089"\napp = "file_app"\nusername = "file_user"\ninsecure = true\n')
    environ = {"R53SIGMA_SPLUNK_USERNAME": "target_env_user", "R53SIGMA_USERNAME": "generic_user", "R53SIGMA_APP": "env_app"}
    resolved = settings.resolve("splunk", ["url", "app", "username", "insecure"], {"url": "https://flag:8089"}, str(config), environ)
    assert resolved.values == {"url": "https://flag:8089", "app": "env_app", "username": "target_env_user", "insecure": True}
    assert resolved.verify_tls is False


def test_tls_is_verified_unless_turned_off():
    assert settings.resolve("elastic", ["insecure"], {}, None, {"HOME": "/nonexistent"}).verify_tls is True
    assert settings.resolve("elastic", ["insecure"], {}, None, {"R53SIGMA_INSECURE": "false"}).verify_tls is True


def test_secrets_are_masked_in_every_printed_form(tmp_path):
    resolved = settings.resolve("elastic", ["api_key", "url"], {}, None, {"R53SIGMA_API_KEY": "TOPSECRET", "HOME": str(tmp_path)})
    assert resolved.get("api_key") == "TOPSECRET"
    assert "TOPSECRET" not in repr(resolved) and "TOPSECRET" not in str(resolved)


def test_missing_setting_names_every_way_to_give_it():
    with pytest.raises(settings.SettingsError, match="--kibana-url, R53SIGMA_ELASTIC_KIBANA_URL or \\[elastic\\] kibana_url"):
        settings.Settings("elastic").require("kibana_url", "--kibana-url")


def test_explicit_config_file_must_exist(tmp_path):
    with pytest.raises(settings.SettingsError, match="config file not found"):
        settings.resolve("splunk", ["url"], {}, str(tmp_path / "absent.toml"), {})


def test_log_groups_from_env_pairs():
    resolved = settings.resolve("cloudwatch", ["log_groups"], {}, None, {"R53SIGMA_LOG_GROUPS": "resolver=/a, public_zone=/b"})
    assert resolved.get("log_groups") == {"resolver": "/a", "public_zone": "/b"}
    with pytest.raises(settings.SettingsError):
        settings.parse_pairs("resolver")


def test_retry_backs_off_exponentially_with_a_cap_and_gives_up():
    sleeps, calls = Sleeps(), []

    def flaky():
        calls.append(1)
        raise common.Transient("HTTP 503")

    with pytest.raises(common.Transient, match="gave up after 6 attempts"):
        common.Retry(attempts=6, base_delay=1, max_delay=5, sleep=sleeps, log=lambda m: None).call("x", flaky, lambda e: None)
    assert sleeps == [1, 2, 4, 5, 5] and len(calls) == 6


def test_retry_does_not_repeat_rejections_or_auth_failures():
    sleeps = Sleeps()
    for error in (common.Rejected("bad"), common.AuthFailed("401")):
        with pytest.raises(type(error)):
            common.Retry(sleep=sleeps).call("x", lambda: (_ for _ in ()).throw(error), lambda e: None)
    assert sleeps == []


def test_http_statuses_map_to_the_deploy_errors():
    assert isinstance(common.http_error(401, "K"), common.AuthFailed)
    assert isinstance(common.http_error(403, "K"), common.AuthFailed)
    assert isinstance(common.http_error(429, "K"), common.Transient)
    assert isinstance(common.http_error(503, "K"), common.Transient)
    assert type(common.http_error(400, "K")) is common.Rejected


def test_subset_equal_ignores_server_added_keys_but_not_changed_or_dropped_ones():
    assert common.subset_equal({"a": 1, "b": [{"c": 2}]}, {"a": 1, "b": [{"c": 2, "added": 0}], "id": "x"})
    assert not common.subset_equal({"a": 1}, {"a": 2})
    assert not common.subset_equal({"b": [1, 2]}, {"b": [1]})


def test_conf_reader_keeps_continued_lines_and_the_default_stanza(tmp_path):
    conf = tmp_path / "savedsearches.conf"
    conf.write_text("# header\n[default]\ndisabled = 1\n\n[Rule A]\nsearch = index=x \\\n| stats count\naction.email =\n")
    assert conf_stanzas(conf) == {"default": {"disabled": "1"}, "Rule A": {"search": "index=x \n| stats count", "action.email": ""}}


def test_only_matches_ids_or_titles_case_insensitively_and_reports_unknown_names():
    selection = Selection(["abc-1", "second RULE", "nothing"], RuleNames({"abc-1": "First rule", "abc-2": "Second rule"}))
    assert selection("abc-1") and selection(title="First rule")
    assert selection(title="Second rule") and selection("abc-2")
    assert not selection("abc-3", "Third")
    assert selection.unmatched() == ["nothing"]
