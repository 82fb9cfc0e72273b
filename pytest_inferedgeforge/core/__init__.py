"""The engine behind both faces of Forge. Nothing here imports pytest."""
