"""Opt-in checks against real endpoints; skipped unless R53SIGMA_LIVE_* settings are in the environment.

They deploy the bundled pack (built into a temp dist/) and prove the second run plans no change.
By default they only plan (--dry-run); set R53SIGMA_LIVE_APPLY=1 to let them write.

    # Elasticsearch 9 + Kibana (use an API key with the privileges in the README)
    R53SIGMA_LIVE_ELASTIC_URL=https://es:9200 R53SIGMA_LIVE_KIBANA_URL=https://kibana:5601 \
    R53SIGMA_ELASTIC_API_KEY=... pytest tests/test_deploy_live.py -k elastic
    # Splunk (management port; the app from dist/splunk/*.spl installed first)
    R53SIGMA_LIVE_SPLUNK_URL=https://splunk:8089 R53SIGMA_SPLUNK_TOKEN=... pytest tests/test_deploy_live.py -k splunk
    # CloudWatch Logs (credentials from the usual AWS chain or R53SIGMA_CLOUDWATCH_PROFILE)
    R53SIGMA_LIVE_CLOUDWATCH_REGION=us-east-1 pytest tests/test_deploy_live.py -k cloudwatch
"""
from __future__ import annotations

import os

import pytest

from deploy_fakes import deploy

if not any(key.startswith("R53SIGMA_LIVE_") for key in os.environ):
    pytest.skip("no R53SIGMA_LIVE_* settings: live deploy tests skipped", allow_module_level=True)
package = pytest.importorskip("r53sigma.package", reason="the package command is not in this tree")
APPLY = os.environ.get("R53SIGMA_LIVE_APPLY") == "1"


def live(name: str) -> str:
    value = os.environ.get(f"R53SIGMA_LIVE_{name}")
    if not value:
        pytest.skip(f"R53SIGMA_LIVE_{name} not set: live test skipped")
    return value


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    out = tmp_path_factory.mktemp("live") / "dist"
    package.write(out, package.build().files)
    return out


def cycle(argv: list[str], capsys) -> None:
    if not APPLY:
        assert deploy([*argv, "--dry-run"]) == 0
        return
    assert deploy(argv) == 0
    capsys.readouterr()
    assert deploy([*argv, "--dry-run"]) == 0
    assert " 0 to create, 0 to update, 0 to delete" in capsys.readouterr().out


def test_live_elastic(dist, capsys):
    cycle(["elastic", "--dist", str(dist), "--url", live("ELASTIC_URL"), "--kibana-url", live("KIBANA_URL")], capsys)


def test_live_splunk(dist, capsys):
    cycle(["splunk", "--dist", str(dist), "--url", live("SPLUNK_URL")], capsys)


def test_live_cloudwatch(dist, capsys):
    cycle(["cloudwatch", "--dist", str(dist), "--region", live("CLOUDWATCH_REGION")], capsys)
