"""Benchmarks (`feature-service bench ...`) and their naive baselines."""
