"""Helpers shared by the tests (imported as ``helpers.*``; ``pythonpath`` in pyproject)."""
