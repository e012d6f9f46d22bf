"""Splunk room: the Route 53 technology add-on (`addon`), the events Splunk then sees (`events`),
the app package (`app`), the SPL model (`spl_model`) and its verify adapter (`verify`)."""
from r53sigma.targets.spec import Target

from .addon import render
from .events import event_from_raw


def _package(rules, roots):
    from . import app

    return app.render(rules)


def _first_seen(rule, spec, query):
    from .first_seen import native_form

    return native_form(rule, spec, query)


def _verifier():
    from .verify import SplunkVerifier

    return SplunkVerifier()


def _deployer():
    from r53sigma.deploy import splunk

    return splunk, "SplunkTarget"


TARGET = Target(
    "splunk", "route53_splunk",
    "r53sigma.targets.splunk.lookups:LookupSplunkBackend", "r53sigma.targets.splunk.backend:SlidingWindowSplunkBackend",
    "spl", "spl", ".spl", ".spl",
    order=2,
    render_ingestion=render,
    render_package=_package,
    verifier=_verifier,
    deployer=_deployer,
    deploy_name="splunk",
    mapping_column="Splunk (CIM / raw)",
    first_seen=_first_seen,  # a KV store baseline and two saved searches (first_seen.py)
    first_seen_form="KV store baseline and its two saved searches",
    package_companions=("splunk_data_model",),  # the app's disabled `-tstats` alternates
)

# tstats over the accelerated CIM data model (`-f data_model`), asked for by name or packaged with the
# app as alternates; no verifier of its own: tests/targets/splunk/test_splunk_data_model.py runs it.
DATA_MODEL = Target(
    "splunk_data_model", "route53_splunk",
    "r53sigma.targets.splunk.backend:DataModelSplunkBackend", "r53sigma.targets.splunk.backend:DataModelSplunkBackend",
    "spl_tstats", "spl_tstats", ".spl", ".spl",
    order=5,
    siem=False,
)
TARGETS = (TARGET, DATA_MODEL)

__all__ = ["DATA_MODEL", "TARGET", "TARGETS", "event_from_raw", "render"]
