"""Benchmark support: a fast generator of realistic stores with a million waiting lines."""
