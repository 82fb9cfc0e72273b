"""L0: checks over records and files (the v0.1 manifest rules, schema, containment, hashes)."""
