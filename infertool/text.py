"""Text taken from files or echoed from the command line, made safe to print."""

from __future__ import annotations

import re

ECHO_LIMIT = 120  # characters of user input (a path, a shape) echoed back in a message
# C0 controls but newline and tab, DEL and the C1 controls (CSI, OSC...): what drives a terminal
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: object) -> str:
    """`text` with control characters (ANSI escape sequences included) written as `\\xNN`, so a
    name or label from a hostile file cannot move the cursor, recolour or retitle the terminal."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))


def shorten(text: object, limit: int = ECHO_LIMIT) -> str:
    """Echoed input, printable and cut to `limit` characters (a 6,000-character shape string is
    not worth repeating)."""
    clean = printable(text)
    return clean if len(clean) <= limit else f"{clean[: limit - 1]}…"


def listing(names: list[str], limit: int = 8) -> str:
    """`a, b, c` for a few names; the first `limit` and a count for many."""
    shown = ", ".join(shorten(n, 40) for n in names[:limit])
    return shown if len(names) <= limit else f"{shown} and {len(names) - limit} more"


BOMS = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))


def decode(data: bytes) -> tuple[str, str] | None:
    """Text of a small text file and the encoding read: a BOM's, else UTF-8, else Latin-1
    (every byte is a Latin-1 character); None for binary data (NUL bytes without a BOM)."""
    for bom, encoding in BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding), encoding
            except UnicodeDecodeError:
                return None
    if b"\x00" in data:
        return None
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"


def byte_size(n: int | None) -> str:
    """1.5 MiB, 812 B; '-' for an unknown size."""
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return "-"
