"""The core install against the lab's: size on disk, and whole cold processes of `ferlab
--help`, `ferlab predict default photo.jpg --out x.json` (one 256x256 photo) and a Python
`analyze` of it, minimum and median of several runs, beside the floor `python -c "import numpy,
cv2, onnxruntime"`.

    .venv/bin/python benchmarks/core_install.py CORE_VENV [RUNS]

CORE_VENV: a venv with `pip install .` from the clone (no extras). The lab is .venv. Writes
benchmarks/results/core_install.md and .json. Run it with nothing else on the CPU.
"""

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image
from skimage import data as skdata

from ferlab.runs import cpu_model

ROOT = Path(__file__).resolve().parents[1]


def size_mb(venv: Path) -> float:
    out = subprocess.run(["du", "-sm", str(venv)], capture_output=True, text=True).stdout
    return float(out.split()[0])


def timed(cmd: list[str], cwd: Path, runs: int) -> tuple[float, float]:
    subprocess.run(cmd, cwd=cwd, capture_output=True)  # warm the disk cache
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if r.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)}: {r.stderr}")
    return round(min(times), 3), round(statistics.median(times), 3)


def main(core: str, runs: str = "7") -> None:
    n = int(runs)
    venvs = {"core": Path(core), "lab": ROOT / ".venv"}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        Image.fromarray(skdata.astronaut()).resize((256, 256)).save(folder / "photo.jpg")
        api = "import ferlab; print(ferlab.Recognizer().analyze('photo.jpg')[0].emotion)"
        result = {"cpu": cpu_model(), "runs": n, "venvs": {}}
        for name, venv in venvs.items():
            py, cli = str(venv / "bin" / "python"), str(venv / "bin" / "ferlab")
            result["venvs"][name] = {
                "size_mb": size_mb(venv),
                "floor: import numpy, cv2, onnxruntime": timed(
                    [py, "-c", "import numpy, cv2, onnxruntime"], folder, n
                ),
                "ferlab --help": timed([cli, "--help"], folder, n),
                "ferlab predict default photo.jpg --out x.json": timed(
                    [cli, "predict", "default", "photo.jpg", "--out", "x.json", "--force"],
                    folder,
                    n,
                ),  # fmt: skip
                "python: Recognizer().analyze(photo)": timed([py, "-c", api], folder, n),
            }
            print(name, result["venvs"][name], flush=True)
    out = Path(__file__).parent / "results"
    (out / "core_install.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = [
        "# The core install",
        "",
        f"`python benchmarks/core_install.py CORE_VENV {n}` on {result['cpu']} (2 cores): the "
        "core venv (`pip install .`, no extras) beside the lab's (.venv, `make setup-test`); "
        f"whole cold processes, min / median of {n} runs after one warm-up, seconds.",
        "",
        "| | " + " | ".join(venvs) + " |",
        "| --- | " + " | ".join("---:" for _ in venvs) + " |",
        "| size on disk (MB) | "
        + " | ".join(f"{r['size_mb']:.0f}" for r in result["venvs"].values())
        + " |",
    ]
    for what in list(result["venvs"]["core"])[1:]:
        cells = [f"{r[what][0]} / {r[what][1]}" for r in result["venvs"].values()]
        lines.append(f"| {what} | " + " | ".join(cells) + " |")
    (out / "core_install.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
