"""Property: on the adversarial generator's rules and events (tests/adversarial.py), with correlations of every
type over them, ``r53sigma scan`` gives the same exit status, alerts and counts with both engines."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings

import adversarial

LONG_RUN = int(os.environ.get("R53SIGMA_ADVERSARIAL_EXAMPLES", "0"))


@settings(max_examples=LONG_RUN or 40, derandomize=not LONG_RUN, deadline=None, database=None,
          phases=[Phase.explicit, Phase.generate] if not LONG_RUN else list(Phase),
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(batch=adversarial.scan_batch())
def test_the_duckdb_engine_and_a_warm_scan_run_adversarial_rules_and_correlations_as_the_reference_does(batch):
    with tempfile.TemporaryDirectory() as folder:
        reference, duckdb, warm = adversarial.scan_both(batch, Path(folder), warm=True)
    assert duckdb == reference
    assert warm == reference  # the match plans of the compiled run, read back from its JSON
