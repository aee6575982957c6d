"""Benchmarks of `fleet` against its peers on a bed of OpenSSH hosts in network namespaces.

Not part of the test suite (tests/lab/test_benchmark_smoke.py runs a 4-host smoke size once).
Run `benchmarks/install` once, then `python -m benchmarks.run` as root; docs/performance.md holds
the results and the method.
"""
