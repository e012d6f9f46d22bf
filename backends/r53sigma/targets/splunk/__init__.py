"""The splunk target room."""
