"""Benchmarks: each script prints its figures and ratios against a baseline of the same run."""
