"""Routing: policies by name, the outcome table they learn from, task features."""
