"""Helpers shared by the tests: a real modxd process and a CLI runner."""
