"""The DuckDB dialect's shortcuts mean what the reference engine means: CIDR as regexes, many wildcards as one regex."""
from __future__ import annotations

import ipaddress
import random
import re

import duckdb
from sigma.types import SpecialChars

from r53sigma.scan.sqlcompile import Dialect, TrinoDialect, ipv4_network_regex


def test_ipv4_network_regex_accepts_exactly_the_addresses_of_the_network():
    rng = random.Random(5)
    for net in ["10.0.0.0/8", "172.16.0.0/12", "100.64.0.0/10", "169.254.169.254/32", "1.2.3.128/25", "0.0.0.0/0"]:
        network = ipaddress.ip_network(net)
        pattern = re.compile(ipv4_network_regex(network))
        inside = [network.network_address + rng.randrange(network.num_addresses) for _ in range(300)]
        anywhere = [ipaddress.IPv4Address(rng.getrandbits(32)) for _ in range(300)]
        for address in inside + anywhere:
            assert bool(pattern.fullmatch(str(address))) == (address in network), (net, address)
        assert not pattern.fullmatch("010.0.0.1") and not pattern.fullmatch("10.0.0")


def test_many_wildcard_patterns_become_one_regex_with_like_semantics():
    star, one = SpecialChars.WILDCARD_MULTI, SpecialChars.WILDCARD_SINGLE
    patterns = [[star, ".duckdns.org"], ["a", one, "c"], [star, "(x)+", star], ["100%_\\"]]
    [sql] = Dialect().like_any("v", patterns)
    assert "regexp_full_match" in sql and len(TrinoDialect().like_any("v", patterns)) == 4
    con = duckdb.connect()
    for value, expected in [("x.duckdns.org", True), ("duckdns.org", False), ("abc", True), ("abbc", False),
                            ("a\nc", True), ("1(x)+2", True), ("100%_\\", True), ("100ab\\", False)]:
        assert con.execute(f"SELECT {sql} FROM (SELECT ? AS v)", [value]).fetchone()[0] is expected, value
