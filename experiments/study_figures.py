"""The gradient figures of results/study/README.md.

    .venv/bin/python experiments/study_figures.py ../shared/data/fer2013.zip

gradients_init.png: per-layer gradient norm of the untrained networks on one batch of 128
training faces (the study's DNN as the study trained it, with the settings that let it learn,
and the dense control); gradient_history.png: the first and last layer's norm during the
recorded runs in full/ (every 20 steps). Also prints the first/last ratios for the README.
"""

import sys
from pathlib import Path

import numpy as np
import torch

from ferlab.data import RAW, load
from ferlab.explain.gradients import gradient_norms
from ferlab.models import create
from ferlab.plots import plot_gradient_history, plot_gradient_norms
from ferlab.runs import RunFolder

HERE = Path(__file__).resolve().parents[1] / "results" / "study"  # its records
NETWORKS = {
    "dnn-study, slope 0.1, dropout 0.2 (the study's)": ("dnn-study", {}),
    "dnn-study, slope 0.3, dropout 0.2": ("dnn-study", {"slope": 0.3}),
    "dnn-study, slope 0.5, dropout 0 (learns)": ("dnn-study", {"slope": 0.5, "dropout": 0.0}),
    "dense-control (3 x 4096)": ("dense-control", {}),
}


def main(data: str) -> None:
    faces, _ = load(data, RAW)
    train = faces.split("Training")
    pick = np.random.default_rng(0).choice(len(train), 128, replace=False)
    x = torch.from_numpy(train.images[pick]).float().div(255).unsqueeze(1)
    y = torch.as_tensor(train.labels[pick])
    series = {}
    for label, (name, args) in NETWORKS.items():
        torch.manual_seed(0)
        series[label] = gradient_norms(create(name, **args), x, y)
        print(f"{label}: first/last {series[label][0] / series[label][-1]:.1f}")
    plot_gradient_norms(series, HERE / "gradients_init.png", "untrained, one batch of 128 faces")
    history = {
        label: RunFolder(HERE / "full" / role).read_gradients()
        for role, label in (
            ("dnn", "dnn-study, slope 0.5, dropout 0"),
            ("control", "dense-control"),
        )
        if (HERE / "full" / role / "gradient_norms.csv").is_file()
    }
    plot_gradient_history(history, HERE / "gradient_history.png")


if __name__ == "__main__":
    main(sys.argv[1])
