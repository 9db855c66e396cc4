"""How long the command line takes before it does anything: whole processes of `ferlab --help`
and `ferlab data info --help`, and `python -X importtime -c "import ferlab.commands.cli"`'s
own total, minimum and median of several runs, beside the floor of a bare `python -c pass`.

Usage: .venv/bin/python benchmarks/import_time.py [RUNS]   (run with nothing else using the CPU)
Writes benchmarks/results/import_time.json and .md.
"""

import json
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

from ferlab.runs import cpu_model

FERLAB = [sys.executable, "-m", "ferlab"]
CASES = {
    "python -c pass (the floor)": [sys.executable, "-c", "pass"],
    "ferlab --help": [*FERLAB, "--help"],
    "ferlab data info --help": [*FERLAB, "data", "info", "--help"],
}


def wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, capture_output=True, check=True)
    return time.perf_counter() - start


def import_seconds() -> float:
    """The cumulative import time of ferlab.commands.cli, as -X importtime reports it."""
    r = subprocess.run([sys.executable, "-X", "importtime", "-c", "import ferlab.commands.cli"],
                       capture_output=True, text=True, check=True)  # fmt: skip
    line = next(x for x in r.stderr.splitlines() if x.rstrip().endswith("| ferlab.commands.cli"))
    return int(re.split(r"\s*\|\s*", line)[1]) / 1e6


def main(runs: int = 7) -> None:
    results = {}
    for name, cmd in CASES.items():
        wall(cmd)  # the first run warms the file cache
        times = [wall(cmd) for _ in range(runs)]
        results[name] = {
            "min_s": round(min(times), 3),
            "median_s": round(statistics.median(times), 3),
        }
    imports = [import_seconds() for _ in range(runs)]
    results["import ferlab.commands.cli (-X importtime)"] = {
        "min_s": round(min(imports), 3),
        "median_s": round(statistics.median(imports), 3),
    }
    record = {"cpu": cpu_model(), "python": platform.python_version(), "runs": runs,
              "results": results}  # fmt: skip
    out = Path(__file__).parent / "results"
    (out / "import_time.json").write_text(json.dumps(record, indent=1) + "\n")
    lines = [
        "# Command-line start-up",
        "",
        f"`.venv/bin/python benchmarks/import_time.py {runs}` on {record['cpu']}, Python "
        f"{record['python']}: whole processes, {runs} runs each after one warm-up.",
        "",
        "| what | min (s) | median (s) |",
        "| --- | ---: | ---: |",
        *(f"| {k} | {v['min_s']} | {v['median_s']} |" for k, v in results.items()),
    ]
    (out / "import_time.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 7)
