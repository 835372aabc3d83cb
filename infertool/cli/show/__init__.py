"""What each command prints, one small module per command, from its records through present/ and the
terminal tables of grid.py."""
