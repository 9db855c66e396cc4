"""What the study itself reported, set beside what ferlab measures (arrays and rows in, rows out).

The study: a course report on FER2013 comparing a VGG-style CNN with a 51-layer dense network
of about the same size (Keras summaries), a most-confused table read off its confusion matrix,
and the filters of its second conv layer.
"""

from ferlab.models import keras_param_counts, summary_rows
from ferlab.report.plan import ROLES

# Keras summaries in the study: total, trainable, non-trainable.
STUDY_PARAMS = {
    "vgg-study": (44_305_991, 44_272_839, 33_152),
    "dnn-study": (42_809_407, 42_717_607, 91_800),
}
# Ours, counted as Keras does (keras_param_counts of create(name)): constants, so a report
# does not build 87M parameters to print them; a test checks them against the networks.
OUR_PARAMS = {
    "vgg-study": (44_154_055, 44_123_079, 30_976),
    "dnn-study": (42_809_407, 42_717_607, 91_800),
}
# "Which emotions are confused with which", as the study lists them.
STUDY_CONFUSED = {
    "angry": ("fear",),
    "disgust": ("angry", "sad"),
    "fear": ("sad",),
    "happy": (),
    "sad": ("fear",),
    "surprise": ("fear",),
    "neutral": ("sad",),
}
STUDY_FILTER_LAYER = "its second conv layer: 64 filters on 48x48 maps"
# Why vgg-study differs (README, Models): the study's conv stack is not given.
VGG_GAP = (
    "The study does not give its conv stack; vgg-study uses VGG16's, which with the study's "
    "dense head has {missing:,} parameters ({share:.2%}) fewer than the study's Keras total, "
    "and {bn:,} fewer non-trainable ones ({channels:,} BatchNorm channels): the study's network "
    "had somewhat more conv channels than VGG16."
)


def params_beside_study() -> list[dict]:
    """Per study network: the study's Keras counts, ours, and the difference."""
    rows = []
    for name, (total, trainable, frozen) in STUDY_PARAMS.items():
        ours = dict(zip(("total", "trainable", "non_trainable"), OUR_PARAMS[name], strict=True))
        rows.append(
            {
                "model": name,
                "study": {"total": total, "trainable": trainable, "non_trainable": frozen},
                "ours": ours,
                "difference": ours["total"] - total,
                "share": (ours["total"] - total) / total,
            }
        )
    return rows


def vgg_gap_sentence(rows: list[dict]) -> str:
    vgg = next(r for r in rows if r["model"] == "vgg-study")
    bn = vgg["study"]["non_trainable"] - vgg["ours"]["non_trainable"]
    return VGG_GAP.format(missing=-vgg["difference"], share=-vgg["share"], bn=bn, channels=bn // 2)


def confused_beside_study(most_confused: list[dict]) -> list[dict]:
    """Per true emotion: what the study lists it as confused with, what we measured
    (>= the table's threshold), and whether the two agree."""
    rows = []
    for row in most_confused:
        ours = [c["emotion"] for c in row["confused_with"]]
        study = list(STUDY_CONFUSED.get(row["true"], ()))
        if set(ours) == set(study):
            verdict = "agree"
        elif set(ours) & set(study):
            verdict = "partly"
        else:
            verdict = "differs"
        rows.append(
            {
                "true": row["true"],
                "study": study,
                "ours": row["confused_with"],
                "verdict": verdict,
            }
        )
    return rows


def filter_layer_note(model, layer: str, n_filters: int) -> str:
    """How the filter section's layer compares with the study's choice."""
    from ferlab.models import conv_layers

    convs = list(conv_layers(model).items())
    if len(convs) > 1 and layer == convs[1][0] and convs[1][1].out_channels == 64:
        return f"The study showed {STUDY_FILTER_LAYER}; this is the same layer of this network."
    second = f"{convs[1][1].out_channels} filters" if len(convs) > 1 else "no second conv layer"
    return (
        f"The study showed {STUDY_FILTER_LAYER}. This network's second conv layer has {second};"
        f" the section shows `{layer}` ({n_filters} filters), the layer the model names for its"
        " filters."
    )


def comparison(ev: dict) -> dict:
    """The two explanations of the study's finding, as measured: no convolutions (the dense
    control against the CNN) and too deep to train (the 51-layer DNN against the control)."""
    c, d, k = (ev[r]["val"]["accuracy"] for r in ("cnn", "dnn", "control"))
    majority = ev["majority"]["val"]
    return {
        "cnn_vs_dnn": (
            f"The CNN reaches {c:.1%} validation accuracy and the study's 51-layer DNN {d:.1%}"
            f" ({(c - d) * 100:+.1f} points; always answering the most frequent emotion scores"
            f" {majority:.1%})."
        ),
        "convolutions": (
            f"No convolutions: the dense control, of about the same size, reaches {k:.1%}, "
            f"{(c - k) * 100:.1f} points under the CNN."
            if c >= k
            else f"The dense control reaches {k:.1%}, {(k - c) * 100:.1f} points above the CNN."
        ),
        "depth": (
            f"Too deep to train: the 51-layer DNN stays {(k - d) * 100:.1f} points under the "
            "3-layer control of the same size"
            + (" and at the majority class" if abs(d - majority) < 0.01 else "")
            + "."
            if k >= d
            else f"Depth: the 51-layer DNN is {(d - k) * 100:.1f} points above the 3-layer control."
        ),
    }


def summary(quick: bool, minutes: float | None, evaluation: dict) -> dict:
    """summary.json: each network's validation and PublicTest accuracy and the majority
    class's, as fractions (results/study/summary.json gathers them)."""

    def pair(scores):
        return {
            "val": scores["val"]["accuracy"],
            "public": scores.get("PublicTest", {}).get("accuracy"),
        }

    majority = evaluation["majority"]
    return {
        "quick" if quick else "full": {role: pair(evaluation[role]) for role in ROLES},
        "majority": {"val": majority["val"], "public": majority.get("PublicTest")},
        "work": "time budget" if minutes else "fixed",
    }


def structure(net) -> dict:
    """A trained network's Keras-style layer table."""
    counts = keras_param_counts(net)
    return {
        "model": net.model_name,
        "total": counts.total,
        "trainable": counts.trainable,
        "non_trainable": counts.non_trainable,
        "rows": [
            {"name": r.name, "kind": r.kind, "shape": str(r.output_shape), "params": r.params}
            for r in summary_rows(net)
        ],
    }
