"""`r53sigma deploy` says what is wrong in one line: a missing extra, an HTML page where JSON was due,
a long error body retried, credentials over plain http."""
from __future__ import annotations

import sys

import boto3
import pytest
from botocore.stub import Stubber

from deploy_fakes import deploy, dist_fixture, isolate_environment
from deploy_fakes.servers import FakeElasticsearch, FakeKibana
from r53sigma.deploy.common import readable

SSO_PAGE = (b"<!DOCTYPE html>\n<html><head><title>Sign in - Corp SSO</title></head>\n<body>"
            + b"<p>please sign in</p>" * 200 + b"</body></html>")


@pytest.fixture
def dist(tmp_path, monkeypatch):
    isolate_environment(monkeypatch, tmp_path)
    return dist_fixture.build(tmp_path)


@pytest.mark.parametrize("target, module", [("elastic", "elasticsearch"), ("splunk", "splunklib"), ("cloudwatch", "boto3")])
def test_a_missing_deploy_extra_is_a_one_line_hint(target, module, dist, monkeypatch, capsys):
    for name in list(sys.modules):
        if name == module or name.startswith(module + "."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, module, None)  # what `import` meets when the package is absent
    argv = [target, "--dist", str(dist), "--dry-run", "--url", "https://127.0.0.1:9", "--kibana-url", "https://127.0.0.1:9",
            "--region", "us-east-1"]
    assert deploy(argv) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [line for line in err.strip().splitlines() if "r53sigma[deploy]" in line]
    assert f"missing module {module}" in err


def test_kibana_answering_200_with_an_html_page_is_a_clear_error(dist, monkeypatch, capsys):
    monkeypatch.setenv("R53SIGMA_ELASTIC_API_KEY", "es-key")
    with FakeElasticsearch() as es, FakeKibana() as kibana:
        kibana.fail("GET", r"^/api/detection_engine/rules", 200, times=100, body=SSO_PAGE)
        code = deploy(["elastic", "--dist", str(dist), "--url", es.url, "--kibana-url", kibana.url])
        assert not kibana.changes() and not es.changes()
    err = capsys.readouterr().err
    assert code == 1
    assert "answered HTTP 200 with an HTML page titled 'Sign in - Corp SSO', not JSON" in err
    assert "Traceback" not in err and "please sign in" not in err


def test_a_cloudwatch_500_with_an_html_body_is_retried_and_the_body_shown_once(dist, capsys):
    client = boto3.client("logs", region_name="us-east-1", aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret")
    with Stubber(client) as stubber:
        for _ in range(5):
            stubber.add_client_error("describe_account_policies", "500", SSO_PAGE.decode(), 500)
        code = deploy(["cloudwatch", "--dist", str(dist), "--region", "us-east-1"], targets={"client": client}, attempts=5)
    err = capsys.readouterr().err
    assert code == 1
    assert "please sign in" not in err
    assert err.count("an HTML page titled 'Sign in - Corp SSO'") == 2  # the first retry notice, then the final error
    assert err.count("the same error again") == 3 and "gave up after 5 attempts" in err


def test_credentials_over_plain_http_warn(dist, monkeypatch, capsys):
    monkeypatch.setenv("R53SIGMA_ELASTIC_API_KEY", "es-key")
    with FakeElasticsearch() as es, FakeKibana() as kibana:
        assert deploy(["elastic", "--dist", str(dist), "--url", es.url, "--kibana-url", kibana.url, "--dry-run"]) == 0
    err = capsys.readouterr().err
    assert f"warning: --url is {es.url}: plain http" in err and f"--kibana-url is {kibana.url}: plain http" in err
    assert "es-key" not in err


def test_no_warning_without_credentials(dist, capsys):
    with FakeElasticsearch() as es, FakeKibana() as kibana:
        deploy(["elastic", "--dist", str(dist), "--url", es.url, "--kibana-url", kibana.url, "--dry-run"])
    assert "plain http" not in capsys.readouterr().err


def test_readable_keeps_a_plain_message_and_names_an_html_page():
    assert readable("index not found") == "index not found"
    assert readable("<html><body>x</body></html>") == "an HTML page"
    assert len(readable("x" * 5000)) == 300
