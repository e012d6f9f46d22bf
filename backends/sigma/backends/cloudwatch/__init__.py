"""pySigma backends for Amazon CloudWatch Logs: Logs Insights queries and metric-filter patterns; see README.md in this folder."""
from .cloudwatch import CloudWatchLogsInsightsBackend
from .metric_filter import CloudWatchMetricFilterBackend

backends = {"cloudwatch": CloudWatchLogsInsightsBackend, "cloudwatch_metric_filter": CloudWatchMetricFilterBackend}

__all__ = ["CloudWatchLogsInsightsBackend", "CloudWatchMetricFilterBackend", "backends"]
