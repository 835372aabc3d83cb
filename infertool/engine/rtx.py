"""TensorRT-RTX only: the compute capabilities an engine is built for, ahead of time and with or
without a GPU. Its calls are checked against the real tensorrt_rtx bindings (tests/test_tensorrt_surface.py)."""

from __future__ import annotations

from typing import Any

from infertool import cuda
from infertool.engine.tensorrt_api import Flavour, cc_tuple
from infertool.errors import InfertoolError

FP8_MINIMUM = "8.9"


def check_targets(flavour: Flavour, targets: tuple[str, ...], expect: tuple[str, ...]) -> None:
    """Targets the flavour has, and none too old for the precision the engine must compute in."""
    if targets and not flavour.ahead_of_time:
        raise InfertoolError(
            f"{flavour.name} builds for the GPU it runs on; --compute-capability is for TensorRT-RTX",
            hint="use --backend trt-rtx, or build on the target GPU (--hardware-compat ampere+ for portability)",
        )
    unknown = [t for t in targets if t not in flavour.targets]
    if unknown:
        raise InfertoolError(
            f"{flavour.name} cannot build for compute capability {', '.join(unknown)}",
            hint=f"choose from {', '.join(flavour.targets)} (there is no 9.0 or 10.x: Hopper and data-centre Blackwell are not RTX targets)",
        )
    if "fp8" in expect and flavour.ahead_of_time:
        older = [t for t in targets if cc_tuple(t) < cc_tuple(FP8_MINIMUM)] if targets else ["the defaults (8.0, 8.6)"]
        if older:
            raise InfertoolError(
                f"fp8 needs compute capability {FP8_MINIMUM} or later, and the targets include {', '.join(older)}",
                hint="build fp8 for --compute-capability 8.9,12.0 only (or another precision for older GPUs)",
            )


def set_targets(trt: Any, config: Any, targets: tuple[str, ...]) -> None:
    """Build for these compute capabilities; none given leaves TensorRT-RTX's defaults."""
    if not targets:
        return
    config.num_compute_capabilities = len(targets)  # first: set_compute_capability fails past the count
    for index, target in enumerate(targets):
        member = getattr(trt.ComputeCapability, "SM" + target.replace(".", ""))
        if not config.set_compute_capability(member, index):
            raise InfertoolError(f"TensorRT-RTX refused compute capability {target} as target {index}")


def resolve(targets: tuple[str, ...], device: int) -> tuple[str, ...]:
    """`current` -> the compute capability of this machine's GPU `device` (an error without one)."""
    if "current" not in targets:
        return targets
    try:
        here = cuda.gpu_identity(device)["compute_capability"]
    except InfertoolError as exc:
        raise InfertoolError(f"--compute-capability current needs a GPU here: {exc.message}", hint="name the targets instead, e.g. --compute-capability 8.6,8.9,12.0") from exc
    return tuple(dict.fromkeys(here if t == "current" else t for t in targets))
