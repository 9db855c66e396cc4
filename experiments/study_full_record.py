"""Record the study's three full-size runs (experiments/study_full.sh trains them) into
results/study/full/: each run's small files and figures on validation and PublicTest (plain
and TTA), and for the VGG the arrays its figures need (its weights, 177 MB, are not kept).

    .venv/bin/python experiments/study_full_record.py RUNS_DIR DATA results/study/full
"""

import sys
from pathlib import Path

from ferlab.report.full_study import RUNS, record_run


def main(runs: Path, data: str, dest: Path) -> None:
    for name in RUNS:
        if (dest / name).exists():
            print(f"{dest / name}: recorded already")
            continue
        ev = record_run(runs / name, data, dest / name, figures=name == "vgg")
        print(
            f"{name}: {ev['epochs']} epochs, {ev['cpu_hours']} CPU-hours, validation "
            f"{ev['val']['accuracy']:.2%} ({ev['val']['accuracy_tta']:.2%} TTA), PublicTest "
            f"{ev['PublicTest']['accuracy']:.2%} ({ev['PublicTest']['accuracy_tta']:.2%} TTA)"
        )
    for f in sorted(runs.glob("lscpu-*.txt")):  # the machines that trained them
        (dest / f.name).write_text(f.read_text())


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]))
