"""Benchmarks: `python -m bench` (or `scripts/bench`) prints tables measured side by side."""
