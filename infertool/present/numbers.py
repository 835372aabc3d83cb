"""Number formats, one style per kind of number: times in ms with 5 significant digits (as
trtexec), errors in e-notation, cosines with 6 decimals, shares as percentages."""

from __future__ import annotations

import math


def sig(value: float | None, digits: int = 5, thousands: bool = False) -> str:
    """Fixed point with `digits` significant digits (all of the integer part): 0.013123, 16.123, 1234.5."""
    if value is None or not math.isfinite(value):
        return "-" if value is None or math.isnan(value) else str(value)
    if value == 0:
        return "0"
    rounded = float(f"{value:.{digits}g}")
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(rounded))))
    shown = rounded if decimals else value
    return f"{shown:,.{decimals}f}" if thousands else f"{shown:.{decimals}f}"


def ms(value: float | None) -> str:
    return sig(value)


def error(value: float | None) -> str:
    """Absolute / relative errors: 0, or e-notation with 3 significant digits."""
    if value is None or math.isnan(value):
        return "-"
    return "0" if value == 0 else f"{value:.2e}"


def cosine(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.6f}"


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def general(value: float | None) -> str:
    """Values of any magnitude (output ranges): 5 significant digits, e-notation where needed."""
    return "-" if value is None or value != value else f"{value:.5g}"


def failing(agreement) -> str:
    """'k/N' samples failing one output, with the worst sample where some fail."""
    shown = f"{len(agreement.failing)}/{agreement.samples}"
    return shown + (f" (worst {agreement.worst})" if agreement.failing and agreement.worst is not None and agreement.samples > 1 else "")
