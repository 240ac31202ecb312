"""Speed and memory harnesses, run as `python -m benchmarks.<name>`; not part of the package."""
