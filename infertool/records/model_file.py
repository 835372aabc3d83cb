"""A model file as results name it: path, sha256, bytes."""

from __future__ import annotations

from dataclasses import dataclass

from infertool.records.fields import Fields


@dataclass(frozen=True)
class ModelFile:
    path: str
    sha256: str
    bytes: int
    external_data: bool = False

    def to_dict(self) -> dict:
        return {"path": self.path, "sha256": self.sha256, "bytes": self.bytes, "external_data": self.external_data}

    @classmethod
    def read(cls, f: Fields) -> ModelFile:
        return cls(f.text("path"), f.text("sha256"), f.integer("bytes"), f.flag("external_data", False))
