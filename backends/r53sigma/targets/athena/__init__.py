"""The Athena target: Trino SQL over AWS's documented Resolver query-log table (`backend`), with the
predicates of the shared SQL compiler (r53sigma.scan.sqlcompile). Not a SIEM: asked for by name
(`convert --target athena`), not packaged, verified or deployed."""
from r53sigma.targets.spec import Target

# No pySigma pipeline (pipeline ""): the SQL compiler reads the catalogue itself.
TARGET = Target(
    "athena", "", "r53sigma.targets.athena.backend:AthenaBackend", "r53sigma.targets.athena.backend:AthenaBackend",
    "sql", "sql", ".sql", ".sql",
    order=4,
    siem=False,
    window_guarantee=0.0,  # fixed epoch-aligned windows: a burst is caught only inside one window
    first_seen_refusal="the pack's Athena queries are one-off searches with no schedule and no table of "
    "values seen; r53sigma scan --baseline reads the same S3 logs with a baseline file",
)
