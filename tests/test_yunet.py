"""The yunet detector (the photo path's default), aligned crops and photo accuracy."""

import csv
import json

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from conftest import fer_data, run_cli
from ferlab.data import RAW, load
from ferlab.errors import FerlabError
from ferlab.inference import load_model
from ferlab.photos import detect
from ferlab.photos.detect import aligned_face, create_detector, crop_face
from ferlab.photos.photo_eval import evaluate_photos
from ferlab.photos.photo_set import faces_on_canvas, matched, photo_set

# Measured when yunet became the default (benchmarks/results/detect_speed.md and
# detect_fer_canvas.md): a later change may only keep or raise these.
PHOTO_SET_FOUND, PHOTO_SET_FALSE = 81, 1
FER_CANVAS_FOUND = 33


@pytest.fixture(scope="module")
def yunet():
    return create_detector("yunet")


@pytest.fixture(scope="module")
def astronaut_gray() -> np.ndarray:
    return cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2GRAY)


def test_yunet_finds_the_photo_set_faces(yunet):
    photos = photo_set()
    found = [yunet(p.gray) for p in photos]
    hits = sum(matched(f, p.faces) for f, p in zip(found, photos, strict=True))
    false = sum(len(f) for f in found) - hits
    assert hits >= PHOTO_SET_FOUND and false <= PHOTO_SET_FALSE


@pytest.mark.skipif(fer_data() is None, reason="needs FERLAB_DATA")
def test_yunet_finds_fer_faces_pasted_on_a_canvas(yunet):
    test = load(fer_data(), preprocess=RAW)[0].split("PublicTest")
    hits = false = 0
    for seed in range(5):  # as benchmarks/detect_fer_canvas.py draws them
        picks = np.random.default_rng(seed).choice(len(test), 8, replace=False)
        canvas, boxes = faces_on_canvas(test.images[picks])
        found = yunet(canvas)
        hits += matched(found, boxes)
        false += len(found) - matched(found, boxes)
    assert hits >= FER_CANVAS_FOUND and false == 0


def test_no_face_on_a_blank_or_noise_image(yunet):
    noise = np.random.default_rng(0).integers(0, 256, (480, 640)).astype(np.uint8)
    assert yunet(np.full((480, 640), 128, np.uint8)) == [] and yunet(noise) == []


def test_yunet_gives_a_score_and_five_landmarks_inside_the_face(yunet, astronaut_gray):
    (face,) = yunet(astronaut_gray)
    assert 0.7 <= face.score <= 1 and len(face.landmarks) == 5
    for x, y in face.landmarks:
        assert face.x <= x <= face.x + face.w and face.y <= y <= face.y + face.h
    (rx, ry), (lx, ly) = face.landmarks[:2]
    assert rx < lx and abs(ry - ly) < 5  # the astronaut's eyes are level in the photo


@pytest.mark.skipif(fer_data() is None, reason="needs FERLAB_DATA")
def test_the_aligned_crop_of_a_rotated_face_matches_the_upright_one(yunet):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
    from align_fer_canvas import correlation, on_canvas

    test = load(fer_data(), preprocess=RAW)[0].split("PublicTest")
    picks = np.random.default_rng(3).choice(len(test), 40, replace=False)
    aligned_r, boxed_r = [], []
    for face in test.images[picks]:
        upright, rotated = on_canvas(face, 0), on_canvas(face, 15)
        a, b = yunet(upright), yunet(rotated)
        if len(a) != 1 or len(b) != 1:
            continue
        reference = aligned_face(upright, a[0])
        aligned_r.append(correlation(aligned_face(rotated, b[0]), reference))
        boxed_r.append(correlation(crop_face(rotated, b[0]), reference))
    assert len(aligned_r) >= 30
    # Levelled on the eyes, the rotated face comes back close to the upright crop, and far
    # closer than the box alone cuts it.
    # (Measured: median 0.75 aligned, 0.54 by the box.)
    assert np.median(aligned_r) > 0.7 and np.median(aligned_r) > np.median(boxed_r) + 0.15


def test_a_missing_or_broken_model_file_is_one_line(monkeypatch, tmp_path, astronaut_gray):
    photo = tmp_path / "a.png"
    Image.fromarray(astronaut_gray).save(photo)
    monkeypatch.setattr(detect, "YUNET_MODEL", "no-such-model.onnx")
    r = run_cli("predict", "default", photo, "--detector", "yunet")
    assert r.returncode == 2 and "missing" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x08\x01 not an onnx graph")
    monkeypatch.setattr(detect, "yunet_model_path", lambda: str(broken))
    r = run_cli("predict", "default", photo, "--detector", "yunet")
    assert r.returncode == 2 and "not a readable YuNet model" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    with pytest.raises(FerlabError, match="not a readable YuNet model"):
        create_detector("yunet")


def test_rows_carry_the_score_and_landmarks(tmp_path, astronaut_gray):
    photo = tmp_path / "a.jpg"
    Image.fromarray(skdata.astronaut()).save(photo)
    assert run_cli("predict", "default", photo, "--out", tmp_path / "r.json").returncode == 0
    (row,) = json.loads((tmp_path / "r.json").read_text())["rows"]
    assert row["score"] > 0.7 and len(row["landmarks"]) == 5
    assert run_cli("predict", "default", photo, "--out", tmp_path / "r.csv").returncode == 0
    with open(tmp_path / "r.csv") as f:
        (line,) = list(csv.DictReader(f))
    assert float(line["score"]) == row["score"]
    assert float(line["left_eye_x"]) == row["landmarks"][1][0]


def test_tta_on_the_photo_path_averages_each_detected_face_over_its_views(tmp_path):
    from ferlab.photos.analyze import analyze_gray

    predictor = load_model("default")
    gray = np.asarray(Image.fromarray(skdata.astronaut()).convert("L"))
    yunet = create_detector("yunet")
    plain, tta = (analyze_gray(predictor, gray, yunet, tta=t) for t in (False, True))
    (face,) = tta.faces
    crop = aligned_face(gray, face.box)[None]
    np.testing.assert_allclose(face.probs, predictor.probabilities(crop, tta=True)[0], atol=1e-6)
    assert np.abs(face.probs - plain.faces[0].probs).max() > 1e-4  # the views changed it
    (tmp_path / "photos" / "happy").mkdir(parents=True)
    Image.fromarray(gray).save(tmp_path / "photos" / "happy" / "a.png")
    report = evaluate_photos(predictor, tmp_path / "photos", "yunet", tta=True)
    assert report["tta"] == "flip+crops" and report["faces_found"] == 1
    assert evaluate_photos(predictor, tmp_path / "photos", "yunet")["tta"] is None


def test_evaluate_on_labelled_photos_counts_by_hand(tmp_path):
    astronaut = Image.fromarray(skdata.astronaut())  # a smiling face: the model says happy
    for folder in ("happy", "sad"):
        (tmp_path / "photos" / folder).mkdir(parents=True)
        astronaut.save(tmp_path / "photos" / folder / "astronaut.jpg")
    (tmp_path / "photos" / "angry").mkdir()
    Image.new("RGB", (300, 300), (120, 120, 120)).save(tmp_path / "photos/angry/blank.png")
    report = evaluate_photos(load_model("default"), tmp_path / "photos", "yunet")
    # 3 photos: happy right, sad answered happy, no face in the blank one (counted wrong).
    assert report["n"] == 3 and report["faces_found"] == 2
    assert report["accuracy"] == round(1 / 3, 4)
    assert report["no_face"] == ["angry/blank.png"]
    assert report["per_class"]["happy"]["recall"] == 1.0
    assert report["per_class"]["sad"]["recall"] == 0.0
    assert report["per_class"]["angry"]["no_face"] == 1
    happy, sad = report["labels"].index("happy"), report["labels"].index("sad")
    assert report["confusion"][sad][happy] == 1 and sum(map(sum, report["confusion"])) == 2
    r = run_cli("evaluate", "default", "--data", tmp_path / "photos", "--detector", "yunet")
    assert r.returncode == 0 and "accuracy 33.33%" in r.stdout and "angry/blank.png" in r.stdout
    r = run_cli("evaluate", "default", "--data", tmp_path / "photos", "--detector", "nope")
    assert r.returncode == 2 and "unknown detector" in r.stderr


def test_help_lists_every_registered_detector_and_shipped_model(monkeypatch):
    from typer.testing import CliRunner

    from ferlab.atomic import PACKAGE_WEIGHTS_DIR
    from ferlab.commands.cli import app
    from ferlab.photos.detect import list_detectors

    monkeypatch.setenv("COLUMNS", "200")  # one option per line: nothing wrapped away
    runner = CliRunner()
    predict = " ".join(runner.invoke(app, ["predict", "--help"]).output.split())
    assert f"Face detector: {' | '.join(list_detectors())}." in predict
    shipped = sorted(p.stem for p in PACKAGE_WEIGHTS_DIR.glob("*.pt"))
    assert shipped  # the package ships its models
    evaluate = " ".join(runner.invoke(app, ["evaluate", "--help"]).output.split())
    assert f"a shipped model ({', '.join(shipped)})" in evaluate
