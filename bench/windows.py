"""Measure how often each target's correlation query catches a burst the Sigma spec's sliding window fires on.

    python bench/windows.py [--trials 200] [--seed 13]

One event_count correlation (3 NXDOMAIN answers for one source in 5 minutes) is converted for every
SIEM target. Each trial is one burst of exactly 3 events spread over a random fraction of the span
(first and last event that far apart, the middle one between) at a random offset in an hour: the
reference engine fires once for every such burst. Each target's query runs on the burst with that
target's verify adapter (the SPL, ES|QL and Logs Insights models on the events as each target indexes
them); the table gives, per band of the burst's length, the share of bursts each target catches, and
any alert where the reference has none (there must be none).
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backends"))

from r53sigma import conversion, rules as rules_mod  # noqa: E402
from r53sigma.scan.records import format_time, parse_record  # noqa: E402
from r53sigma.scan.reference import Engine  # noqa: E402
from r53sigma.targets import registry  # noqa: E402
from r53sigma.verify import Case, _source_of  # noqa: E402

SPAN = 300
RULES = """
title: NX
id: 8c0f7a52-3c86-4d6a-9a3e-0d6a1f0b2c01
name: bench_nx
logsource: {product: aws, service: route53resolver}
detection: {sel: {rcode: NXDOMAIN}, condition: sel}
level: low
---
title: NX burst
id: 8c0f7a52-3c86-4d6a-9a3e-0d6a1f0b2c02
correlation: {type: event_count, rules: [bench_nx], group-by: [srcaddr], timespan: 5m, condition: {gte: 3}}
level: medium
"""
BANDS = [(0.0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.0)]


def record(seconds: int, n: int) -> dict:
    return {"version": "1.100000", "account_id": "111122223333", "region": "us-east-1", "vpc_id": "vpc-1",
            "query_timestamp": format_time(1714557600 + seconds), "query_name": f"n{n}.example.", "query_type": "A",
            "query_class": "IN", "rcode": "NXDOMAIN", "answers": [], "srcaddr": "10.0.0.5", "srcport": "40000",
            "transport": "UDP", "srcids": {"instance": "i-0abc"}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200, help="bursts per band")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench_nx_burst.yml"
        path.write_text(textwrap.dedent(RULES))
        loaded = rules_mod.load([path])
        correlation = loaded.collection.rules[-1]
        queries = {}
        for name in conversion.siem_targets():
            conv = next(c for c in conversion.convert_paths([path], [name])[0] if c.rule_id == str(correlation.id))
            queries[name] = conv
        engine = Engine(loaded.collection)
        source = _source_of(correlation)
        verifiers = {name: registry.get(name).verifier() for name in queries}
        caught = {name: [0] * len(BANDS) for name in queries}
        extra = {name: 0 for name in queries}
        for band, (low, high) in enumerate(BANDS):
            for _ in range(args.trials):
                length = int(rng.uniform(low, high) * SPAN)
                length = min(length, SPAN - 1)
                start = rng.randrange(0, 3600)
                times = [start, start + rng.randint(0, length), start + length]
                raws = [record(t, n) for n, t in enumerate(times)]
                case = Case("bench", "burst", raws, [parse_record(r, file="bench", line=n) for n, r in enumerate(raws, 1)])
                assert len(engine.evaluate(correlation, case.events)) == 1
                for name, conv in queries.items():
                    got = verifiers[name].evaluate(conv.language, conv.query, correlation, case, source)
                    caught[name][band] += got >= 1
                    extra[name] += max(0, got - 1)
    header = "target          " + "".join(f"  {int(lo * 100):>2}-{int(hi * 100):>3}% span" for lo, hi in BANDS) + "  extra alerts"
    print(f"{args.trials} bursts of 3 events per band (length of the burst as a share of the 5-minute span), reference: all fire")
    print(header)
    for name in queries:
        shares = "".join(f"  {100 * c / args.trials:>12.1f}%" for c in caught[name])
        print(f"{name:<16}{shares}  {extra[name]:>12}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
