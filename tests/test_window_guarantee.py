"""verify's approximate cell: a target bound to fixed or hopping buckets passes a correlation case only
within its declared guarantee, and disagrees outside it."""
from r53sigma.targets import registry
from r53sigma.targets.spec import bursts_of_buckets
from r53sigma.verify import AGREE, APPROXIMATE, DISAGREE, WindowBound


def test_within_the_guarantee_is_approximate_and_outside_it_disagrees():
    assert WindowBound(exact=1, guaranteed=0, fraction=0.5).judge(0) == APPROXIMATE  # a long burst missed
    assert WindowBound(exact=1, guaranteed=1, fraction=0.5).judge(0) == DISAGREE  # a short burst missed
    assert WindowBound(exact=1, guaranteed=0, fraction=0.5).judge(2) == DISAGREE  # fires more than the spec
    assert WindowBound(exact=2, guaranteed=1, fraction=0.5).judge(2) == AGREE


def test_overlapping_or_touching_buckets_of_one_group_are_one_burst():
    rows = [{"timebucket": 0, "src": "a", "event_count": 3}, {"timebucket": 150, "src": "a", "event_count": 4},
            {"timebucket": 300, "src": "a", "event_count": 3}, {"timebucket": 1200, "src": "a", "event_count": 3},
            {"timebucket": 0, "src": "b", "event_count": 5}]
    assert bursts_of_buckets(rows, "timebucket", lambda k: k == "event_count", 300) == 3


def test_each_target_declares_its_window_guarantee():
    assert registry.get("splunk").window_guarantee is None  # streamstats time_window: the spec's window
    assert registry.get("elasticsearch").window_guarantee == 0.5  # hopping buckets, half a span apart
    assert registry.get("cloudwatch").window_guarantee == 0.0  # fixed bin() windows
