"""r53sigma: Sigma detections for Amazon Route 53 logs, converted for Elasticsearch, Splunk and CloudWatch."""

__version__ = "0.1.0"
