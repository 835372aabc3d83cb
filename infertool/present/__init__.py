"""Presentation: number formats, tables as Markdown / HTML / CSV, plots and the report document. It
turns records into text and pictures; it decides nothing."""
