"""Splunk room: the Route 53 technology add-on (`addon`) and the events Splunk then sees (`events`)."""
from .addon import render
from .events import event_from_raw

__all__ = ["event_from_raw", "render"]
