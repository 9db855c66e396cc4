"""FER+: the FERPlus layout read with its votes, and FERPlus's rules for labels from votes."""

import json

import cv2
import numpy as np
import pytest

from conftest import run_cli, synthetic_faces, write_tree, zip_tree
from ferlab.data import RAW, load
from ferlab.data.labels import FERPLUS_CLASSES, UNLABELED
from ferlab.data.votes import LEFT_OUT, majority_labels, soft_targets
from ferlab.errors import FerlabError

# Hand-made vote rows (neutral, happiness, surprise, sadness, anger, disgust, fear, contempt,
# unknown, NF) and the majority label FERPlus's rule gives each.
ROWS = [
    ([4, 0, 0, 1, 3, 2, 0, 0, 0, 0], -4),  # 4 of 9 counted (the single vote is noise): none
    ([6, 0, 1, 1, 0, 0, 0, 0, 2, 0], 0),  # 6 of 8 after the single votes go: neutral
    ([0, 10, 0, 0, 0, 0, 0, 0, 0, 0], 1),  # unanimous happiness
    ([0, 0, 5, 0, 0, 0, 5, 0, 0, 0], -4),  # a 5-5 tie is no majority
    ([0, 1, 1, 1, 1, 1, 1, 1, 2, 1], LEFT_OUT["unknown"]),  # only "unknown" has more than one
    ([0, 0, 0, 0, 0, 0, 0, 2, 0, 8], LEFT_OUT["not_a_face"]),
    ([0, 0, 0, 0, 0, 0, 0, 7, 3, 0], 7),  # contempt
    ([1, 1, 1, 1, 1, 1, 1, 1, 1, 1], -4),  # every vote single: nothing left
]


def test_majority_rule_on_hand_made_votes():
    votes = np.array([r for r, _ in ROWS])
    assert majority_labels(votes).tolist() == [label for _, label in ROWS]


def test_probability_targets_keep_the_top_classes_share():
    votes = np.array([[6, 0, 1, 1, 0, 0, 0, 0, 2, 0], [0, 0, 5, 0, 0, 0, 5, 0, 0, 0]])
    targets, index = soft_targets(votes, "probability")
    # Face 0: neutral 6 of the 8 counted votes holds 75%, so the search stops there.
    # Face 1: surprise and fear tie at the top and are taken together.
    assert index.tolist() == [0, 1]
    assert targets[0].tolist() == [1, 0, 0, 0, 0, 0, 0, 0]
    assert targets[1].tolist() == [0, 0, 0.5, 0, 0, 0, 0.5, 0]
    majority, kept = soft_targets(votes, "majority")
    assert kept.tolist() == [0] and majority.tolist() == [[1, 0, 0, 0, 0, 0, 0, 0]]
    multi, kept = soft_targets(np.array([[4, 0, 0, 3, 3, 0, 0, 0, 0, 0]]), "multi-target")
    assert kept.tolist() == [0] and np.allclose(multi[0][[0, 3, 4]], [0.4, 0.3, 0.3])


def write_ferplus(root, rows_by_folder: dict[str, list[list[int]]]) -> None:
    faces = synthetic_faces(per_class=3).images
    k = 0
    for folder, rows in rows_by_folder.items():
        (root / folder).mkdir(parents=True)
        lines = []
        for votes in rows:
            name = f"fer{k:07d}.png"
            cv2.imwrite(str(root / folder / name), faces[k])
            lines.append(f'{name},"(0, 0, 48, 48)",' + ",".join(map(str, votes)))
            k += 1
        (root / folder / "label.csv").write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("container", ["folder", "zip"])
def test_ferplus_layout_reads_votes_back_exactly(tmp_path, container):
    rows = [r for r, _ in ROWS]
    write_ferplus(tmp_path / "ferplus", {"FER2013Train": rows[:5], "FER2013Valid": rows[5:]})
    src = tmp_path / "ferplus"
    if container == "zip":
        src = zip_tree(src, tmp_path / "ferplus.zip", top="ferplus")
    faces, fp = load(src, RAW)
    assert faces.classes == FERPLUS_CLASSES and faces.votes.tolist() == rows
    assert faces.splits.tolist() == ["Training"] * 5 + ["PublicTest"] * 3
    expected = [label if label >= 0 else UNLABELED for _, label in ROWS]
    assert faces.labels.tolist() == expected
    assert faces.ids[0].endswith("FER2013Train/fer0000000.png")
    again, fp_again = load(src, RAW)  # from the cache: the same votes and classes
    assert again.votes.tolist() == rows and again.classes == FERPLUS_CLASSES and fp == fp_again
    info = run_cli("data", "info", src)
    assert info.returncode == 0 and "Training: 2 faces with a majority label" in info.stdout
    info = json.loads(run_cli("data", "info", src, "--json").stdout)["splits"]["PublicTest"]
    assert info["per_class"]["contempt"] == 1 and info["votes"]["left_out"]["not_a_face"] == 1


@pytest.mark.parametrize(
    "edit, says",
    [
        (lambda line: line.rsplit(",", 1)[0], "9 vote counts, expected 10"),
        (lambda line: line.replace(",0,0,0,0", ",0,-1,0,0", 1), "not a count"),
        (lambda line: line.replace("fer0000001", "fer9999999"), "fer9999999.png is not in"),
        (lambda line: line.replace(",0,0,0,0", "," + "9" * 30 + ",0,0,0", 1), "more than 1000"),
        (lambda line: line.replace(",0,0,0,0", ",1001,0,0,0", 1), "more than 1000 raters"),
        (lambda line: line.replace("fer0000001", "fer0000000"), "listed twice"),
    ],
)
def test_a_bad_label_csv_row_is_one_line(tmp_path, edit, says):
    write_ferplus(tmp_path / "fp", {"FER2013Train": [r for r, _ in ROWS[:3]]})
    table = tmp_path / "fp" / "FER2013Train" / "label.csv"
    lines = table.read_text().splitlines()
    lines[1] = edit(lines[1])
    table.write_text("\n".join(lines) + "\n")
    r = run_cli("data", "info", tmp_path / "fp")
    assert r.returncode == 2 and says in r.stderr and "line 2" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def write_fer2013new(folder, faces, rows):
    """fer2013.csv of `faces` and fer2013new.csv beside it: row i of the vote `rows` for face
    i; a row of None is one of FER+'s exclusions (no image name, no votes)."""
    from conftest import write_fer2013_csv

    folder.mkdir(parents=True, exist_ok=True)
    write_fer2013_csv(faces, folder / "fer2013.csv")
    lines = [
        "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF"
    ]
    for k, votes in enumerate(rows):
        name = "" if votes is None else f"fer{k:07d}.png"
        counts = votes or [0] * 10
        lines.append(f"{faces.splits[k]},{name}," + ",".join(map(str, counts)))
    (folder / "fer2013new.csv").write_text("\n".join(lines) + "\n")
    return folder


@pytest.mark.parametrize("given", ["folder", "csv", "zip"])
def test_fer2013new_beside_fer2013_reads_votes_row_by_row(tmp_path, given):
    faces = synthetic_faces(per_class=1, splits=("Training", "PublicTest"))
    votes = [r for r, _ in ROWS] + [[0, 0, 10, 0, 0, 0, 0, 0, 0, 0]] * (len(faces) - len(ROWS))
    votes[2] = None  # excluded by FER+
    folder = write_fer2013new(tmp_path / "fer", faces, votes)
    src = {
        "folder": folder,
        "csv": folder / "fer2013new.csv",
        "zip": zip_tree(folder, tmp_path / "fer.zip", top="fer"),
    }[given]
    read, _ = load(src, RAW)
    kept = [k for k, v in enumerate(votes) if v is not None]
    assert read.classes == FERPLUS_CLASSES and read.votes.tolist() == [votes[k] for k in kept]
    np.testing.assert_array_equal(read.images, faces.images[kept])  # row i is row i
    assert read.splits.tolist() == faces.splits[kept].tolist()
    expected = majority_labels(np.array([votes[k] for k in kept]))
    assert read.labels.tolist() == np.where(expected >= 0, expected, UNLABELED).tolist()
    assert read.ids[0] == "FER2013Train/fer0000000.png" and "fer0000002.png" not in "".join(
        read.ids
    )
    # fer2013.csv named alone keeps FER2013's own labels
    alone, _ = load(folder / "fer2013.csv", RAW)
    assert alone.votes is None and alone.labels.tolist() == faces.labels.tolist()


@pytest.mark.parametrize(
    "edit, says",
    [
        (lambda lines: lines[:-1], "rows, but fer2013.csv has"),
        (
            lambda lines: [lines[0], lines[1].replace("Training", "PublicTest", 1), *lines[2:]],
            "not of the same faces",
        ),  # fmt: skip
        (lambda lines: [lines[0], lines[1].replace(",0,", ",x,", 1), *lines[2:]], "not a count"),
        (
            lambda lines: [lines[0], lines[1].replace(",0,", f",{2**70},", 1), *lines[2:]],
            "more than 1000 raters",
        ),  # fmt: skip
    ],
)
def test_a_bad_fer2013new_is_one_line(tmp_path, edit, says):
    faces = synthetic_faces(per_class=1, splits=("Training",))
    folder = write_fer2013new(
        tmp_path / "fer", faces, [[8, 2, 0, 0, 0, 0, 0, 0, 0, 0]] * len(faces)
    )
    table = folder / "fer2013new.csv"
    table.write_text("\n".join(edit(table.read_text().splitlines())) + "\n")
    r = run_cli("data", "info", folder)
    assert r.returncode == 2 and says in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def ferplus_faces_folder(root, per_class: int = 30):
    """Synthetic faces in FERPlus's layout: each face's square says its class (8 of them, the
    eighth a copy of the first's place, brighter), 8 of 10 votes for it, 2 for a neighbour."""
    faces = synthetic_faces(per_class=per_class, splits=("Training", "PublicTest"), seed=4)
    k = 0
    for split, folder in (("Training", "FER2013Train"), ("PublicTest", "FER2013Valid")):
        (root / folder).mkdir(parents=True)
        lines = []
        for i in np.flatnonzero(faces.splits == split):
            label = int(faces.labels[i])
            image = faces.images[i]
            if label == 0 and k % 2:  # half of class 0 becomes contempt: inverted
                image, label = 255 - image, 7
            votes = [0] * 10
            votes[label], votes[(label + 1) % 8] = 8, 2
            name = f"fer{k:07d}.png"
            cv2.imwrite(str(root / folder / name), image)
            lines.append(f'{name},"(0, 0, 48, 48)",' + ",".join(map(str, votes)))
            k += 1
        (root / folder / "label.csv").write_text("\n".join(lines) + "\n")
    return root


@pytest.mark.parametrize("mode", ["majority", "probability", "crossentropy", "multi-target"])
def test_an_eight_class_model_trains_evaluates_and_predicts(mode, tmp_path):
    from conftest import tiny_config
    from ferlab.inference import load_model
    from ferlab.training import train

    data = ferplus_faces_folder(tmp_path / "fp")
    result = train(tiny_config(data, tmp_path / "run", epochs=8, lr=1e-2, label_mode=mode))
    assert result.metrics["val"]["accuracy"] > 0.4  # chance is 1/8
    card = load_model(tmp_path / "run").card
    assert card.classes == FERPLUS_CLASSES and card.label_mode == mode
    ev = json.loads(
        run_cli(
            "evaluate", tmp_path / "run", "--data", data, "--split", "PublicTest", "--json"
        ).stdout
    )
    assert len(ev["confusion"]) == 8 and all(len(row) == 8 for row in ev["confusion"])
    photo = tmp_path / "face.png"
    cv2.imwrite(str(photo), cv2.resize(load(data, RAW)[0].images[0], (48, 48)))
    r = run_cli("predict", tmp_path / "run", photo, "--out", tmp_path / "rows.json")
    (row,) = json.loads((tmp_path / "rows.json").read_text())["rows"]
    assert r.returncode == 0 and set(row["probabilities"]) == set(FERPLUS_CLASSES)
    if mode != "probability":
        return  # the explanation does not depend on how the model was trained
    r = run_cli(
        "explain", "saliency", tmp_path / "run", "--data", data, "--split", "PublicTest",
        "--per-class", 1, "--out", tmp_path / "explained",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    rows = json.loads((tmp_path / "explained" / "saliency.json").read_text())["faces"]
    assert sorted(row["true"] for row in rows) == list(range(8))  # one face of each class
    assert {row["predicted_class"] for row in rows} <= set(FERPLUS_CLASSES)
    assert (tmp_path / "explained" / "class_average.png").stat().st_size > 0


def test_single_label_data_refuses_a_vote_mode(tmp_path, tree):
    from conftest import tiny_config
    from ferlab.errors import FerlabError
    from ferlab.training import train

    with pytest.raises(FerlabError, match="needs FER\\+ votes"):
        train(tiny_config(tree, tmp_path / "run", label_mode="crossentropy"))
    assert not (tmp_path / "run").exists()


def test_soft_label_losses_equal_hand_computed_values():
    import torch

    from conftest import TINY
    from ferlab.models.card import ModelCard
    from ferlab.training import TrainConfig
    from ferlab.training.module import FERModule

    logits = torch.tensor([[2.0, 0.0, -1.0] + [0.0] * 5, [0.0, 1.0, 0.0] + [0.0] * 5])
    votes = torch.tensor([[0.75, 0.25] + [0.0] * 6, [0.0, 0.5, 0.5] + [0.0] * 5])
    labels = votes.argmax(1)
    log_p = torch.log_softmax(logits, 1)
    card = ModelCard("cnn-baseline", TINY | {"num_classes": 8}, FERPLUS_CLASSES).to_dict()

    def module(mode):
        from dataclasses import asdict

        return FERModule(asdict(TrainConfig(label_mode=mode, model_args=TINY)), card)

    def loss(mode):
        return float(module(mode)._loss(logits, labels, votes))

    ce = -(0.75 * log_p[0, 0] + 0.25 * log_p[0, 1] + 0.5 * log_p[1, 1] + 0.5 * log_p[1, 2]) / 2
    assert loss("crossentropy") == pytest.approx(float(ce), abs=1e-6)
    best = -(log_p[0, 0] + max(log_p[1, 1], log_p[1, 2])) / 2
    assert loss("multi-target") == pytest.approx(float(best), abs=1e-6)
    drawing = module("probability")  # built first: building draws from the RNG
    torch.manual_seed(0)
    drawn = torch.multinomial(votes, 1).squeeze(1)
    torch.manual_seed(0)
    assert float(drawing._loss(logits, labels, votes)) == pytest.approx(
        float(-(log_p[0, drawn[0]] + log_p[1, drawn[1]]) / 2), abs=1e-6
    )


def test_a_seven_class_model_on_ferplus_data_states_the_mapping(tmp_path):
    from conftest import tiny_run

    run, _ = tiny_run(tmp_path / "fer2013", per_class=6, seed=0, epochs=1)
    data = ferplus_faces_folder(tmp_path / "fp", per_class=4)
    r = run_cli("evaluate", run, "--data", data, "--split", "PublicTest")
    assert r.returncode == 0, r.stderr
    # One vocabulary: the 7 shared emotions have the same names; only contempt is left out.
    assert "classes mapped to the model's: same names" in r.stdout
    ev = json.loads(
        run_cli("evaluate", run, "--data", data, "--split", "PublicTest", "--json").stdout
    )
    contempt = sum(1 for v in load(data, RAW)[0].split("PublicTest").labels if v == 7)
    assert ev["left_out_unmapped"] == contempt > 0 and "contempt" not in ev["class_mapping"]
    assert ev["n"] == len(load(data, RAW)[0].split("PublicTest")) - contempt
    assert len(ev["labels"]) == 7
    # The majority label holds most of the votes, so an answer that matches it is top-voted.
    assert 1 >= ev["votes"]["top_voted"] >= ev["accuracy"] - 1e-4  # (both rounded)
    assert "against the raters' votes" in r.stdout


def test_vote_agreement_on_hand_made_votes():
    from ferlab.evaluation.metrics import vote_agreement

    votes = np.array(
        [
            [6, 2, 0, 0, 0, 0, 0, 0, 2, 0],  # neutral leads
            [0, 5, 5, 0, 0, 0, 0, 0, 0, 0],  # a tie: either answer is top-voted
            [1, 0, 0, 0, 0, 0, 0, 0, 0, 9],  # not a face: one emotion vote, all of the share
        ]
    )
    got = vote_agreement(votes, np.array([1, 2, 0]), 8)
    assert got["top_voted"] == pytest.approx(2 / 3, abs=1e-4)  # the first answer is not
    assert got["vote_share"] == pytest.approx((2 / 8 + 5 / 10 + 1) / 3, abs=1e-4)


def test_ferplus_data_converts_with_its_votes_or_not_at_all(tmp_path):
    rows = [r for r, _ in ROWS]
    write_ferplus(tmp_path / "fp", {"FER2013Train": rows[:5], "FER2013Valid": rows[5:]})
    faces, _ = load(tmp_path / "fp", RAW)
    r = run_cli("data", "convert", tmp_path / "fp", tmp_path / "copy", "--format", "ferplus")
    assert r.returncode == 0, r.stderr
    again, _ = load(tmp_path / "copy", RAW)
    assert again.votes.tolist() == rows and again.labels.tolist() == faces.labels.tolist()
    assert (again.images == faces.images).all() and again.splits.tolist() == faces.splits.tolist()
    # One label per face would drop the votes (and FER+'s ids are not FER2013's): refused.
    for fmt in ("folders", "fer2013-csv", "ntu-csv"):
        r = run_cli("data", "convert", tmp_path / "fp", tmp_path / fmt, "--format", fmt)
        assert r.returncode == 2 and "--format ferplus" in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / fmt).exists()
    # FER2013 data has no votes to write in the FER+ layout.
    tree = write_tree(synthetic_faces(per_class=1), tmp_path / "tree")
    r = run_cli("data", "convert", tree, tmp_path / "fp2", "--format", "ferplus")
    assert r.returncode == 2 and "no raters' votes" in r.stderr


def test_single_label_formats_map_classes_by_name():
    from dataclasses import replace

    from ferlab.data.labels import EMOTIONS
    from ferlab.data.writers import as_fer2013_labels

    for names in (("happy", "angry", "neutral"), ("happiness", "anger", "neutral")):
        # in an order of their own; FER+'s old names are still understood
        faces = synthetic_faces(per_class=1)
        faces = replace(faces.select(np.arange(3)), labels=np.array([0, 1, 2]), classes=names)
        mapped = as_fer2013_labels(faces, "folders")
        assert [EMOTIONS[i] for i in mapped.labels] == ["happy", "angry", "neutral"]
        assert mapped.labels.tolist() == [3, 0, 6]  # by FER2013's ids
    with pytest.raises(FerlabError, match="contempt has no FER2013 label"):
        as_fer2013_labels(replace(faces, classes=("contempt", "anger", "neutral")), "ntu-csv")


def test_an_empty_label_csv_is_one_line_not_a_lost_split(tmp_path):
    write_ferplus(tmp_path / "fp", {"FER2013Train": [r for r, _ in ROWS[:3]], "FER2013Valid": []})
    r = run_cli("data", "info", tmp_path / "fp")
    assert r.returncode == 2 and "FER2013Valid/label.csv lists no faces" in r.stderr, r.stderr
