"""Glue that configures, starts and verifies Apache Superset's asynchronous query stack."""

__version__ = "0.1.0"
