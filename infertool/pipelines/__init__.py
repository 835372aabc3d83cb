"""The use cases, one module per command: they compose the layers below, decide verdicts and
gates, and report progress through a Reporter (they never print)."""
