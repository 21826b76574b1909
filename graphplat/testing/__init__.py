"""Helpers shared by tests and users: real graph servers on free ports, parity checks."""
