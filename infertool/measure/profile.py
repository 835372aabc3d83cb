"""Where the time goes: per-op events from a runtime's profiler turned into per-op-type and top-node tables."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

OpTime = tuple[str, str, float]  # node or layer name, op type, milliseconds


def summarize(clock: str, events: Sequence[OpTime], runs: int, top: int) -> dict:
    """Per op type and the `top` slowest nodes, in ms per run and as a share of the ops' total time."""
    total = sum(ms for _, _, ms in events)
    by_type: dict[str, list[float]] = defaultdict(list)
    by_node: dict[str, list] = {}
    for name, op_type, ms in events:
        by_type[op_type].append(ms)
        by_node.setdefault(name, [op_type, 0.0])[1] += ms
    share = lambda ms: round(ms / total, 4) if total > 0 else None  # noqa: E731
    op_types = sorted(by_type.items(), key=lambda item: -sum(item[1]))
    nodes = sorted(by_node.items(), key=lambda item: -item[1][1])[:top]
    return {
        "clock": clock, "runs": runs, "ops_ms_per_run": round(total / runs, 6) if runs else None,
        "by_op_type": [
            {"op_type": op, "nodes": round(len(times) / runs) if runs else len(times), "ms_per_run": round(sum(times) / runs, 6), "share": share(sum(times))}
            for op, times in op_types
        ],
        "top_nodes": [{"name": name, "op_type": op, "ms_per_run": round(ms / runs, 6), "share": share(ms)} for name, (op, ms) in nodes],
    }
