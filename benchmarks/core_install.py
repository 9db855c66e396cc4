"""The core install against the lab's: size on disk, and whole cold processes of `ferlab
--help`, `ferlab predict default photo.jpg --out x.json` (one 256x256 photo) and a Python
`analyze` of it, minimum and median of several runs, beside the floor `python -c "import numpy,
cv2, onnxruntime"`.

    .venv/bin/python benchmarks/core_install.py CORE_VENV [RUNS]

CORE_VENV: a venv with `pip install .` from the clone, or of the wheel `python -m build`
makes (no extras). The lab is .venv, run by it; each extra's size is what its packages (and
theirs) add to the core, read from the lab's installed distributions. Writes
benchmarks/results/core_install.md and .json. Run it with nothing else on the CPU.
"""

import statistics
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from PIL import Image
from skimage import data as skdata

from ferlab.runs import cpu_model
from timing import record, seconds_each

ROOT = Path(__file__).resolve().parents[1]


def size_mb(venv: Path) -> float:
    out = subprocess.run(["du", "-sm", str(venv)], capture_output=True, text=True).stdout
    return float(out.split()[0])


def timed(cmd: list[str], cwd: Path, runs: int) -> tuple[float, float]:
    def once():
        r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)}: {r.stderr}")

    times = seconds_each(once, runs, warmup=1)  # the warm-up fills the disk cache
    return round(min(times), 3), round(statistics.median(times), 3)


def closure(names: set[str]) -> set[str]:
    """The installed distributions `names` need, themselves included (extras' markers off)."""
    seen, todo = set(), list(names)
    while todo:
        name = todo.pop().lower().replace("_", "-")
        if name in seen:
            continue
        try:
            requires = metadata.distribution(name).requires or []
        except metadata.PackageNotFoundError:
            continue
        seen.add(name)
        for line in requires:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return seen


def installed_mb(names: set[str]) -> float:
    size = 0
    for name in names:
        dist = metadata.distribution(name)
        size += sum(
            f.size or 0 for f in dist.files or [] if "__pycache__" not in str(f)
        )  # fmt: skip
    return size / 1e6


def extra_sizes_mb() -> dict[str, float]:
    """MB each extra of ferlab adds to the core install, each on its own."""
    requires = [Requirement(r) for r in metadata.distribution("ferlab").requires]
    core = closure({r.name for r in requires if r.marker is None})
    extras = sorted({str(m).split("==")[1].strip(" '\"") for r in requires if (m := r.marker)})
    sizes = {}
    for extra in extras:
        names = {r.name for r in requires if r.marker and r.marker.evaluate({"extra": extra})}
        sizes[extra] = round(installed_mb(closure(names) - core))
    return sizes


def main(core: str, runs: str = "7") -> None:
    n = int(runs)
    venvs = {"core": Path(core), "lab": ROOT / ".venv"}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        Image.fromarray(skdata.astronaut()).resize((256, 256)).save(folder / "photo.jpg")
        api = "import ferlab; print(ferlab.Recognizer().analyze('photo.jpg')[0].emotion)"
        result = {"cpu": cpu_model(), "runs": n, "venvs": {}, "extras_mb": extra_sizes_mb()}
        print("extras", result["extras_mb"], flush=True)
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
    lines += [
        "",
        "What each extra adds to the core, on its own (MB, its packages and theirs as "
        "installed in the lab):",
        "",
        "| extra | " + " | ".join(result["extras_mb"]) + " |",
        "| --- | " + " | ".join("---:" for _ in result["extras_mb"]) + " |",
        "| MB | " + " | ".join(str(v) for v in result["extras_mb"].values()) + " |",
    ]
    record("core_install", result, lines)


if __name__ == "__main__":
    main(*sys.argv[1:])
