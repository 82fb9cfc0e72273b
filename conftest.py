"""Repository-level pytest configuration.

The Forge plugin itself needs no conftest: it is registered through the
``pytest11`` entry point. This file only enables ``pytester`` for tests/.
"""

pytest_plugins = ("pytester",)
