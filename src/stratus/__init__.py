"""Stratus: an OpenStack-compatible IaaS cloud, small and fast."""

__version__ = "0.1.0"
