"""Running sweep cells: each in a fresh `infertool bench` subprocess (a crash or a broken CUDA
context ends that process only), retried; on local processes, one per device at a time, or as
Ray tasks that hold one GPU (or one CPU) each."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from infertool import environment
from infertool.errors import InfertoolError
from infertool.optional import require

STDERR_TAIL = 2000  # characters of a failed attempt's stderr kept in its record
Done = Callable[[dict, dict], None]  # (cell, record): called as each cell finishes, from one thread at a time


def bench_command(cell: dict, json_path: Path) -> list[str]:
    command = [sys.executable, "-m", "infertool", "bench", cell["path"], "--backend", cell["backend"], "--label", cell["label"]]
    if cell["batch"] is not None:
        command += ["--batch", str(cell["batch"])]
    for shape in cell["shapes"]:
        command += ["--input-shape", shape]
    if cell["reference"] is not None:
        command += ["--reference", cell["reference"]]
    return [*command, *cell["bench_args"], "--json", str(json_path), "--quiet"]


def _error(code: int | None, stderr: str, timeout: float) -> str:
    if code is None:
        return f"timed out after {timeout:g} s"
    lines = [line for line in stderr.splitlines() if line.strip()]
    said = next((line for line in reversed(lines) if line.startswith("error:")), lines[-1] if lines else "")
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"crashed ({name})" + (f": {said}" if said else "")
    return f"exit {code}: {said}" if said else f"exit {code}"


def _attempt(cell: dict, env: dict, timeout: float) -> tuple[dict, dict | None]:
    """One run of the cell; its record, and the bench result when the run wrote one."""
    with tempfile.TemporaryDirectory(prefix="infertool-cell-") as folder:
        json_path = Path(folder) / "result.json"
        started, clock = environment.utc_now(), time.monotonic()
        try:
            done = subprocess.run(bench_command(cell, json_path), env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout)
            code, stderr = done.returncode, done.stderr
        except subprocess.TimeoutExpired as exc:
            code, stderr = None, exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr or ""
        result = json.loads(json_path.read_text()) if code in (0, 1) and json_path.is_file() else None
    record = {
        "started_utc": started, "finished_utc": environment.utc_now(), "seconds": round(time.monotonic() - clock, 3), "exit_code": code,
        "error": None if result is not None else _error(code, stderr, timeout), "stderr_tail": None if result is not None else stderr[-STDERR_TAIL:],
    }
    return record, result


def run_cell(cell: dict, env: dict, retries: int, timeout: float) -> dict:
    """The cell until it yields a result or `retries` more attempts failed. Exit 1 (a check such as
    output agreement failed) is a result, not a failure: it is kept and not retried."""
    # where it ran: under Ray, the worker's CUDA_VISIBLE_DEVICES is the GPU Ray gave the task
    placement = {"host": socket.gethostname(), "cuda_visible_devices": env.get("CUDA_VISIBLE_DEVICES", os.environ.get("CUDA_VISIBLE_DEVICES"))}
    attempts = []
    for _ in range(retries + 1):
        record, result = _attempt(cell, env, timeout)
        attempts.append(record)
        if result is not None:
            status = "ok" if record["exit_code"] == 0 else "check-failed"
            return {**placement, "status": status, "attempts": attempts, "result": result}
    return {**placement, "status": "failed", "attempts": attempts, "result": None, "env": environment.fingerprint()}


def run_local(cells: Sequence[dict], slots: Sequence[str | None], pci_order: bool, spread_cpu: bool, retries: int, timeout: float, done: Done) -> None:
    """One worker thread per device slot, each running one cell subprocess at a time, pinned to its
    device with CUDA_VISIBLE_DEVICES (a slot of None: no pinning, the CPU). With `pci_order` the
    slots are NVML's indices, which CUDA shares only under CUDA_DEVICE_ORDER=PCI_BUS_ID. CPU cells
    run on the first slot only, one at a time, unless `spread_cpu`."""
    pending = list(cells)
    lock = threading.Lock()

    def take(slot: str | None) -> dict | None:
        with lock:
            for index, cell in enumerate(pending):
                free = cell["on_gpu"] or spread_cpu or slot == slots[0]
                if (cell["device"] is None and free) or str(cell["device"]) == slot:
                    return pending.pop(index)
        return None

    raised: list[BaseException] = []  # a worker's error (writing a result failed), raised here

    def work(slot: str | None) -> None:
        while not raised and (cell := take(slot)) is not None:
            env = {} if slot is None else {"CUDA_VISIBLE_DEVICES": slot, **({"CUDA_DEVICE_ORDER": "PCI_BUS_ID"} if pci_order else {})}
            record = {**run_cell(cell, env, retries, timeout), "device_slot": slot}
            with lock:
                try:
                    done(cell, record)
                except Exception as exc:
                    raised.append(exc)

    workers = [threading.Thread(target=work, args=(slot,), daemon=True) for slot in slots]
    for worker in workers:
        worker.start()
    for worker in workers:
        while worker.is_alive():  # a bare join() would not let Ctrl-C through
            worker.join(0.5)
    if raised:
        raise raised[0]


def run_ray(cells: Sequence[dict], address: str | None, retries: int, timeout: float, done: Done) -> None:
    """Each cell a Ray task holding one GPU (num_gpus=1: Ray sets its CUDA_VISIBLE_DEVICES) or one
    CPU, still running the cell in a subprocess; results come back as they finish."""
    ray = require("ray", "sweep --executor ray")
    started = not ray.is_initialized()
    if started:
        try:
            ray.init(address=address, log_to_driver=False, include_dashboard=False)
        except Exception as exc:
            raise InfertoolError(f"cannot reach the Ray cluster{f' at {address}' if address else ''}: {exc}", hint="check --address (ray start --head prints it)") from exc
    try:
        task = ray.remote(run_cell)
        futures = {}
        for cell in cells:
            resources = {"num_gpus": 1} if cell["on_gpu"] else {"num_cpus": cell["cpus"]}
            futures[task.options(**resources, max_retries=retries).remote(cell, {}, retries, timeout)] = cell
        while futures:
            ready, _ = ray.wait(list(futures), num_returns=1)
            for ref in ready:
                cell = futures.pop(ref)
                try:
                    record = ray.get(ref)
                except Exception as exc:  # the task itself died (node lost, worker killed) past Ray's retries
                    now = environment.utc_now()
                    record = {"host": None, "cuda_visible_devices": None, "status": "failed", "result": None, "env": {},
                              "attempts": [{"started_utc": None, "finished_utc": now, "seconds": None, "exit_code": None, "error": f"Ray task failed: {exc}", "stderr_tail": None}]}
                done(cell, record)
    finally:
        if started:
            ray.shutdown()
