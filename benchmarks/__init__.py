"""Benchmarks of shopify-sessions against hand-written raw-driver code (see README.md)."""
