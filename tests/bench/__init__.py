"""Benchmarks: run with ``python -m pytest -m bench tests/bench/<file> -s``."""
