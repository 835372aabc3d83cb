"""The typer layer: parse options, call the core, render results. No ML imports at module level."""
