"""What a precision transform is asked to do."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PrecisionSettings:
    precision: str  # fp16 | bf16 | int8 | fp8 | int8-dynamic
    target: str = "tensorrt"  # tensorrt | ort: the runtime the Q/DQ graph is shaped for
    keep_io_types: bool = True
    block_fragile: bool = True
    exclude_op_types: tuple[str, ...] = ()
    exclude_nodes: tuple[str, ...] = ()
    calib_method: str = "minmax"
    per_channel: bool = True
    calib_cache: Path | None = None
    replace_cache: bool = False  # --force: a file at calib_cache that is not a cache may be overwritten

    @property
    def quantized(self) -> bool:
        return self.precision in ("int8", "fp8", "int8-dynamic")

    def to_dict(self) -> dict:
        return {
            "precision": self.precision, "target": self.target, "keep_io_types": self.keep_io_types,
            "block_fragile": self.block_fragile, "exclude_op_types": list(self.exclude_op_types),
            "exclude_nodes": list(self.exclude_nodes), "calibration_method": self.calib_method,
            "per_channel": self.per_channel, "calibration_cache": str(self.calib_cache) if self.calib_cache else None,
        }
