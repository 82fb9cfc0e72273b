"""L2: plan, build, cache, smoke, benchmark, parity, runs, catalog, reproduce; the only layer asking the registry."""
