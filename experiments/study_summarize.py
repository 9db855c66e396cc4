"""results/study/summary.json: the study's three networks, quick and fully trained.

    .venv/bin/python experiments/study_summarize.py

reads results/report-quick/summary.json (`make run`), the full runs recorded in
results/study/full/{dnn,control}/metrics.json and the shipped `default` model card (the fully
trained CNN), and writes accuracies as fractions, with the majority class of each split.
"""

import json
from pathlib import Path

from ferlab.inference import load_model

ROOT = Path(__file__).resolve().parents[1] / "results"  # the records
HERE = ROOT / "study"


def pair(metrics: dict) -> dict:
    return {"val": metrics["val"]["accuracy"], "public": metrics["PublicTest"]["accuracy"]}


def main() -> None:
    quick = json.loads((ROOT / "report-quick" / "summary.json").read_text())
    full = {"cnn": pair(load_model("default").card.metrics)}
    for role in ("dnn", "control"):
        metrics = HERE / "full" / role / "metrics.json"
        if metrics.is_file():
            full[role if role == "dnn" else "dense_control"] = pair(json.loads(metrics.read_text()))
    summary = {
        "quick": {
            "cnn": quick["quick"]["cnn"],
            "dnn": quick["quick"]["dnn"],
            "dense_control": quick["quick"]["control"],
        },
        "full": full,
        "majority": quick["majority"],
    }
    (HERE / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
