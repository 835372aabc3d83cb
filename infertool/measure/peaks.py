"""Dense peak throughput of known GPUs, per precision, in TFLOP/s (TOPS for int8).

Dense means without 2:4 structured sparsity: NVIDIA's datasheets print tensor-core figures "with
sparsity" (marked *), which are twice the dense ones; the figures below are the dense halves.
fp32 is the CUDA-core figure; tf32 is the tensor-core figure fp32 graphs get where TF32 is on.
CPUs have no entry: their rows report TFLOP/s alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# (pattern on the device name, label, {precision: dense TFLOP/s}), the most specific pattern first
GPUS: tuple[tuple[str, str, dict[str, float]], ...] = (
    # https://www.nvidia.com/en-us/data-center/h100/ (datasheet, H100 NVL column)
    (r"H100\s*NVL", "H100 NVL", {"fp32": 60.0, "tf32": 417.5, "fp16": 835.5, "bf16": 835.5, "fp8": 1670.5, "int8": 1670.5}),
    # same datasheet, H100 PCIe column
    (r"H100.*PCIe", "H100 PCIe", {"fp32": 51.2, "tf32": 378.0, "fp16": 756.5, "bf16": 756.5, "fp8": 1513.0, "int8": 1513.0}),
    # same datasheet, H100 SXM column (NVML names it "NVIDIA H100 80GB HBM3")
    (r"H100", "H100 SXM", {"fp32": 67.0, "tf32": 494.5, "fp16": 989.5, "bf16": 989.5, "fp8": 1979.0, "int8": 1979.0}),
    # https://www.nvidia.com/en-us/data-center/h200/ (datasheet, H200 NVL column)
    (r"H200\s*NVL", "H200 NVL", {"fp32": 60.0, "tf32": 417.5, "fp16": 835.5, "bf16": 835.5, "fp8": 1670.5, "int8": 1670.5}),
    # same datasheet, H200 SXM column
    (r"H200", "H200 SXM", {"fp32": 67.0, "tf32": 494.5, "fp16": 989.5, "bf16": 989.5, "fp8": 1979.0, "int8": 1979.0}),
    # https://www.nvidia.com/en-us/data-center/a100/ (datasheet; SXM and PCIe share the tensor figures)
    (r"A100", "A100", {"fp32": 19.5, "tf32": 156.0, "fp16": 312.0, "bf16": 312.0, "int8": 624.0}),
    # https://www.nvidia.com/en-us/data-center/l40s/ (datasheet)
    (r"L40S", "L40S", {"fp32": 91.6, "tf32": 183.0, "fp16": 362.05, "bf16": 362.05, "fp8": 733.0, "int8": 733.0}),
    # https://www.nvidia.com/en-us/data-center/l4/ (datasheet)
    (r"\bL4\b", "L4", {"fp32": 30.3, "tf32": 60.0, "fp16": 121.0, "bf16": 121.0, "fp8": 242.5, "int8": 242.5}),
    # https://www.nvidia.com/en-us/data-center/products/a10-gpu/ (datasheet)
    (r"\bA10\b", "A10", {"fp32": 31.2, "tf32": 62.5, "fp16": 125.0, "bf16": 125.0, "int8": 250.0}),
    # https://www.nvidia.com/en-us/data-center/tesla-t4/ (datasheet: mixed-precision fp16/fp32 65, int8 130)
    (r"\bT4\b", "T4", {"fp32": 8.1, "fp16": 65.0, "int8": 130.0}),
    # https://images.nvidia.com/aem-dam/Solutions/geforce/ada/nvidia-ada-gpu-architecture.pdf (appendix A:
    # fp16 tensor with fp32 accumulate 165.2, the GeForce rate; tf32 82.6; int8 660.6)
    (r"RTX\s*4090", "RTX 4090", {"fp32": 82.6, "tf32": 82.6, "fp16": 165.2, "bf16": 165.2, "int8": 660.6}),
)


@dataclass(frozen=True)
class Peak:
    device: str  # the table's label
    precision: str  # the figure used: fp32, tf32, fp16, bf16, fp8, int8
    tflops: float

    def to_dict(self) -> dict:
        return {"device": self.device, "precision": self.precision, "dense_tflops": self.tflops}


def peak(device_name: str, precision: str, tf32: bool = False) -> Peak | None:
    """The dense peak of a GPU (by its driver name) for a row's precision, or None when unknown."""
    figure = "tf32" if precision == "fp32" and tf32 else precision
    for pattern, label, figures in GPUS:
        if re.search(pattern, device_name, re.IGNORECASE):
            return Peak(label, figure, figures[figure]) if figure in figures else None
    return None
