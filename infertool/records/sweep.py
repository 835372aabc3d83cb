"""`infertool.sweep/1`: a sweep's cells and where their results are."""

from __future__ import annotations

from dataclasses import dataclass

from infertool.records.bench import read_env
from infertool.records.fields import Damaged, Fields

SCHEMA, CELL_SCHEMA = "infertool.sweep/1", "infertool.sweep-cell/1"


@dataclass(frozen=True)
class SweepResult:
    env: dict
    spec: dict  # path and sha256 of the spec file
    shard: str | None  # "i/N (where it came from)"
    executor: str
    devices: tuple  # the device slots cells ran on (local executor)
    cells: tuple[dict, ...]  # id, what it measures, status, result file, device, times, attempts
    listed: bool = False  # --list: nothing ran

    @property
    def baseline(self) -> dict | None:
        """The cell speedups are measured against (records/speedup.py): the spec's first."""
        return {"cell": self.cells[0]["id"]} if self.cells else None

    @property
    def counts(self) -> dict:
        counts: dict[str, int] = {}
        for cell in self.cells:
            counts[cell["status"]] = counts.get(cell["status"], 0) + 1
        return counts

    def to_dict(self) -> dict:
        return {
            "schema": "infertool.sweep/1", "env": self.env, "spec": self.spec, "shard": self.shard, "executor": self.executor,
            "devices": list(self.devices), "listed": self.listed, "counts": self.counts, "speedup_baseline": self.baseline, "cells": list(self.cells),
        }

    @classmethod
    def read(cls, f: Fields) -> SweepResult:
        if f.data.get("schema") != SCHEMA:
            raise Damaged("schema", f"is {f.data.get('schema')!r}, not {SCHEMA}")
        spec = f.obj("spec")
        spec.text("path")
        return cls(
            read_env(f.obj("env", Fields({}, "env"))), spec.data, f.text("shard", None), f.text("executor", "local"),
            tuple(f.data["devices"] if isinstance(f.data.get("devices"), list) else ()), tuple(f.items("cells", read_cell, ())),
            f.flag("listed", False),
        )


def read_cell(f: Fields) -> dict:
    """A cell entry of a sweep summary, or the cell block of a cell's result: its id, status, result file."""
    f.text("id")
    f.text("status", None)
    f.text("result", None)
    f.text("error", None)
    return f.data


@dataclass(frozen=True)
class CellFailure:
    """`infertool.sweep-cell/1`: a cell that gave no result after its retries."""

    env: dict
    cell: dict
    error: str

    @classmethod
    def read(cls, f: Fields) -> CellFailure:
        if f.data.get("schema") != CELL_SCHEMA:
            raise Damaged("schema", f"is {f.data.get('schema')!r}, not {CELL_SCHEMA}")
        return cls(read_env(f.obj("env", Fields({}, "env"))), read_cell(f.obj("cell")), f.text("error", "unknown error"))
