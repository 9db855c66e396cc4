"""The run folder: the one place that knows what a training run leaves on disk, and where.

    RUN/config.yaml        the TrainConfig it was started with (`ferlab train --config` reads it)
    RUN/split.json         the validation split it was selected on
    RUN/env.json           software and hardware of its first invocation
    RUN/metrics.csv        one row per finished epoch, appended as each epoch ends
    RUN/metrics.json       summary written when an invocation ends (best epoch, accuracies)
    RUN/curves.png         its training curves
    RUN/gradient_norms.csv per-layer gradient norms every N steps (when asked for)
    RUN/checkpoints/       best.ckpt (selected on validation) and last.ckpt (resumable)
    RUN/tensorboard/       Lightning's TensorBoard events

Training, evaluation, compare, the report and the CLI all reach these files through RunFolder.
"""

import csv
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from ferlab.atomic import write_text_atomic
from ferlab.data.splits import ValidationSplit
from ferlab.errors import FerlabError

HISTORY_KEYS = (
    "train_loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "val_acc_raw",  # runs with an EMA: val_acc scores the average, this the raw weights
    "epoch_seconds",
    "train_img_s",
)


@dataclass(frozen=True)
class RunFolder:
    path: Path

    def __post_init__(self):
        object.__setattr__(self, "path", Path(self.path))

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def config(self) -> Path:
        return self.path / "config.yaml"

    @property
    def split(self) -> Path:
        return self.path / "split.json"

    @property
    def env(self) -> Path:
        return self.path / "env.json"

    @property
    def history(self) -> Path:
        return self.path / "metrics.csv"

    @property
    def summary(self) -> Path:
        return self.path / "metrics.json"

    @property
    def gradients(self) -> Path:
        """Per-layer gradient norms during training (--gradient-norms-every N)."""
        return self.path / "gradient_norms.csv"

    @property
    def curves(self) -> Path:
        return self.path / "curves.png"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def best(self) -> Path:
        return self.checkpoints / "best.ckpt"

    @property
    def last(self) -> Path:
        return self.checkpoints / "last.ckpt"

    @property
    def tensorboard(self) -> Path:
        return self.path / "tensorboard"

    @classmethod
    def of_checkpoint(cls, checkpoint: Path) -> "RunFolder | None":
        """The run a checkpoint file lives in (RUN/checkpoints/*.ckpt), if it lives in one."""
        checkpoint = Path(checkpoint)
        if checkpoint.parent.name != "checkpoints":
            return None
        run = cls(checkpoint.parent.parent)
        return run if run.config.is_file() else None

    def is_run(self) -> bool:
        return self.config.is_file()

    def resumable(self) -> bool:
        return self.config.is_file() and self.last.is_file()

    def finished(self) -> bool:
        """An invocation ended on its schedule or budget (not interrupted) and summarized it."""
        return self.summary.is_file() and self.read_summary().get("stopped_by") != "interrupt"

    def checkpoint(self) -> Path:
        """The checkpoint the run stands for: its best, else its latest."""
        for path in (self.best, self.last):
            if path.is_file():
                return path
        raise FerlabError(f"{self.path}: run folder has no checkpoint (checkpoints/best.ckpt)")

    def read_summary(self) -> dict:
        if not self.summary.is_file():
            raise FerlabError(f"{self.path}: not a finished ferlab run (no metrics.json)")
        return _read_mapping(self.summary, json.loads)

    def read_config(self) -> dict:
        """config.yaml as a mapping; TrainConfig.from_yaml validates it as settings."""
        if not self.config.is_file():
            raise FerlabError(f"{self.path}: not a ferlab run folder (no config.yaml)")
        return _read_mapping(self.config, yaml.safe_load)

    def read_env(self) -> dict:
        return _read_mapping(self.env, json.loads) if self.env.is_file() else {}

    def read_split(self) -> ValidationSplit:
        if not self.split.is_file():
            raise FerlabError(f"{self.path}: no saved validation split (split.json)")
        return ValidationSplit.load(self.split)

    def write_summary(self, summary: dict) -> None:
        write_text_atomic(self.summary, json.dumps(summary, indent=1) + "\n")

    def read_history(self) -> dict[str, list]:
        """Per-epoch metrics from metrics.csv: {"epoch": [1, 2, ...], key: [...]} for every
        HISTORY_KEYS entry (NaN where a run did not record it)."""
        history = {"epoch": [], **{k: [] for k in HISTORY_KEYS}}
        if not self.history.is_file():
            return history
        with open(self.history, newline="") as f:
            for row in csv.DictReader(f):
                history["epoch"].append(int(row["epoch"]))
                for k in HISTORY_KEYS:
                    history[k].append(float(row[k]) if row.get(k) not in ("", None) else math.nan)
        return history

    def append_history(self, row: dict) -> None:
        """Record a finished epoch: `row` (epoch and HISTORY_KEYS) replaces any rows of that
        epoch or later, which a run stopped before its checkpoint was saved left behind."""
        history = self.read_history()
        keep = [i for i, e in enumerate(history["epoch"]) if e < row["epoch"]]
        keys = ("epoch", *HISTORY_KEYS)
        lines = [",".join(keys)]
        for i in keep:
            lines.append(",".join(_cell(k, history[k][i]) for k in keys))
        lines.append(",".join(_cell(k, row.get(k, math.nan)) for k in keys))
        write_text_atomic(self.history, "\n".join(lines) + "\n")

    def read_gradients(self) -> tuple[np.ndarray, np.ndarray]:
        """(steps, norms of shape (rows, layers)) recorded during training."""
        rows = np.loadtxt(self.gradients, delimiter=",", skiprows=1, ndmin=2)
        return rows[:, 0].astype(int), rows[:, 2:]


def cpu_model() -> str:
    """The processor's name as lscpu gives it (speed figures depend on it)."""
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(precision: str | None = None) -> dict:
    """Software and hardware a run (env.json) or a report was made with."""
    import platform
    import sys

    import kornia
    import lightning
    import torch

    from ferlab._version import __version__

    return {
        "ferlab": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "kornia": kornia.__version__,
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "cpu_bf16": bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()),
        **({"precision": precision} if precision else {}),
        "argv": sys.argv,
    }


def common_split(runs: list["RunFolder | Path | str"]) -> ValidationSplit | None:
    """The validation split that all these runs were selected on (None when none of them saved
    one); FerlabError naming two runs whose splits differ."""
    found = [(r, r.read_split()) for r in map(_as_run, runs) if r.split.is_file()]
    for run, split in found[1:]:
        if not split.same_faces(found[0][1]):
            raise FerlabError(
                f"{found[0][0].path} and {run.path} were selected on different validation "
                f"splits ({len(found[0][1].ids)} and {len(split.ids)} faces); their validation "
                "figures cannot be compared"
            )
    return found[0][1] if found else None


def _as_run(run) -> RunFolder:
    return run if isinstance(run, RunFolder) else RunFolder(Path(run))


def _read_mapping(path: Path, parse) -> dict:
    try:
        value = parse(path.read_text())
    except (ValueError, yaml.YAMLError) as e:
        raise FerlabError(f"{path}: damaged run file ({type(e).__name__}: {e})") from None
    if not isinstance(value, dict):
        raise FerlabError(f"{path}: damaged run file (not a mapping)")
    return value


def _cell(key: str, value) -> str:
    return str(int(value)) if key == "epoch" else f"{float(value):.6g}"
