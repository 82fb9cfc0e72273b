"""L3: the ``inferedgeforge`` command line."""
