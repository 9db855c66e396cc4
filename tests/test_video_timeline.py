"""`ferlab predict VIDEO --plot`: each emotion's probability over time, beside the rows."""

import json

import cv2
import numpy as np
from PIL import Image
from skimage import data as skdata

from conftest import run_cli
from ferlab.inference import load_model
from ferlab.photos.analyze import emotion_timeline


def write_clip(path, fps=10):
    """20 frames of the smiling astronaut, then 10 blank ones."""
    bgr = np.asarray(skdata.astronaut())[..., ::-1].copy()
    blank = np.full_like(bgr, 90)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (512, 512))
    for i in range(30):
        writer.write(bgr if i < 20 else blank)
    writer.release()
    return path


def test_the_timeline_follows_the_largest_face_and_leaves_gaps_without_one():
    labels = ["happy", "sad"]

    def row(frame, box, happy):
        return {"frame": frame, "emotion": "happy", "box": box,
                "probabilities": {"happy": happy, "sad": 1 - happy}}  # fmt: skip

    rows = [
        row(0, [0, 0, 10, 10], 0.2),
        row(0, [0, 0, 40, 40], 0.9),  # the larger face answers for frame 0
        row(5, [0, 0, 20, 20], 0.6),
        {"frame": 10, "emotion": None, "box": None},
    ]
    frames, probs = emotion_timeline(rows, labels)
    assert frames.tolist() == [0, 5, 10]
    np.testing.assert_allclose(probs[:2], [[0.9, 0.1], [0.6, 0.4]])
    assert np.isnan(probs[2]).all()


def test_predict_video_plot_writes_the_timeline_beside_the_rows(tmp_path):
    clip = write_clip(tmp_path / "clip.avi")
    rows = tmp_path / "v.json"
    r = run_cli("predict", "default", clip, "--every", "5", "--out", rows, "--plot")
    assert r.returncode == 0, r.stderr
    figure = tmp_path / "v.png"
    assert f"timeline in {figure}" in r.stdout
    img = Image.open(figure)
    assert img.format == "PNG" and img.width > 600
    out = json.loads(rows.read_text())
    assert out["summary"]["plot"] == str(figure)
    frames, probs = emotion_timeline(out["rows"], load_model("default").classes)
    assert frames.tolist() == [0, 5, 10, 15, 20, 25]
    happy = load_model("default").classes.index("happy")
    assert (probs[:4].argmax(1) == happy).all() and np.isnan(probs[4:]).all()
    # Never overwritten silently; refused where it has no meaning.
    r = run_cli("predict", "default", clip, "--out", tmp_path / "v.csv", "--plot")
    assert r.returncode == 2 and "exists" in r.stderr
    r = run_cli("predict", "default", clip, "--plot")
    assert r.returncode == 2 and "give --out" in r.stderr
    Image.fromarray(skdata.astronaut()).save(tmp_path / "a.jpg")
    r = run_cli("predict", "default", tmp_path / "a.jpg", "--out", tmp_path / "a.csv", "--plot")
    assert r.returncode == 2 and "not a video" in r.stderr and "Traceback" not in r.stderr
