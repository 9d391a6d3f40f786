"""Sinks: one module or package per target system; each applies replay units."""
