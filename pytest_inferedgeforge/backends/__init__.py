"""L1: one module per toolchain behind the Backend/Runner API in :mod:`.api`, found through :mod:`.registry`."""
