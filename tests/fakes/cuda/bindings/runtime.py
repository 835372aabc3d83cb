"""FAKE cuda.bindings.runtime: host memory standing in for a GPU, for the fake TensorRT on CPU-only CI.

Calls return (error, *values) tuples as cuda-python does. Work on a stream runs at once, unless the
stream is capturing a graph, in which case it is recorded and replayed by cudaGraphLaunch.
"""

import ctypes
import enum
import os
import time
from dataclasses import dataclass, field


class cudaError_t(enum.IntEnum):  # noqa: N801 (cuda-python's names)
    cudaSuccess = 0
    cudaErrorInvalidValue = 1
    cudaErrorMemoryAllocation = 2
    cudaErrorInvalidDevice = 101


class cudaMemcpyKind(enum.IntEnum):  # noqa: N801
    cudaMemcpyHostToDevice = 1
    cudaMemcpyDeviceToHost = 2


class cudaStreamCaptureMode(enum.IntEnum):  # noqa: N801
    cudaStreamCaptureModeGlobal = 0
    cudaStreamCaptureModeThreadLocal = 1


cudaStreamNonBlocking = 1
OK = cudaError_t.cudaSuccess
_buffers: dict[int, ctypes.Array] = {}


@dataclass(eq=False)
class _Stream:
    recording: list | None = None

    def __int__(self) -> int:  # the handle TensorRT receives as an integer
        return id(self)


streams: dict[int, _Stream] = {}


@dataclass
class _Event:
    ns: int = 0


@dataclass
class _Graph:
    work: list = field(default_factory=list)


_CAPABILITY = os.environ.get("FAKE_CUDA_COMPUTE_CAPABILITY", "9.0").split(".")  # 9.0 as the H100 this project's GPU runs use


@dataclass
class _Properties:
    name: bytes = b"Fake GPU (host memory)"
    major: int = int(_CAPABILITY[0])
    minor: int = int(_CAPABILITY[1])
    totalGlobalMem: int = 8 * 2**30  # noqa: N815
    pciDomainID: int = 0  # noqa: N815 (the fake NVML's GPU i sits at 0:(i+1):0)
    pciBusID: int = 1  # noqa: N815
    pciDeviceID: int = 0  # noqa: N815


def _visible() -> list[int]:
    """The machine's GPUs (FAKE_NVML_GPUS of them, in PCI order) that CUDA_VISIBLE_DEVICES leaves
    this process, in CUDA's numbering; as in CUDA, the list ends at its first invalid entry."""
    count = int(os.environ.get("FAKE_NVML_GPUS", "1"))
    given = os.environ.get("CUDA_VISIBLE_DEVICES")
    if given is None:
        return list(range(count))
    visible = []
    for part in given.split(","):
        if not part.strip().isdigit() or int(part) >= count:
            break
        visible.append(int(part))
    return visible


def enqueue(stream, work) -> None:
    """Run `work` now, or record it while `stream` captures (used by the fake TensorRT too)."""
    if stream is not None and stream.recording is not None:
        stream.recording.append(work)
    else:
        work()


def cudaGetErrorName(error):  # noqa: N802
    return OK, cudaError_t(error).name.encode()


def cudaGetDeviceCount():  # noqa: N802
    return OK, len(_visible())


def cudaSetDevice(device):  # noqa: N802
    return (OK,) if 0 <= device < len(_visible()) else (cudaError_t.cudaErrorInvalidDevice,)


def cudaGetDeviceProperties(device):  # noqa: N802
    visible = _visible()
    if not 0 <= device < len(visible):
        return cudaError_t.cudaErrorInvalidDevice, None
    return OK, _Properties(pciBusID=visible[device] + 1)


def cudaMemGetInfo():  # noqa: N802
    used = sum(ctypes.sizeof(b) for b in _buffers.values())
    return OK, _Properties.totalGlobalMem - used, _Properties.totalGlobalMem


def cudaMalloc(size):  # noqa: N802
    buffer = (ctypes.c_byte * size)()
    _buffers[ctypes.addressof(buffer)] = buffer
    return OK, ctypes.addressof(buffer)


cudaMallocHost = cudaMalloc


def cudaFree(pointer):  # noqa: N802
    _buffers.pop(int(pointer), None)
    return (OK,)


cudaFreeHost = cudaFree


def cudaMemcpyAsync(dst, src, count, kind, stream):  # noqa: N802
    enqueue(stream, lambda: ctypes.memmove(dst, src, count))
    return (OK,)


def cudaMemcpy(dst, src, count, kind):  # noqa: N802
    ctypes.memmove(dst, src, count)
    return (OK,)


def cudaStreamCreateWithFlags(flags):  # noqa: N802
    stream = _Stream()
    streams[id(stream)] = stream
    return OK, stream


def cudaStreamSynchronize(stream):  # noqa: N802
    return (OK,)


def cudaStreamDestroy(stream):  # noqa: N802
    streams.pop(id(stream), None)
    return (OK,)


def cudaEventCreate():  # noqa: N802
    return OK, _Event()


def cudaEventRecord(event, stream):  # noqa: N802
    enqueue(stream, lambda: setattr(event, "ns", time.perf_counter_ns()))
    return (OK,)


def cudaEventSynchronize(event):  # noqa: N802
    return (OK,)


def cudaEventElapsedTime(start, end):  # noqa: N802
    return OK, (end.ns - start.ns) / 1e6


def cudaEventDestroy(event):  # noqa: N802
    return (OK,)


def cudaStreamBeginCapture(stream, mode):  # noqa: N802
    stream.recording = []
    return (OK,)


def cudaStreamEndCapture(stream):  # noqa: N802
    graph, stream.recording = _Graph(stream.recording or []), None
    return OK, graph


def cudaGraphInstantiate(graph, flags):  # noqa: N802
    return OK, graph


def cudaGraphLaunch(graph, stream):  # noqa: N802
    for work in graph.work:
        enqueue(stream, work)
    return (OK,)


def cudaGraphExecDestroy(graph):  # noqa: N802
    return (OK,)


cudaGraphDestroy = cudaGraphExecDestroy
