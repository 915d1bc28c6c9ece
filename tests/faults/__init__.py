"""Fault-injection tools for the reliability suite: a loopback HTTP proxy and a run report."""
