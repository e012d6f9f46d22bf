"""The cloudwatch target room."""
