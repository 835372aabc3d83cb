"""FAKE pynvml (nvidia-ml-py): GPUs that exist only here, for CPU-only CI. It reads nothing.

Only the names infertool calls, spelled as nvidia-ml-py spells them (tests/test_gpu_telemetry.py
checks every name against the real module). Scripted with environment variables:

- FAKE_NVML_GPUS: how many GPUs (default 1); GPU i sits at PCI address 0:(i+1):0 (the fake cuda
  runtime's device 0 sits at 0:1:0, so CUDA device 0 is NVML device 0).
- FAKE_NVML_SM_CLOCKS: SM clock readings in MHz returned one after another, the last repeated
  (default 1980): "1980,1410" plants a clock drop during a row. A reading below the first one
  reports a software thermal slowdown as the reason.
"""

import os
from dataclasses import dataclass

NVML_TEMPERATURE_GPU = 0
NVML_CLOCK_SM = 1
NVML_CLOCK_MEM = 2
nvmlClocksEventReasonGpuIdle = 0x1
nvmlClocksEventReasonSwThermalSlowdown = 0x20

_state = {"initialized": 0, "sm_reads": 0}


class NVMLError(Exception):
    pass


@dataclass
class c_nvmlMemory_t:  # noqa: N801 (nvidia-ml-py's names)
    total: int
    free: int
    used: int


@dataclass
class nvmlPciInfo_t:  # noqa: N801
    domain: int
    bus: int
    device: int
    busId: bytes  # noqa: N815


def _check() -> None:
    if not _state["initialized"]:
        raise NVMLError("Uninitialized")


def _count() -> int:
    return int(os.environ.get("FAKE_NVML_GPUS", "1"))


def _sm_clocks() -> list[int]:
    return [int(v) for v in os.environ.get("FAKE_NVML_SM_CLOCKS", "1980").split(",")]


def nvmlInit():  # noqa: N802
    _state["initialized"] += 1


def nvmlShutdown():  # noqa: N802
    _check()
    _state["initialized"] -= 1


def nvmlSystemGetDriverVersion():  # noqa: N802
    _check()
    return "999.99"


def nvmlSystemGetCudaDriverVersion_v2():  # noqa: N802
    _check()
    return 13000


def nvmlDeviceGetCount():  # noqa: N802
    _check()
    return _count()


def nvmlDeviceGetHandleByIndex(index):  # noqa: N802
    _check()
    if not 0 <= index < _count():
        raise NVMLError("Invalid Argument")
    return index


def nvmlDeviceGetName(handle):  # noqa: N802
    return f"Fake GPU {handle} (no hardware)"


def nvmlDeviceGetUUID(handle):  # noqa: N802
    return f"GPU-fake0000-0000-0000-0000-{handle:012d}"


def nvmlDeviceGetMemoryInfo(handle):  # noqa: N802
    return c_nvmlMemory_t(total=8 * 2**30, free=7 * 2**30, used=2**30)


def nvmlDeviceGetCudaComputeCapability(handle):  # noqa: N802
    return 9, 0


def nvmlDeviceGetPciInfo(handle):  # noqa: N802
    return nvmlPciInfo_t(domain=0, bus=handle + 1, device=0, busId=f"00000000:{handle + 1:02X}:00.0".encode())


def nvmlDeviceGetClockInfo(handle, type):  # noqa: N802, A002 (nvidia-ml-py's signature)
    _check()
    if type == NVML_CLOCK_MEM:
        return 2619
    clocks = _sm_clocks()
    _state["sm_reads"] += 1
    return clocks[min(_state["sm_reads"], len(clocks)) - 1]


def nvmlDeviceGetTemperature(handle, sensor):  # noqa: N802
    return 45 + 30 * (_state["sm_reads"] > 1 and _sm_clocks()[-1] < _sm_clocks()[0])


def nvmlDeviceGetPowerUsage(handle):  # noqa: N802
    return 350_000  # mW


def nvmlDeviceGetCurrentClocksEventReasons(handle):  # noqa: N802
    clocks = _sm_clocks()
    dropped = clocks[min(max(_state["sm_reads"], 1), len(clocks)) - 1] < clocks[0]
    return nvmlClocksEventReasonSwThermalSlowdown if dropped else nvmlClocksEventReasonGpuIdle
