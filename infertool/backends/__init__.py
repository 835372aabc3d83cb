"""Backends: the runtimes a model runs on, one file per family, found through `registry`."""
