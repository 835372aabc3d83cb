"""`infertool.doctor/1`: versions, providers, GPUs, backends."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DoctorReport:
    fingerprint: dict
    components: tuple[dict, ...]
    backends: tuple[dict, ...]
    warnings: tuple[str, ...]

    def to_dict(self) -> dict:
        return {
            "schema": "infertool.doctor/1", **self.fingerprint, "components": list(self.components),
            "backends": list(self.backends), "warnings": list(self.warnings),
        }
