"""pySigma backend for Amazon CloudWatch Logs Insights; see README.md in this folder."""
from .cloudwatch import CloudWatchLogsInsightsBackend

backends = {"cloudwatch": CloudWatchLogsInsightsBackend}

__all__ = ["CloudWatchLogsInsightsBackend", "backends"]
