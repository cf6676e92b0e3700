"""Verification: where tests run (local, docker), bounded processes, test results and the verdict."""
