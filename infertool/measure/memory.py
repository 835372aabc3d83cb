"""Memory probes: peak host RSS growth over a block, and device memory in use."""

from __future__ import annotations

from pathlib import Path

import psutil

from infertool.optional import is_available

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kib(field: str) -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


class HostPeak:
    """Peak RSS growth over a block.

    On Linux the kernel's high-water mark (VmHWM) is reset at the start (clear_refs 5), so the
    peak is exact; elsewhere the peak of the RSS samples taken with `sample()` is used.
    """

    def __init__(self) -> None:
        self._process = psutil.Process()
        self.base = self._process.memory_info().rss
        self._peak = self.base
        try:
            _CLEAR_REFS.write_text("5")
            self.exact = _status_kib("VmHWM") is not None
        except OSError:
            self.exact = False

    def sample(self) -> None:
        self._peak = max(self._peak, self._process.memory_info().rss)

    def increase(self) -> int:
        self.sample()
        peak = _status_kib("VmHWM") if self.exact else None
        return max(0, (peak or self._peak) - self.base)


def gpu_used(device: int) -> int | None:
    """Bytes in use on the GPU (every process), or None without a CUDA runtime binding."""
    if not is_available("cuda"):
        return None
    from infertool import cuda

    try:
        return cuda.mem_used(device)
    except Exception:
        return None
