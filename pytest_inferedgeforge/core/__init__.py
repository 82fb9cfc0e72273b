"""The engine behind both faces of Forge (plugin and CLI); it has no dependency on the test framework."""
