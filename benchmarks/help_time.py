"""How long each command's --help takes, and which heavy packages it imports (there should be none):
best of N wall times of `python -m infertool CMD --help`, each a fresh process, and the packages
`python -X importtime` shows it importing. Prints a Markdown table.

    python benchmarks/help_time.py [ROUNDS]    # results/cpu/help_time.md
"""

import os
import subprocess
import sys
import time

COMMANDS = ("", "run", "bench", "sweep", "optimize", "debug", "debug layers", "debug precision", "quantize", "convert", "build-engine",
            "report", "doctor")
HEAVY = ("onnx", "ml_dtypes", "numpy", "onnxruntime", "psutil", "torch", "tensorflow", "tensorrt", "tensorrt_rtx", "openvino", "rich.progress")


def wall(argv: list[str], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return min(times)


def imported(argv: list[str]) -> list[str]:
    """The heavy packages `-X importtime` lists (its third column: the module, indented by depth)."""
    lines = subprocess.run([argv[0], "-X", "importtime", *argv[1:]], capture_output=True, text=True, check=True).stderr.splitlines()
    names = {line.rpartition("|")[2].strip() for line in lines if line.startswith("import time:")}
    return [name for name in HEAVY if name in names]


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; best of {rounds}\n")
    print("| command | --help wall s | heavy packages imported |\n|---|---:|---|")
    for command in COMMANDS:
        argv = [sys.executable, "-m", "infertool", *command.split(), "--help"]
        print(f"| {command or '(none)'} | {wall(argv, rounds):.3f} | {', '.join(imported(argv)) or 'none'} |", flush=True)


if __name__ == "__main__":
    main()
