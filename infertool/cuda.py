"""A thin, checked layer over cuda-python's runtime API: streams, events, memory. Imported lazily."""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any

from infertool.errors import InfertoolError
from infertool.optional import require

if TYPE_CHECKING:
    import numpy as np


@cache
def runtime() -> Any:
    """`cuda.bindings.runtime` (cuda-python >= 12.8), else the older `cuda.cudart`."""
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:
            from cuda import cudart
        except ImportError:
            cudart = require("cuda.bindings.runtime", "CUDA timing and buffers")
    return cudart


def check(result: Any) -> Any:
    """Unpack a cuda-python call's (error, *values) tuple, raising on any error."""
    cudart = runtime()
    err, *values = result if isinstance(result, tuple) else (result,)
    if err != cudart.cudaError_t.cudaSuccess:
        name = cudart.cudaGetErrorName(err)[1]
        name = name.decode() if isinstance(name, bytes) else str(name)
        if "MemoryAllocation" in name:
            raise InfertoolError("GPU out of memory", hint="use a smaller --batch or free the GPU")
        raise InfertoolError(f"CUDA call failed: {name}", hint="check the GPU and its driver (infertool doctor)")
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(values)


def device_count() -> int:
    try:
        return int(check(runtime().cudaGetDeviceCount()))
    except InfertoolError:
        return 0


def set_device(device: int) -> None:
    check(runtime().cudaSetDevice(device))
    check(runtime().cudaFree(0))  # create the primary context now, not inside a measurement


def mem_used(device: int) -> int:
    """Bytes in use on the device (all processes), from cudaMemGetInfo."""
    set_device(device)
    free, total = check(runtime().cudaMemGetInfo())
    return int(total) - int(free)


def gpu_identity(device: int) -> dict:
    """Index, name and compute capability: what an engine is built for and checked against."""
    set_device(device)
    properties = device_properties(device)
    return {"index": device, "name": properties["name"], "compute_capability": properties["compute_capability"]}


def device_properties(device: int) -> dict:
    props = check(runtime().cudaGetDeviceProperties(device))
    name = props.name.decode() if isinstance(props.name, bytes) else str(props.name)
    return {
        "name": name.rstrip("\x00"), "compute_capability": f"{props.major}.{props.minor}", "memory_bytes": int(props.totalGlobalMem),
        "pci": (int(props.pciDomainID), int(props.pciBusID), int(props.pciDeviceID)),  # how NVML finds the same GPU
    }


class Stream:
    def __init__(self) -> None:
        self.handle = check(runtime().cudaStreamCreateWithFlags(runtime().cudaStreamNonBlocking))

    @property
    def ptr(self) -> int:
        return int(self.handle)

    def synchronize(self) -> None:
        check(runtime().cudaStreamSynchronize(self.handle))

    def close(self) -> None:
        if self.handle is not None:
            check(runtime().cudaStreamDestroy(self.handle))
            self.handle = None


class Event:
    def __init__(self) -> None:
        self.handle = check(runtime().cudaEventCreate())

    def record(self, stream: Stream) -> None:
        check(runtime().cudaEventRecord(self.handle, stream.handle))

    def elapsed_ns_since(self, start: Event) -> int:
        check(runtime().cudaEventSynchronize(self.handle))
        return int(check(runtime().cudaEventElapsedTime(start.handle, self.handle)) * 1e6)

    def close(self) -> None:
        if self.handle is not None:
            check(runtime().cudaEventDestroy(self.handle))
            self.handle = None


class DeviceBuffer:
    def __init__(self, nbytes: int) -> None:
        self.nbytes = max(int(nbytes), 1)
        self.ptr = int(check(runtime().cudaMalloc(self.nbytes)))

    def close(self) -> None:
        if self.ptr:
            check(runtime().cudaFree(self.ptr))
            self.ptr = 0


class PinnedArray:
    """Page-locked host memory seen as a numpy array, so copies can run asynchronously."""

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype) -> None:
        import numpy as np

        dtype = np.dtype(dtype)
        self.nbytes = max(int(np.prod(shape, dtype=np.int64)) * dtype.itemsize, 1)
        self.ptr = int(check(runtime().cudaMallocHost(self.nbytes)))
        raw = (ctypes.c_byte * self.nbytes).from_address(self.ptr)
        self.array = np.frombuffer(raw, dtype=np.uint8)[: int(np.prod(shape, dtype=np.int64)) * dtype.itemsize].view(dtype).reshape(shape)

    def close(self) -> None:
        if self.ptr:
            check(runtime().cudaFreeHost(self.ptr))
            self.ptr = 0


def copy_to_device(dst: DeviceBuffer, src: PinnedArray, nbytes: int, stream: Stream) -> None:
    cudart = runtime()
    check(cudart.cudaMemcpyAsync(dst.ptr, src.ptr, nbytes, cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, stream.handle))


def copy_to_host(dst: PinnedArray, src: DeviceBuffer, nbytes: int, stream: Stream) -> None:
    cudart = runtime()
    check(cudart.cudaMemcpyAsync(dst.ptr, src.ptr, nbytes, cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost, stream.handle))


def read_device(dst: int, src: int, nbytes: int, stream: int) -> None:
    """Copy `nbytes` of device memory at `src` to host memory at `dst` once `stream`'s work is done."""
    cudart = runtime()
    check(cudart.cudaStreamSynchronize(stream))
    check(cudart.cudaMemcpy(dst, src, nbytes, cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost))


class Graph:
    """A CUDA graph captured from the work `enqueue` puts on `stream`, replayed with `launch`."""

    def __init__(self, stream: Stream, enqueue: Callable[[], None]) -> None:
        cudart = runtime()
        check(cudart.cudaStreamBeginCapture(stream.handle, cudart.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal))
        try:
            enqueue()
        finally:
            self.graph = check(cudart.cudaStreamEndCapture(stream.handle))
        self.exec = check(cudart.cudaGraphInstantiate(self.graph, 0))

    def launch(self, stream: Stream) -> None:
        check(runtime().cudaGraphLaunch(self.exec, stream.handle))

    def close(self) -> None:
        if self.exec is not None:
            check(runtime().cudaGraphExecDestroy(self.exec))
            check(runtime().cudaGraphDestroy(self.graph))
            self.exec = None
