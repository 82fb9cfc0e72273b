"""L2: plan, build, cache, smoke, benchmark, parity, runs, catalog and reproduce; the only layer that asks the backend registry."""
