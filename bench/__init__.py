"""Benchmarks: scripts that print figures. Never run as tests; see bench/README.md."""
