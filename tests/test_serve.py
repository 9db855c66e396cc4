"""The web demo: the handler, the running server (HTTP API and a real browser), bad uploads."""

import io
import json
import os
import shutil
import socket
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from conftest import run_cli
from ferlab.data.labels import EMOTIONS
from ferlab.inference import load_model
from ferlab.photos.analyze import analyze_image
from ferlab.photos.detect import create_detector
from ferlab.serve import NOT_AN_UPLOAD, Models, analyze_upload, serve, upload_folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    path = tmp_path_factory.mktemp("photos") / "astronaut.jpg"
    Image.fromarray(skdata.astronaut()).save(path)
    return path


@pytest.fixture(scope="module")
def server():
    port = free_port()
    app = serve("127.0.0.1", port, ["default"], block=False)
    yield f"http://127.0.0.1:{port}/"
    app.close()


def test_handler_boxes_faces_with_bars_and_saliency(photo):
    boxed, summary, bars, overlays, answer = analyze_upload(
        str(photo), "default", Models(["default"]), create_detector("haar"), root=photo.parent
    )
    assert boxed.size == (512, 512)
    assert "**happy**" in summary and "1 face(s) detected" in summary  # she smiles
    assert bars.count('class="ferlab-face"') == 1 and bars.count("%</span>") == 7
    assert len(overlays) == 1
    overlay, caption = overlays[0]
    assert overlay.shape == (144, 144, 3) and overlay.std() > 10
    assert caption.startswith("face 0: ")  # numbered as ferlab predict's rows
    assert [f["face"] for f in answer["faces"]] == [0] and answer["faces"][0]["emotion"] == "happy"


def test_handler_follows_the_classes_of_the_chosen_model(photo):
    ferplus, answer = load_model("ferplus"), "happy"  # one vocabulary (FER+ says happiness)
    _, summary, bars, _, _ = analyze_upload(
        str(photo), "ferplus", Models(["default", "ferplus"]), create_detector("haar"),
        root=photo.parent,
    )  # fmt: skip
    assert len(ferplus.classes) == 8 and bars.count("%</span>") == 8
    assert f"**{answer}**" in summary and f'data-emotion="{answer}"' in bars


def test_handler_shows_the_landmarks_yunet_aligned_on(photo):
    def cyan(img, x, y, r=4):
        patch = np.asarray(img.convert("RGB"), dtype=int)[y - r : y + r, x - r : x + r]
        return ((patch[..., 0] < 60) & (patch[..., 1] > 180) & (patch[..., 2] > 200)).any()

    yunet = create_detector("yunet")
    face = analyze_image(load_model("default"), Image.open(photo), yunet).faces[0]
    models = Models(["default"])
    boxed = analyze_upload(str(photo), "default", models, yunet, root=photo.parent)[0]
    eyes = [(round(x), round(y)) for x, y in face.box.landmarks[:2]]
    assert all(cyan(boxed, x, y) for x, y in eyes)
    plain = analyze_upload(str(photo), "default", models, create_detector("haar"), photo.parent)
    assert not any(cyan(plain[0], x, y) for x, y in eyes)  # a cascade gives no landmarks


@pytest.mark.parametrize(
    "name, data, says",
    [
        ("notes.txt", b"just text", "not a readable image"),
        ("cut.jpg", None, "truncated"),
        ("bomb.png", "bomb", "too large"),
    ],
)
def test_handler_turns_bad_uploads_into_a_message(tmp_path, photo, name, data, says):
    if data is None:
        data = photo.read_bytes()[:5000]
    elif data == "bomb":
        buf = io.BytesIO()
        Image.new("1", (12000, 12000)).save(buf, "PNG")
        data = buf.getvalue()
    (tmp_path / name).write_bytes(data)
    boxed, summary, bars, overlays, answer = analyze_upload(
        str(tmp_path / name), "default", Models(["default"]), create_detector("haar"), tmp_path
    )
    assert boxed is None and overlays == [] and bars == "" and answer == {}
    assert summary.startswith("**Cannot use this file.**") and says in summary


def test_handler_reads_only_uploads(tmp_path, photo):
    """A path outside the upload folder, however it is spelled, gets one and the same answer
    whether or not the file exists, and nothing of the file is read."""
    uploads = tmp_path / "uploads"
    (uploads / "sub").mkdir(parents=True)
    (uploads / "inside.jpg").write_bytes(photo.read_bytes())
    (uploads / "link.jpg").symlink_to(photo)  # a symlink in the folder to a file outside
    os.mkfifo(uploads / "fifo.jpg")  # would block a plain read
    (uploads / "big.jpg").write_bytes(b"\xff" * (16 * 1024 * 1024))
    refused = [
        str(photo),  # an existing server image
        str(tmp_path / "missing.jpg"),
        str(uploads / "sub" / ".." / ".." / photo.parent.name / photo.name),
        str(uploads / "link.jpg"),
        str(uploads / "fifo.jpg"),
        str(uploads / "big.jpg"),
        str(uploads),
        "/dev/zero",
        "/etc/passwd",
    ]
    models, detect = Models(["default"]), create_detector("haar")
    for path in refused:
        answer = analyze_upload(path, "default", models, detect, root=uploads)
        assert answer == (None, NOT_AN_UPLOAD, "", [], {}), path
    boxed, summary, _, _, _ = analyze_upload(
        str(uploads / "inside.jpg"), "default", models, detect, root=uploads
    )
    assert boxed is not None and "1 face(s) detected" in summary


def _call_analyze(server: str, file_record) -> tuple[str, list | None]:
    """The analyze endpoint called as a hostile client would: raw HTTP, a hand-made record.
    (last event name, its data)."""
    r = httpx.post(
        server + "gradio_api/call/analyze", json={"data": [file_record, "default"]}, timeout=60
    )
    r.raise_for_status()
    event = r.json()["event_id"]
    stream = httpx.get(server + f"gradio_api/call/analyze/{event}", timeout=120).text
    events = [line[7:] for line in stream.splitlines() if line.startswith("event: ")]
    data = [line[6:] for line in stream.splitlines() if line.startswith("data: ")]
    return events[-1], json.loads(data[-1])


def test_server_refuses_a_record_naming_a_server_file(server, photo):
    # Untagged records reach the handler, which answers as for a bad upload.
    for record in ({"path": str(photo)}, {"path": "/etc/passwd"}, {"path": "/x.jpg"}):
        event, (boxed, summary, bars, gallery, answer) = _call_analyze(server, record)
        assert event == "complete" and boxed is None and summary == NOT_AN_UPLOAD, record
        assert bars == "" and gallery == [] and not answer
    # Records tagged as gradio files, and bare paths, are refused by gradio itself before the
    # handler runs, with the same words whether or not the file exists.
    answers = set()
    for path in (str(photo), "/etc/passwd", "/nonexistent/x.jpg"):
        event, data = _call_analyze(server, {"path": path, "meta": {"_type": "gradio.FileData"}})
        assert event == "error", path
        answers.add(data["error"].replace(path, "PATH"))
    assert len(answers) == 1
    assert _call_analyze(server, str(photo))[0] == "error"
    # The same photo uploaded through gradio is analyzed.
    with open(photo, "rb") as f:
        r = httpx.post(server + "gradio_api/upload", files={"files": ("a.jpg", f)}, timeout=60)
    uploaded = r.json()[0]
    assert Path(uploaded).resolve().is_relative_to(upload_folder().resolve())
    event, (_, summary, _, _, answer) = _call_analyze(
        server, {"path": uploaded, "meta": {"_type": "gradio.FileData"}}
    )
    assert event == "complete" and "1 face(s) detected" in summary and len(answer["faces"]) == 1


def test_server_deletes_its_uploads_when_it_stops(photo):
    port = free_port()
    app = serve("127.0.0.1", port, ["default"], block=False)
    try:
        with open(photo, "rb") as f:
            r = httpx.post(
                f"http://127.0.0.1:{port}/gradio_api/upload",
                files={"files": ("a.jpg", f)},
                timeout=60,
            )
        uploaded = Path(r.json()[0])
        assert uploaded.is_file()
    finally:
        app.close()
    assert not uploaded.exists()


def test_server_answers_keeps_running_after_bad_input_and_limits_uploads(server, photo, tmp_path):
    from gradio_client import Client, handle_file

    client = Client(server, verbose=False)
    (tmp_path / "notes.txt").write_text("not a photo")
    _, summary, _, _, _ = client.predict(
        handle_file(tmp_path / "notes.txt"), "default", api_name="/analyze"
    )
    assert "Cannot use this file" in summary
    _, summary, _, gallery, answer = client.predict(
        handle_file(photo), "default", api_name="/analyze"
    )
    assert "**happy**" in summary and len(gallery) == 1
    # The same answer as data: named fields, probabilities by emotion.
    (face,) = answer["faces"]
    assert face["face"] == 0 and face["emotion"] == "happy" and len(face["box"]) == 4
    assert set(face["probabilities"]) == set(EMOTIONS) and answer["model"] == "default"
    # Uploads over the limit are refused before they reach the model; the server stays up.
    big = os.urandom(16 * 1024 * 1024)
    r = httpx.post(server + "gradio_api/upload", files={"files": ("big.jpg", big)}, timeout=60)
    assert r.status_code == 413
    assert httpx.get(server, timeout=30).status_code == 200


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(
    _chromium() is None and not os.environ.get("FERLAB_REQUIRE_BROWSER"),
    reason="no chromium (.ci/run installs Debian's)",
)
@pytest.mark.slow
def test_browser_uploads_a_photo_and_reads_the_emotion(server, photo, tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(server)
            page.locator("#photo input[type=file]").set_input_files(str(photo))
            face = page.locator("#bars .ferlab-face").first
            face.wait_for(timeout=60_000)
            assert face.get_attribute("data-emotion") == "happy"
            assert "1 face(s) detected" in page.locator("#summary").inner_text()
            shot = page.screenshot(full_page=True)
        finally:
            browser.close()
    picture = np.asarray(Image.open(io.BytesIO(shot)).convert("L"))
    assert picture.std() > 10
    if os.environ.get("FERLAB_SCREENSHOT_DIR"):
        Path(os.environ["FERLAB_SCREENSHOT_DIR"], "serve.png").write_bytes(shot)


def test_serve_refuses_a_bad_model_before_starting(tmp_path):
    r = run_cli("serve", "--model", tmp_path / "missing", "--port", str(free_port()), timeout=120)
    assert r.returncode == 2 and "no such run folder" in r.stderr
    assert "Traceback" not in r.stderr
