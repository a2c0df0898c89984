"""Throughput and memory benchmarks of the broker against bare floors (``python -m benchmarks --help``)."""
