"""Measuring: timing loops, statistics, memory probes, and the bench orchestration."""
