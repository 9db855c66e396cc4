"""Re-evaluate the shipped `default` (flagship@1) on the duplicate-free part of the validation
split it was selected on: the faces of that split with no identical copy in its training part.

    .venv/bin/python experiments/dedup_reevaluate_default.py ../shared/data/fer2013.zip \
        > results/dedup/default.json
"""

import json
import sys

import numpy as np

from ferlab.data import RAW, load
from ferlab.evaluation import evaluate
from ferlab.inference import load_model, validation_split_of

data = sys.argv[1]
loaded = load_model("default")
raw, _ = load(data, RAW)
split = validation_split_of(loaded)  # the shipped ids (a version-1 split: ids only)
train, val = split.apply(raw)
leaked = np.isin(val.hashes, train.hashes)
same_label = np.array(
    [
        val.labels[i] in set(train.labels[train.hashes == val.hashes[i]])
        for i in np.flatnonzero(leaked)
    ]
)
out = {
    "command": "python experiments/dedup_reevaluate_default.py ../shared/data/fer2013.zip",
    "validation_faces": len(val),
    "with_a_copy_in_training": int(leaked.sum()),
    "with_a_copy_of_the_same_label": int(same_label.sum()),
}
for name, faces in (("old_split", val), ("duplicate_free", val.select(~leaked))):
    for tta in (False, True):
        r = evaluate(loaded, faces, tta=tta, name="default").report
        out[f"{name}{'_tta' if tta else ''}"] = {
            "n": r["n"],
            "accuracy": r["accuracy"],
            "majority_accuracy": r["majority_accuracy"],
        }
# The leaked faces alone: how much easier a face is when its copy was trained on.
r = evaluate(loaded, val.select(leaked), name="default").report
out["leaked_only"] = {"n": r["n"], "accuracy": r["accuracy"]}
print(json.dumps(out, indent=1))
