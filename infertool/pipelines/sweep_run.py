"""Running sweep cells: each a typed bench request run in a fresh spawned process (a crash or a broken
CUDA context ends that process only), retried; on local processes, one per device at a time, or as
Ray tasks that hold one GPU (or one CPU) each."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from infertool import environment
from infertool.errors import CheckFailed, InfertoolError
from infertool.optional import require
from infertool.pipelines import isolation
from infertool.pipelines.bench import BenchOptions, run_bench
from infertool.reporting import Reporter, SilentReporter

Done = Callable[[dict, dict], None]  # (cell, record): called as each cell finishes, from one thread at a time


@dataclass(frozen=True)
class CellJob:
    """One cell: its record (Cell.to_dict) and the bench it runs, typed."""

    cell: dict
    model: Path
    options: BenchOptions


def bench_cell(job: CellJob, reporter: Reporter) -> tuple[int, dict]:
    """The child's side: the cell's bench, and its exit code (0, or 1 where a check failed) with the result."""
    try:
        return 0, run_bench(job.model, job.options, reporter).to_dict()
    except CheckFailed as failure:  # a result all the same (say, outputs disagree): kept, not retried
        if failure.result is None:
            raise
        return failure.exit_code, failure.result.to_dict()


def _error(exc: InfertoolError) -> tuple[int | None, str]:
    """(exit code, what went wrong) of a failed attempt, as a process's would read."""
    if isinstance(exc, isolation.ChildDied):
        if exc.timed_out:
            return None, exc.cause
        return exc.returncode, f"crashed ({exc.cause.removeprefix('killed by ')}) during {exc.stage}"
    return exc.exit_code, f"exit {exc.exit_code}: error: {exc.one_line()}"


def _attempt(job: CellJob, env: dict, timeout: float) -> tuple[dict, dict | None]:
    """One run of the cell; its record, and the bench result when the run gave one."""
    started, clock = environment.utc_now(), time.monotonic()
    try:
        code, result = isolation.run(isolation.Job(bench_cell, job, job.cell["id"], env, timeout, echo_stderr=False), SilentReporter())
        error, stderr = None, None
    except InfertoolError as exc:
        (code, error), result, stderr = _error(exc), None, exc.detail if isinstance(exc, isolation.ChildDied) else None
    record = {
        "started_utc": started, "finished_utc": environment.utc_now(), "seconds": round(time.monotonic() - clock, 3), "exit_code": code,
        "error": error, "stderr_tail": stderr,
    }
    return record, result


def run_cell(job: CellJob, env: dict, retries: int, timeout: float) -> dict:
    """The cell until it yields a result or `retries` more attempts failed. A failed check (say, output
    agreement) is a result, not a failure: it is kept and not retried."""
    # where it ran: under Ray, the worker's CUDA_VISIBLE_DEVICES is the GPU Ray gave the task
    placement = {"host": socket.gethostname(), "cuda_visible_devices": env.get("CUDA_VISIBLE_DEVICES", os.environ.get("CUDA_VISIBLE_DEVICES"))}
    attempts = []
    for _ in range(retries + 1):
        record, result = _attempt(job, env, timeout)
        attempts.append(record)
        if result is not None:
            status = "ok" if record["exit_code"] == 0 else "check-failed"
            return {**placement, "status": status, "attempts": attempts, "result": result}
    return {**placement, "status": "failed", "attempts": attempts, "result": None, "env": environment.fingerprint()}


def run_local(jobs: Sequence[CellJob], slots: Sequence[str | None], pci_order: bool, spread_cpu: bool, retries: int, timeout: float, done: Done) -> None:
    """One worker thread per device slot, each running one cell subprocess at a time, pinned to its
    device with CUDA_VISIBLE_DEVICES (a slot of None: no pinning, the CPU). With `pci_order` the
    slots are NVML's indices, which CUDA shares only under CUDA_DEVICE_ORDER=PCI_BUS_ID. CPU cells
    run on the first slot only, one at a time, unless `spread_cpu`."""
    pending = list(jobs)
    lock = threading.Lock()

    def take(slot: str | None) -> CellJob | None:
        with lock:
            for index, job in enumerate(pending):
                free = job.cell["on_gpu"] or spread_cpu or slot == slots[0]
                if (job.cell["device"] is None and free) or str(job.cell["device"]) == slot:
                    return pending.pop(index)
        return None

    raised: list[BaseException] = []  # a worker's error (writing a result failed), raised here

    def work(slot: str | None) -> None:
        while not raised and (job := take(slot)) is not None:
            env = {} if slot is None else {"CUDA_VISIBLE_DEVICES": slot, **({"CUDA_DEVICE_ORDER": "PCI_BUS_ID"} if pci_order else {})}
            record = {**run_cell(job, env, retries, timeout), "device_slot": slot}
            with lock:
                try:
                    done(job.cell, record)
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


def run_ray(jobs: Sequence[CellJob], address: str | None, retries: int, timeout: float, done: Done) -> None:
    """Each cell a Ray task holding one GPU (num_gpus=1: Ray sets its CUDA_VISIBLE_DEVICES) or one
    CPU, still running the cell in a process of its own; results come back as they finish."""
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
        for job in jobs:
            resources = {"num_gpus": 1} if job.cell["on_gpu"] else {"num_cpus": job.cell["cpus"]}
            futures[task.options(**resources, max_retries=retries).remote(job, {}, retries, timeout)] = job.cell
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
