"""``make bench-tenancy``: shared table vs partitions vs a database per tenant.

See ``docs/tenancy-benchmark.md`` for the method and the results; ``python -m
bench.tenancy --help`` for the knobs.
"""
