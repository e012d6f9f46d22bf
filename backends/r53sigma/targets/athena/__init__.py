"""The Athena target: Trino SQL over AWS's documented Resolver query-log table (`backend`)."""
