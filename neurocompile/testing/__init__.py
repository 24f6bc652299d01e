"""Helpers for testing compiled models, including the pytest plugin."""
