"""The benchmark suite (``python -m benchmarks``); no test imports it."""
