"""Predict at scale: worker processes, Ray actors, and resuming an unfinished run give the
rows one process gives, in input order, each input once."""

import json
import os
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from conftest import run_cli

ASTRONAUT = np.asarray(skdata.astronaut())


def photo(k: int) -> Image.Image:
    """The astronaut's face at a size and place of its own, on a plain ground; every fifth
    photo has no face."""
    canvas = np.full((300, 400, 3), 30 + 7 * k % 200, np.uint8)
    if k % 5 != 4:
        side = 120 + 9 * (k % 7)
        face = np.asarray(Image.fromarray(ASTRONAUT[:256, 100:356]).resize((side, side)))
        x, y = (10 + 11 * k) % (400 - side), (5 + 3 * k) % (300 - side)
        canvas[y : y + side, x : x + side] = face
    return Image.fromarray(canvas)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("scale")
    photos = root / "photos"
    (photos / "sub").mkdir(parents=True)
    for k in range(36):
        photo(k).save(photos / ("sub" if k % 3 == 0 else ".") / f"p{k:02d}.jpg")
    (photos / "p99.jpg").write_bytes(b"not an image")  # listed, not fatal
    return photos


@pytest.fixture(scope="module")
def one_process(folder):
    """The rows of one process, the reference."""
    out = folder.parent / "one.csv"
    r = run_cli("predict", "default", folder, "--out", out)
    assert r.returncode == 2 and "1 input file could not be read" in r.stderr, r.stderr
    return out.read_text()


def assert_same_faces(a: list, b: list) -> None:
    """The same faces, boxes and answers; probabilities to 1e-6 (a worker's session computes
    with fewer threads, so its sums may round otherwise)."""
    assert len(a) == len(b)
    for fa, fb in zip(a, b, strict=True):
        assert (fa.index, fa.box, fa.emotion) == (fb.index, fb.box, fb.emotion)
        pa, pb = list(fa.probabilities.values()), list(fb.probabilities.values())
        np.testing.assert_allclose(pa, pb, atol=1e-6, rtol=0)


def write_clip(path, frames=160, codec="mp4v"):
    """The face moving across the frame: each frame's box is its own, so a range read from
    the wrong frame shows in the rows."""
    face = ASTRONAUT[:256, 100:356, ::-1]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), 25, (480, 300))
    for i in range(frames):
        frame = np.full((300, 480, 3), 90, np.uint8)
        if i % 40 < 36:  # now and then no face
            x = (i * 2) % 220
            frame[20:276, x : x + 256] = face
        writer.write(frame)
    writer.release()
    return path


def test_two_workers_give_the_rows_of_one_process_in_input_order(folder, one_process, tmp_path):
    out = tmp_path / "two.csv"
    r = run_cli("predict", "default", folder, "--out", out, "--workers", "2",
                "--annotate", tmp_path / "boxed")  # fmt: skip
    assert r.returncode == 2 and "p99.jpg" in r.stderr and "Traceback" not in r.stderr
    assert out.read_text() == one_process
    # The workers drew the copies, each photo's once, all moved in at the end.
    copies = sorted(p.name for p in (tmp_path / "boxed").iterdir())
    assert len(copies) == 36 and "sub__p00.jpg" in copies
    files = [line.split(",")[0] for line in one_process.splitlines()[1:]]
    order = list(dict.fromkeys(files))
    assert files == sorted(files, key=order.index)  # each photo's rows together
    assert order == sorted(order) and len(order) == 36  # in the order of the sorted paths


def test_a_killed_run_resumes_to_the_same_rows_without_duplicates(folder, one_process, tmp_path):
    out = tmp_path / "rows.csv"
    cmd = [sys.executable, "-m", "ferlab", "predict", "default", str(folder), "--out", str(out),
           "--workers", "2"]  # fmt: skip
    partial = tmp_path / "rows.csv.partial"
    run = subprocess.Popen(cmd, start_new_session=True, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and run.poll() is None:
        if partial.exists() and partial.read_text().count("\n") > 8:
            break
        time.sleep(0.01)
    os.killpg(run.pid, signal.SIGKILL)  # the command and its workers, mid-run
    run.wait()
    assert not out.exists() and partial.exists()
    kept = partial.read_text().count("\n")
    assert 8 < kept < one_process.count("\n"), kept
    r = run_cli("predict", "default", folder, "--out", out, "--workers", "2", "--resume")
    assert r.returncode == 2 and "p99.jpg" in r.stderr, r.stderr  # the bad photo, again
    assert out.read_text() == one_process and not partial.exists()
    # Once complete, there is nothing to resume; nor is an unfinished run started over.
    r = run_cli("predict", "default", folder, "--out", out, "--resume")
    assert r.returncode == 2 and "nothing to resume" in r.stderr
    partial.write_text(one_process[:200])
    r = run_cli("predict", "default", folder, "--out", tmp_path / "rows.csv", "--force")
    assert r.returncode == 2 and out.read_text() == one_process and not partial.exists()


def test_resuming_rows_of_other_inputs_or_format_is_refused(folder, one_process, tmp_path):
    out = tmp_path / "rows.csv"
    (tmp_path / "rows.csv.partial").write_text(one_process.replace(str(folder), "elsewhere"))
    r = run_cli("predict", "default", folder, "--out", out, "--resume")
    assert r.returncode == 2 and "not inputs of this run" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    (tmp_path / "rows.csv.partial").write_text("file,face,emotion\nx,0,happy\n")
    r = run_cli("predict", "fast", folder, "--out", out, "--resume")
    assert r.returncode == 2 and "columns are not this model's" in r.stderr
    r = run_cli("predict", "default", folder, "--out", tmp_path / "rows.json", "--resume")
    assert r.returncode == 2 and "FILE.csv or FILE.jsonl" in r.stderr
    (tmp_path / "rows.jsonl.partial").write_text("5\n")  # not a row
    r = run_cli("predict", "default", folder, "--out", tmp_path / "rows.jsonl", "--resume")
    assert r.returncode == 2 and "line 1 is not a row of this run" in r.stderr
    (tmp_path / "rows.jsonl.partial").unlink()
    os.mkfifo(tmp_path / "rows.jsonl.partial")  # read or appended to, it would hang
    r = run_cli("predict", "default", folder, "--out", tmp_path / "rows.jsonl", "--resume",
                timeout=120)  # fmt: skip
    assert r.returncode == 2 and "is a FIFO" in r.stderr


def test_jsonl_rows_are_the_json_rows_a_line_each_and_resume_too(folder, tmp_path, monkeypatch):
    from ferlab.photos import bulk, media

    whole = tmp_path / "whole.json"
    assert run_cli("predict", "default", folder / "sub", "--out", whole).returncode == 0
    expected = json.loads(whole.read_text())["rows"]
    real, calls = bulk.Worker.photos, []

    def photos(self, items):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(self, items)

    monkeypatch.setattr(bulk.Worker, "photos", photos)
    monkeypatch.setattr(media, "photo_chunks", lambda items, per: bulk.photo_chunks(items, 2))
    out, job = tmp_path / "rows.jsonl", bulk.Job("default")
    with pytest.raises(KeyboardInterrupt):
        media.predict_media(job, folder / "sub", out)
    # The kill cut the last line short: it goes, with the rest of its photo's rows.
    with open(tmp_path / "rows.jsonl.partial", "a") as f:
        f.write('{"file": "cut sh')
    monkeypatch.setattr(bulk.Worker, "photos", real)
    summary = media.predict_media(job, folder / "sub", out, resume=True)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows == expected and summary == json.loads(whole.read_text())["summary"]


def test_a_video_split_across_workers_gives_the_timeline_of_one_process(tmp_path):
    import ferlab

    clip = write_clip(tmp_path / "clip.mp4")
    rows = {}
    for workers in ("1", "2"):
        rows[workers] = tmp_path / f"w{workers}.csv"
        r = run_cli("predict", "default", clip, "--every", "3", "--out", rows[workers],
                    "--workers", workers, "--plot")  # fmt: skip
        assert r.returncode == 0, r.stderr
        assert (tmp_path / f"w{workers}.png").stat().st_size > 0
    assert rows["1"].read_text() == rows["2"].read_text()
    # ... which is the video read frame after frame, in one go.
    recognizer = ferlab.Recognizer()
    frames = list(recognizer.analyze_video(clip, every=3))
    assert [f.index for f in frames] == list(range(0, 160, 3))
    split = list(recognizer.analyze_video(clip, every=3, workers=2))
    assert [(f.index, f.seconds) for f in split] == [(f.index, f.seconds) for f in frames]
    for a, b in zip(frames, split, strict=True):
        assert_same_faces(a.faces, b.faces)
    lines = rows["2"].read_text().splitlines()[1:]
    boxes = [tuple(map(int, line.split(",")[3:7])) for line in lines if line.split(",")[3]]
    assert boxes == [face.box for f in frames for face in f.faces]
    assert len(boxes) > 40


def test_analyze_many_with_workers_gives_the_faces_of_one_process(folder):
    import ferlab

    recognizer = ferlab.Recognizer(tta=True)
    images = [photo(k) for k in range(10)] + [np.asarray(photo(10))]
    paths = sorted(folder.glob("p0*.jpg"))[:6]
    for inputs in (images, paths):
        one, two = recognizer.analyze_many(inputs), recognizer.analyze_many(inputs, workers=2)
        assert len(one) == len(two) == len(inputs) and sum(map(len, one)) >= len(inputs) - 3
        for a, b in zip(one, two, strict=True):
            assert_same_faces(a, b)


def test_workers_and_engine_are_checked_before_any_work(folder, tmp_path):
    r = run_cli("predict", "default", folder, "--workers", "0")
    assert r.returncode == 2 and "--workers must be at least 1" in r.stderr
    r = run_cli("predict", "default", folder, "--engine", "spark")
    assert r.returncode == 2 and "unknown engine 'spark'" in r.stderr
    r = run_cli("predict", "default", folder, "--address", "ray://x:10001")
    assert r.returncode == 2 and "--engine ray" in r.stderr
    # What every worker would refuse is refused once, here, in one line.
    (tmp_path / "damaged.pt").write_bytes(b"not a checkpoint")
    for args, says in (
        (("nosuchmodel",), "no such run folder or checkpoint"),
        (("default", "--detector", "nope"), "unknown detector 'nope'"),
        ((tmp_path / "damaged.pt", "--runtime", "onnx"), "damaged.pt"),  # found, then unread
    ):
        r = run_cli("predict", *args[:1], folder, *args[1:], "--workers", "2")
        assert r.returncode == 2 and says in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and "worker process died" not in r.stderr
    (tmp_path / "damaged.pt").unlink()
    pytest.importorskip("ray")
    import ferlab

    with pytest.raises(ferlab.FerlabError, match="unknown detector 'nope'"):  # before Ray starts
        ferlab.write_row_shards(folder, tmp_path / "shards", detector="nope")
    assert not (tmp_path / "shards").exists()
    r = run_cli("predict", "default", folder, "--engine", "ray", "--address", "ray://x:10001",
                "--annotate", tmp_path / "boxed")  # fmt: skip
    assert r.returncode == 2 and "written on the cluster's nodes" in r.stderr
    assert not (tmp_path / "boxed").exists() and not list(tmp_path.iterdir())


def test_a_missing_ray_extra_is_one_line(folder, tmp_path):
    block = (
        "import importlib.abc, sys\n"
        "class NoRay(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'ray':\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, NoRay())\n"
        "from ferlab.commands.cli import main\n"
        f"main(['predict', 'default', {str(folder)!r}, '--engine', 'ray', '--out', "
        f"{str(tmp_path / 'r.csv')!r}])\n"
    )
    r = subprocess.run([sys.executable, "-c", block], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "ray extra" in r.stderr and "pip install -e '.[ray]'" in r.stderr
    assert not (tmp_path / "r.csv").exists() and not (tmp_path / "r.csv.partial").exists()


@pytest.mark.slow
def test_ray_actors_give_the_rows_of_one_process(folder, one_process, tmp_path):
    ray = pytest.importorskip("ray")
    import pyarrow.parquet as pq

    import ferlab

    # One local Ray for the whole test (started by the caller, it is left running by ferlab).
    ray.init(include_dashboard=False, configure_logging=False)
    try:
        out = tmp_path / "ray.csv"
        r = run_cli("predict", "default", folder, "--out", out, "--engine", "ray",
                    "--workers", "2")  # fmt: skip
        assert r.returncode == 2 and "p99.jpg" in r.stderr and "Traceback" not in r.stderr
        assert out.read_text() == one_process
        clip = write_clip(tmp_path / "clip.avi", frames=60, codec="MJPG")
        r = run_cli("predict", "default", clip, "--every", "2", "--out", tmp_path / "v1.csv")
        assert r.returncode == 0, r.stderr
        r = run_cli("predict", "default", clip, "--every", "2", "--out", tmp_path / "v2.csv",
                    "--engine", "ray", "--workers", "2")  # fmt: skip
        assert r.returncode == 0, r.stderr
        assert (tmp_path / "v1.csv").read_text() == (tmp_path / "v2.csv").read_text()
        # Shards written by the actors themselves: the same rows, in no particular order.
        shards = ferlab.write_row_shards(folder, tmp_path / "shards", actors=2)
        assert ray.is_initialized()
        # What an actor refuses comes back as its own one line, not a page of Ray's.
        from ferlab.errors import FerlabError
        from ferlab.photos.bulk import Job
        from ferlab.photos.on_ray import RayEngine

        with RayEngine(Job("default"), 1) as runner, pytest.raises(FerlabError) as refused:
            list(runner.ordered("frames", [(str(tmp_path / "gone.mp4"), 0, None, 1)]))
        assert str(refused.value) == f"{tmp_path / 'gone.mp4'}: not a readable video"
    finally:
        ray.shutdown()
    rows = pq.read_table(shards).to_pylist()
    errors = [r for r in rows if r["error"]]
    assert [r["file"] for r in errors] == [str(folder / "p99.jpg")]
    header, *lines = one_process.splitlines()
    cells = [[r[c] for c in header.split(",")] for r in rows if not r["error"]]
    written = [",".join("" if v is None else str(v) for v in row) for row in cells]
    assert sorted(written) == sorted(lines)


def test_a_long_job_logged_to_a_file_says_how_far_it_is(monkeypatch, capsys):
    from ferlab.photos import progress

    clock = iter(range(0, 1000, 20))  # each call 20 s later
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(clock))
    with progress.progress_bar(1000, shown=True, unit="images") as advance:  # not a terminal
        for _ in range(5):
            advance(100)
    lines = capsys.readouterr().err.splitlines()
    # A line a minute at most: at 60 s (300 done); 80 s and 100 s are too soon after it.
    assert lines[0] == "ferlab: 300 of 1,000 images, 5.0 images/s, 140 s left"
    assert len(lines) == 1


def test_an_interrupted_video_resumes_from_its_last_whole_frame(tmp_path, monkeypatch):
    from ferlab.photos import bulk, media

    clip = write_clip(tmp_path / "clip.mp4", frames=100)
    job, whole, out = bulk.Job("default"), tmp_path / "whole.csv", tmp_path / "rows.csv"
    media.predict_media(job, clip, whole, every=2)
    real, calls = bulk.Worker.frames, []

    def frames(self, *args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(self, *args)

    monkeypatch.setattr(bulk.Worker, "frames", frames)
    with pytest.raises(KeyboardInterrupt):
        media.predict_media(job, clip, out, every=2)
    partial = tmp_path / "rows.csv.partial"
    kept = partial.read_text().splitlines()
    assert 1 < len(kept) < len(whole.read_text().splitlines())
    # The last frame's rows, cut short by the kill, are made again.
    partial.write_text("\n".join(kept) + "\n" + kept[-1][: len(kept[-1]) // 2])
    monkeypatch.setattr(bulk.Worker, "frames", real)
    with pytest.raises(Exception, match="not one in 3"):  # another --every is refused
        media.predict_media(job, clip, out, every=3, resume=True)
    summary = media.predict_media(job, clip, out, every=2, resume=True)
    assert out.read_text() == whole.read_text() and summary["images"] == 50
