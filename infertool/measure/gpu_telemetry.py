"""GPU clocks, temperature and power around a measurement, read through NVML (nvidia-ml-py), and a
warning when the clocks fell while it ran: throttling changes results by up to 4x."""

from __future__ import annotations

from typing import Any

from infertool.optional import install_hint, is_available

CLOCK_DROP = 0.05  # a fall of more than 5 % in the SM or memory clock during a row is reported
# the nvmlClocksEventReason* bits that slow a GPU down (idle, application clocks and sync boost do not)
SLOWDOWNS = {0x4: "power cap", 0x8: "hardware slowdown", 0x20: "software thermal slowdown", 0x40: "hardware thermal slowdown", 0x80: "power brake"}


def _cuda_pci(device: int) -> tuple[int, int, int] | None:
    """(domain, bus, device) of a CUDA device: CUDA and NVML number GPUs differently
    (CUDA_VISIBLE_DEVICES, CUDA_DEVICE_ORDER), the PCI address is what they share."""
    if not is_available("cuda"):
        return None
    from infertool import cuda

    try:
        return cuda.device_properties(device)["pci"]
    except Exception:
        return None


def _value(read: Any, *args: Any) -> Any:
    try:
        return read(*args)
    except Exception:  # NVMLError_NotSupported and friends: that figure is missing, not the row
        return None


class GpuProbe:
    """NVML readings of the GPU behind a CUDA device index: `start()` before a row's timed loop,
    `finish()` after it."""

    def __init__(self, device: int):
        self.nvml: Any = None
        self.handle: Any = None
        self.index: int | None = None
        self.before: dict | None = None
        self.note = ""
        if not is_available("pynvml"):
            self.note = f"no NVML bindings ({install_hint('pynvml')})"
            return
        import pynvml

        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as exc:
            self.note = f"NVML unavailable: {exc}"
            return
        self.nvml = pynvml
        self.index, self.note = self._find(device)
        if self.index is not None:
            self.handle = pynvml.nvmlDeviceGetHandleByIndex(self.index)

    def _find(self, device: int) -> tuple[int | None, str]:
        nvml = self.nvml
        count = nvml.nvmlDeviceGetCount()
        pci = _cuda_pci(device)
        if pci is None:
            if count == 1:
                return 0, ""
            return None, f"cannot tell which of {count} NVML devices CUDA device {device} is without cuda-python ({install_hint('cuda')})"
        for index in range(count):
            info = nvml.nvmlDeviceGetPciInfo(nvml.nvmlDeviceGetHandleByIndex(index))
            if (info.domain, info.bus, info.device) == pci:
                return index, ""
        return None, f"NVML lists no GPU at CUDA device {device}'s PCI address {pci}"

    def read(self) -> dict | None:
        if self.handle is None:
            return None
        nvml, handle = self.nvml, self.handle
        power = _value(nvml.nvmlDeviceGetPowerUsage, handle)
        return {
            "sm_clock_mhz": _value(nvml.nvmlDeviceGetClockInfo, handle, nvml.NVML_CLOCK_SM),
            "memory_clock_mhz": _value(nvml.nvmlDeviceGetClockInfo, handle, nvml.NVML_CLOCK_MEM),
            "temperature_c": _value(nvml.nvmlDeviceGetTemperature, handle, nvml.NVML_TEMPERATURE_GPU),
            "power_w": None if power is None else round(power / 1000, 1),
            "slowdowns": self._slowdowns(),
        }

    def _slowdowns(self) -> list[str] | None:
        # the newer name first; older drivers and bindings know only the ThrottleReasons one
        for function in ("nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetCurrentClocksThrottleReasons"):
            reasons = _value(getattr(self.nvml, function), self.handle) if hasattr(self.nvml, function) else None
            if reasons is not None:
                return [name for bit, name in SLOWDOWNS.items() if reasons & bit]
        return None

    def start(self) -> None:
        self.before = self.read()

    def finish(self) -> dict:
        """The row's telemetry block: NVML index, readings before and after, and why any is missing."""
        try:
            after = self.read()
        finally:
            if self.nvml is not None:
                self.nvml.nvmlShutdown()
        return {"nvml_index": self.index, "before": self.before, "after": after, "note": self.note or None}


def clock_drop(telemetry: dict) -> str | None:
    """A warning when the SM or memory clock fell by more than CLOCK_DROP during the row."""
    before, after = telemetry.get("before") or {}, telemetry.get("after") or {}
    drops = []
    for key, what in (("sm_clock_mhz", "SM"), ("memory_clock_mhz", "memory")):
        start, end = before.get(key), after.get(key)
        if start and end is not None and end < start * (1 - CLOCK_DROP):
            drops.append(f"{what} clock {start} -> {end} MHz")
    if not drops:
        return None
    why = ", ".join(after.get("slowdowns") or []) or "no slowdown reason reported"
    return (f"GPU clocks dropped during the row ({'; '.join(drops)}; {why}, {after.get('temperature_c')} C): "
            "the numbers are not steady-state; let the GPU cool, check its power limit or lock clocks (nvidia-smi -lgc)")
