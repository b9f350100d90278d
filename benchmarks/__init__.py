"""Benchmarks for taskflow, side by side with plain BackgroundTasks and fastapi-taskflow.

Run `python -m benchmarks --help`. The workloads are standalone scripts in `benchmarks/workloads/`, so
they also run inside the fastapi-taskflow virtual environments that the runner makes.
"""
