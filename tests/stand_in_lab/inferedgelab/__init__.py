"""Test double of InferEdgeLab, used only by tests/test_runs_via_lab.py (never on sys.path otherwise)."""
