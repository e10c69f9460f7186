"""Benchmarks of dagnats against hand-written nats-py equivalents (never run by tests)."""
