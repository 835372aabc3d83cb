"""Measuring: the timing loop, memory probes, and the regression gate's comparison."""
