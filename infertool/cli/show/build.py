"""What `build-engine` prints."""

from __future__ import annotations

from rich.console import Console

from infertool.cli.console import escape
from infertool.cli.show.grid import pairs
from infertool.tensors import format_shape
from infertool.text import byte_size


def build_result(result, console: Console) -> None:
    car = result.sidecar
    plan = car["plan"]
    path = f"graph precision stage: {plan['transform']}" if plan["transform"] else f"builder flags: {', '.join(plan['builder_flags']) or 'none'}"
    layers = car.get("layer_precisions")
    flavour = car.get("flavour", "TensorRT")
    if car["gpu"] is not None:
        built_for = f"{car['tensorrt_version']} on {escape(car['gpu']['name'])} (sm {car['gpu']['compute_capability']})"
    else:
        targets = car.get("compute_capabilities")
        built_for = f"{car['tensorrt_version']}, ahead of time for " + (f"compute capability {', '.join(targets)}" if targets else "its default targets")
    items = [
        (flavour, built_for),
        ("precision", f"{car['precision']} ({path}; strongly typed: {plan['strongly_typed']})"),
        ("layers", ", ".join(f"{k} {v}" for k, v in sorted(layers.items())) if layers else "-"),
    ]
    for index, profile in enumerate(car["profiles"]):
        shapes = "; ".join(f"{escape(n)} {format_shape(s['min'])} / {format_shape(s['opt'])} / {format_shape(s['max'])}" for n, s in profile.items())
        items.append((f"profile {index}", shapes or "static shapes"))
    memory = "not known until loaded on a GPU" if car["device_memory_bytes"] is None else byte_size(car["device_memory_bytes"])
    items.append(("engine", f"{byte_size(car['engine_bytes'])}, device memory {memory}, built in {car['build_seconds']:.1f} s"))
    items.append(("timing cache", "loaded and saved" if result.timing_cache_loaded else "saved" if car["options"]["timing_cache"] else "-"))
    items += [("note", escape(note)) for note in result.notes]
    pairs(console, f"{escape(car['onnx']['path'])} → {escape(str(result.engine.path))}", items)
