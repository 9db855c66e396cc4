"""The public Python API (`ferlab.Recognizer`): every kind of image in, the same faces out;
bad input as one FerlabError sentence; the table form as the CLI's CSV."""

import csv
import io
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

import ferlab
from ferlab.errors import FerlabError


@pytest.fixture(scope="module")
def recognizer():
    return ferlab.Recognizer("default", runtime="torch")


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return skdata.astronaut()  # (512, 512, 3) RGB uint8, one smiling face


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


def test_every_kind_of_image_gives_the_same_faces(recognizer, astronaut, tmp_path):
    path = tmp_path / "astronaut.png"
    path.write_bytes(png(astronaut))
    answers = [
        recognizer.analyze(path),
        recognizer.analyze(str(path)),
        recognizer.analyze(path.read_bytes()),
        recognizer.analyze(Image.fromarray(astronaut)),
        recognizer.analyze(astronaut),
        recognizer.analyze(np.ascontiguousarray(astronaut[..., ::-1]), bgr=True),
        recognizer.analyze(np.dstack([astronaut, np.full(astronaut.shape[:2], 255, np.uint8)])),
    ]
    first = answers[0]
    assert len(first) == 1 and first[0].emotion == "happy"
    assert set(first[0].probabilities) == set(ferlab.EMOTIONS)
    assert abs(sum(first[0].probabilities.values()) - 1) < 1e-4
    x, y, w, h = first[0].box
    assert 150 < x + w / 2 < 300 and 60 < y + h / 2 < 200  # where the face is
    assert first[0].score is not None and len(first[0].landmarks) == 5
    for other in answers[1:]:
        assert [f.box for f in other] == [f.box for f in first]
        np.testing.assert_allclose(
            list(other[0].probabilities.values()), list(first[0].probabilities.values()),
            atol=1e-5,
        )  # fmt: skip
    # Gray: the same luminance as the decoder makes of the colour photo.
    gray = np.asarray(Image.fromarray(astronaut).convert("L"))
    assert [f.box for f in recognizer.analyze(gray)] == [f.box for f in first]


def test_a_bgr_frame_read_as_rgb_is_another_image(recognizer, astronaut):
    swapped = np.ascontiguousarray(astronaut[..., ::-1])
    as_rgb = recognizer.analyze(swapped)[0].probabilities
    as_bgr = recognizer.analyze(swapped, bgr=True)[0].probabilities
    assert as_rgb != as_bgr  # bgr=True is what makes OpenCV's frames right


def test_a_48x48_face_is_classified_as_it_is(recognizer):
    face = np.asarray(
        Image.fromarray(skdata.astronaut()).convert("L").crop((177, 67, 270, 160)).resize((48, 48))
    )
    faces = recognizer.analyze(face)
    assert len(faces) == 1 and faces[0].box == (0, 0, 48, 48) and faces[0].score is None


@pytest.mark.parametrize(
    "bad, words",
    [
        (42, "not int"),
        ([[1, 2], [3, 4]], "not list"),
        (np.zeros((10, 10), np.float32), "uint8"),
        (np.zeros((10, 10, 2), np.uint8), "shape"),
        (np.zeros((2, 10, 10, 3), np.uint8), "shape"),
        (np.zeros((0, 10), np.uint8), "empty"),
        (b"not an image", "not a readable image"),
        ("/no/such/photo.jpg", "no such image file"),
    ],
)
def test_bad_input_is_one_ferlab_error_sentence(recognizer, bad, words):
    with pytest.raises(FerlabError, match=words):
        recognizer.analyze(bad)


def test_an_unreadable_file_names_itself(recognizer, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(png(skdata.astronaut())[:200])
    with pytest.raises(FerlabError, match="broken.jpg"):
        recognizer.analyze(broken)


def test_analyze_many_batches_faces_and_keeps_the_order(recognizer, astronaut):
    blank = np.full((200, 300, 3), 128, np.uint8)
    images = [astronaut, blank, astronaut[:, ::-1].copy(), astronaut]
    many = recognizer.analyze_many(images, batch_size=2)
    assert [len(faces) for faces in many] == [1, 0, 1, 1]
    alone = [recognizer.analyze(image) for image in images]
    for got, want in zip(many, alone, strict=True):
        assert [f.box for f in got] == [f.box for f in want]
        for a, b in zip(got, want, strict=True):
            np.testing.assert_allclose(
                list(a.probabilities.values()), list(b.probabilities.values()), atol=1e-5
            )
    with pytest.raises(FerlabError, match="batch_size"):
        recognizer.analyze_many(images, batch_size=0)


def test_the_table_has_the_columns_of_the_cli_csv(recognizer, astronaut, tmp_path):
    from conftest import run_cli

    photo = tmp_path / "in" / "astronaut.png"
    photo.parent.mkdir()
    photo.write_bytes(png(astronaut))
    rows_csv = tmp_path / "rows.csv"
    r = run_cli("predict", "default", photo, "--out", rows_csv, "--runtime", "torch")
    assert r.returncode == 0, r.stderr
    with rows_csv.open() as f:
        cli = list(csv.DictReader(f))
    rows = ferlab.table([recognizer.analyze(photo)], files=[str(photo)])
    assert list(rows[0]) == list(cli[0])[: len(rows[0])]  # the landmark columns follow
    for column in rows[0]:
        if column in ("file", "emotion"):
            assert str(rows[0][column]) == cli[0][column]
        else:
            assert float(rows[0][column]) == pytest.approx(float(cli[0][column]), abs=2e-4)
    pandas = pytest.importorskip("pandas")
    frame = ferlab.to_dataframe([recognizer.analyze(photo)], files=[str(photo)])
    assert isinstance(frame, pandas.DataFrame) and list(frame.columns) == list(rows[0])


def test_importing_ferlab_is_light_and_says_nothing():
    code = (
        "import sys, ferlab; "
        "assert 'torch' not in sys.modules, 'torch'; "
        "assert callable(ferlab.Recognizer); print(ferlab.__version__)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stderr == "", r.stderr


def test_ferplus_scores_photos_in_the_canonical_names(astronaut, tmp_path):
    import json

    from conftest import run_cli

    folder = tmp_path / "photos"
    for emotion, name, image in (
        ("happy", "a.png", astronaut),
        ("happy", "b.png", np.ascontiguousarray(astronaut[:, ::-1])),
        ("sad", "c.png", astronaut),  # the smiling astronaut filed under sad: a miss
    ):
        (folder / emotion).mkdir(parents=True, exist_ok=True)
        (folder / emotion / name).write_bytes(png(image))
    ferplus = ferlab.Recognizer("ferplus", runtime="torch")
    assert "happy" in ferplus.classes and "happiness" not in ferplus.classes
    assert ferplus.analyze(astronaut)[0].emotion == "happy"
    r = run_cli("evaluate", "ferplus", "--data", folder, "--detector", "yunet", "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["n"] == 3 and report["accuracy"] == pytest.approx(2 / 3, abs=1e-4)
    assert "class_mapping" not in report  # the same names: nothing to map
    # Without --detector the photos would be squashed to 48x48 and scored as faces: refused.
    r = run_cli("evaluate", "default", "--data", folder)
    assert r.returncode == 2 and "not 48x48 face crops" in r.stderr and "--detector" in r.stderr
    assert r.stdout == ""


def test_an_old_card_with_ferplus_names_loads_in_the_canonical_ones():
    from ferlab.models.card import ModelCard

    old = ModelCard.from_dict(
        {"model": "cnn-baseline", "model_args": {"num_classes": 8}, "preprocess": {},
         "classes": ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear",
                     "contempt"]}
    )  # fmt: skip
    assert old.classes == ferlab.data.labels.FERPLUS_CLASSES
    assert set(old.classes) - set(ferlab.EMOTIONS) == {"contempt"}


def test_a_small_face_in_a_large_photo_is_found(astronaut):
    from ferlab.photos.detect import YuNetParams, create_detector, yunet

    # The astronaut's face (about 93 px) at about 56 px, in a 4000x3000 photo.
    gray = np.asarray(Image.fromarray(astronaut).convert("L").resize((307, 307)))
    canvas = np.full((3000, 4000), 120, np.uint8)
    canvas[1400:1707, 2100:2407] = gray
    before = yunet(YuNetParams(search_min_face=None))(canvas)  # the 640-px copy
    found = create_detector("yunet")(canvas)
    assert before == [] and len(found) == 1
    x, y, w, h = found[0].as_list()
    assert 2100 < x < 2407 and 1400 < y < 1707 and 40 < w < 80
    faces = ferlab.Recognizer(runtime="torch").analyze(canvas)
    assert [f.box for f in faces] == [tuple(found[0].as_list())]
    with pytest.raises(FerlabError, match="min-face"):
        create_detector("yunet", min_face=2)


def test_explain_on_a_photo_explains_each_face_and_never_squashes_it(astronaut, tmp_path):
    import json

    from conftest import run_cli

    photo = tmp_path / "astronaut.png"
    photo.write_bytes(png(astronaut))
    explained = ferlab.Recognizer("default", runtime="onnx").explain(photo)
    assert len(explained) == 1 and explained[0]["method"] == "gradcam"
    assert explained[0]["map"].shape == (48, 48) and explained[0]["seen"].dtype == np.uint8
    assert explained[0]["map"].min() >= 0 and explained[0]["map"].max() <= 1
    r = run_cli("explain", "saliency", "default", "--image", photo, "--method", "gradcam",
                "--out", tmp_path / "maps")  # fmt: skip
    assert r.returncode == 0, r.stderr
    record = json.loads((tmp_path / "maps" / "saliency.json").read_text())
    assert [f["emotion"] for f in record["faces"]] == ["happy"]
    assert (tmp_path / "maps" / "saliency.png").stat().st_size > 1000
    # A layer's outputs need a face crop: a photo is refused, not squashed into one.
    r = run_cli("explain", "activations", "default", "--layer", "logits", "--image", photo,
                "--out", tmp_path / "acts")  # fmt: skip
    assert r.returncode == 2 and "not a 48x48 face crop" in r.stderr
    assert not (tmp_path / "acts").exists()


def test_analyze_video_yields_the_sampled_frames_with_their_faces(recognizer, astronaut, tmp_path):
    import cv2

    path = tmp_path / "clip.avi"
    bgr = np.ascontiguousarray(astronaut[..., ::-1])
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (512, 512))
    for i in range(30):
        writer.write(bgr if i < 20 else np.full_like(bgr, 90))
    writer.release()
    frames = recognizer.analyze_video(path, every=10)
    assert not isinstance(frames, list)  # lazily, one frame at a time
    frames = list(frames)
    assert [f.index for f in frames] == [0, 10, 20]
    assert [len(f.faces) for f in frames] == [1, 1, 0]
    assert frames[1].seconds == pytest.approx(1.0) and frames[0].faces[0].emotion == "happy"
