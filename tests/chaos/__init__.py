"""Fault tests: real worker processes, real signals, a real PostgreSQL server."""
