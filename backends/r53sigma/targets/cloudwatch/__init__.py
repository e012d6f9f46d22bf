"""The CloudWatch target room: ingestion (transformers, field indexes), the CloudFormation package,
the Logs Insights model (`insights_model`) and its verify adapter (`verify`); the backend itself is
the pySigma plugin sigma.backends.cloudwatch."""
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
    window_guarantee=0.0,  # fixed bin() windows (sigma.backends.cloudwatch WINDOW_GUARANTEE)
)
