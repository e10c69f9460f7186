"""Benchmarks of dagnats against hand-written nats-py equivalents (never tests)."""
