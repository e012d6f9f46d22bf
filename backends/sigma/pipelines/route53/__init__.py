"""pySigma processing pipelines for Amazon Route 53 logs, built from r53sigma's field catalogue."""
from .cloudwatch import route53_cloudwatch_pipeline
from .elasticsearch import route53_elasticsearch_pipeline
from .splunk import route53_splunk_pipeline

pipelines = {
    "route53_cloudwatch": route53_cloudwatch_pipeline,
    "route53_elasticsearch": route53_elasticsearch_pipeline,
    "route53_splunk": route53_splunk_pipeline,
}

__all__ = ["pipelines"]
