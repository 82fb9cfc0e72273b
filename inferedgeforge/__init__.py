"""The original v0.1 package name, kept so ``python -m inferedgeforge.cli`` and its library calls still work.

Everything lives in :mod:`pytest_inferedgeforge`; these modules only re-export it.
"""
