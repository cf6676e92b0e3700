"""The streaming routing benchmark and its plots."""
