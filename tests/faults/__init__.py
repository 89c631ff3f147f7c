"""Fault tests: real Redis and PostgreSQL of their own, stopped and started under the running platform."""
