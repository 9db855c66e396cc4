"""The web demo: the handler, the running server (HTTP API and a real browser), bad uploads."""

import io
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
from ferlab.checkpoint import load_model
from ferlab.photos.analyze import analyze_image
from ferlab.photos.detect import create_detector
from ferlab.serve import Models, analyze_upload, serve


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


def expected_emotion(photo) -> str:
    loaded = load_model("default")
    result = analyze_image(loaded, Image.open(photo), create_detector("haar"))
    return loaded.classes[int(result.faces[0].probs.argmax())]


def test_handler_boxes_faces_with_bars_and_saliency(photo):
    boxed, summary, bars, overlays = analyze_upload(
        str(photo), "default", Models(["default"]), create_detector("haar")
    )
    assert boxed.size == (512, 512)
    assert f"**{expected_emotion(photo)}**" in summary and "1 face(s) detected" in summary
    assert bars.count('class="ferlab-face"') == 1 and bars.count("%</span>") == 7
    assert len(overlays) == 1
    overlay, caption = overlays[0]
    assert overlay.shape == (144, 144, 3) and overlay.std() > 10
    assert caption.startswith("face 1: ")


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
    boxed, summary, bars, overlays = analyze_upload(
        str(tmp_path / name), "default", Models(["default"]), create_detector("haar")
    )
    assert boxed is None and overlays == [] and bars == ""
    assert summary.startswith("**Cannot use this file.**") and says in summary


def test_server_answers_keeps_running_after_bad_input_and_limits_uploads(server, photo, tmp_path):
    from gradio_client import Client, handle_file

    client = Client(server, verbose=False)
    (tmp_path / "notes.txt").write_text("not a photo")
    _, summary, _, _ = client.predict(
        handle_file(tmp_path / "notes.txt"), "default", api_name="/analyze"
    )
    assert "Cannot use this file" in summary
    _, summary, _, gallery = client.predict(handle_file(photo), "default", api_name="/analyze")
    assert f"**{expected_emotion(photo)}**" in summary and len(gallery) == 1
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
            assert face.get_attribute("data-emotion") == expected_emotion(photo)
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
