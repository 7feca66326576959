"""Benchmarks that put numbers on the README's speed claims. Run by hand or with `make bench`; never by pytest."""
