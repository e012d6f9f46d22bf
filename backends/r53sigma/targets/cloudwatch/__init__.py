"""The CloudWatch target room: ingestion (transformers, field indexes), the CloudFormation package,
the Logs Insights model (`insights_model`), the metric-filter pattern model (`filter_pattern_model`)
and their verify adapter (`verify`); the backends are the pySigma plugin sigma.backends.cloudwatch.
``cloudwatch_metric_filter`` is the second language of the room (JSON filter patterns, for alarms):
asked for by name (`convert -t cloudwatch_metric_filter`, `verify --target cloudwatch_metric_filter`).
Its correlations are Contributor Insights rules with their alarm (`contributor_insights`: a JSON
document, run by `contributor_insights_model`)."""
from r53sigma.targets.spec import Target


def _ingestion():
    from . import ingestion

    return ingestion.render()


def _package(rules, roots):
    from . import package

    return package.render(rules, roots)


def _verifier():
    from .verify import CloudWatchVerifier

    return CloudWatchVerifier()


def _deployer():
    from r53sigma.deploy import cloudwatch

    return cloudwatch, "CloudWatchTarget"


TARGET = Target(
    "cloudwatch", "route53_cloudwatch",
    "sigma.backends.cloudwatch:cloudwatch", "sigma.backends.cloudwatch:cloudwatch",
    "cwli", "cwli", ".cwli", ".cwli",
    order=3,
    render_ingestion=_ingestion,
    render_package=_package,
    verifier=_verifier,
    deployer=_deployer,
    deploy_name="cloudwatch",
    mapping_column="Logs Insights",
    package_companions=("cloudwatch_metric_filter",),  # the alarms' filter patterns
    window_guarantee=0.0,  # fixed bin() windows (sigma.backends.cloudwatch WINDOW_GUARANTEE)
    first_seen_refusal="Logs Insights keeps no state between runs (no lookup a query can write), so a "
    "scheduled query cannot know the values earlier runs saw; one query over the whole history each run "
    "is not what the pack schedules (r53sigma scan --baseline reads the same logs exported to S3)",
)

METRIC_FILTER = Target(
    "cloudwatch_metric_filter", "route53_cloudwatch",
    "sigma.backends.cloudwatch:cloudwatch_metric_filter", "sigma.backends.cloudwatch:cloudwatch_metric_filter",
    "filter_pattern", "contributor_insights", ".pattern", ".json",
    order=4,
    siem=False,
    verifier=_verifier,
    first_seen_refusal="a metric filter pattern tests one event at a time and keeps no values seen",
    correlates_unconverted_rules=True,  # Contributor Insights rules read the referred rules' conditions
    window_guarantee=0.0,  # Contributor Insights alarms see fixed, aligned periods (contributor_insights.py)
)
TARGETS = (TARGET, METRIC_FILTER)
