"""The web demo (`ferlab serve`): a web page (gradio) to upload, drop or take a photo and see
each face boxed, with its emotion bars and a saliency overlay. Needs the serve extra:
pip install -e '.[serve]' (from ferlab's clone).

The page's handler takes the upload as a file path and decodes it with ferlab's own reader, so
every bad upload (not an image, truncated, too large, odd mode) becomes one clear message in
the page and the server stays up. It reads only files that gradio received as uploads (the
path must lie in gradio's upload folder), at most MAX_UPLOAD_BYTES of them, and the uploads
are deleted when the server stops.
"""

import html
import os
import stat
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from ferlab.errors import FerlabError
from ferlab.explain.panels import face_saliency
from ferlab.inference import Predictor, load_model
from ferlab.photos.analyze import PhotoResult, analyze_image, face_rows, read_photo
from ferlab.photos.detect import DEFAULT_DETECTOR, create_detector
from ferlab.photos.draw import annotate

MAX_UPLOAD = "15mb"
MAX_UPLOAD_BYTES = 15 * 1024 * 1024
# One answer for every refused path, so a client learns nothing about the server's files.
NOT_AN_UPLOAD = "**Cannot use this file.** Only photos uploaded to this page are read."
# Uploads older than an hour are deleted every hour, and all of them when the server stops.
DELETE_CACHE = (3600, 3600)


def upload_folder() -> Path:
    """Where gradio stores what clients upload (GRADIO_TEMP_DIR, else <tmp>/gradio)."""
    return Path(os.environ.get("GRADIO_TEMP_DIR") or Path(tempfile.gettempdir()) / "gradio")


def read_upload(path: str, root: Path | None = None, limit: int = MAX_UPLOAD_BYTES) -> bytes:
    """The bytes of a file that gradio received as an upload; FerlabError(NOT_AN_UPLOAD) for
    anything else: a path outside the upload folder (also through a symlink or '..'), a
    missing file, a device or FIFO, or a file over the limit."""
    root = (root or upload_folder()).resolve()
    try:
        real = Path(path).resolve(strict=True)
        inside = real.is_relative_to(root) and real != root
        # O_NONBLOCK: opening a FIFO must not wait for a writer before fstat can refuse it.
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK) if inside else -1
    except (OSError, RuntimeError, ValueError):
        fd = -1
    if fd < 0:
        raise FerlabError(NOT_AN_UPLOAD)
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_size > limit:
            raise FerlabError(NOT_AN_UPLOAD)
        data = f.read(limit + 1)
    if len(data) > limit:  # the file grew after fstat
        raise FerlabError(NOT_AN_UPLOAD)
    return data


class Models:
    """Models selectable in the page, loaded on first use. `lock` serializes their use: Grad-CAM
    hooks a layer of the shared model, so a concurrent forward pass would feed another
    request's activations into it (seen in the load test)."""

    def __init__(self, refs: list[str], runtime: str | None = None):
        self.refs, self.runtime = refs, runtime
        self._predictors: dict[str, Predictor] = {}
        self._networks: dict[str, Predictor] = {}
        self.lock = threading.Lock()

    def get(self, ref: str) -> Predictor:
        if ref not in self.refs:
            raise FerlabError(f"unknown model '{ref}'")
        if ref not in self._predictors:
            self._predictors[ref] = load_model(ref, runtime=self.runtime)
        return self._predictors[ref]

    def network(self, ref: str) -> Predictor:
        """The model with its torch network, which the saliency overlays need (a shipped
        model in ONNX Runtime answers by its graph alone)."""
        predictor = self.get(ref)
        if predictor.model is None:
            if ref not in self._networks:
                self._networks[ref] = load_model(ref, runtime="torch")
            predictor = self._networks[ref]
        return predictor


def saliency_overlays(predictor: Predictor, result: PhotoResult, size: int = 144) -> list:
    """Per face: the 48x48 face the model saw with its Grad-CAM map (input gradients for a
    model without conv layers) for the predicted emotion laid over it, as (image, caption)."""
    if not result.faces:
        return []
    crops = np.stack([f.crop for f in result.faces])
    targets = [int(f.probs.argmax()) for f in result.faces]
    _, maps, _ = face_saliency(predictor, crops, targets)
    out = []
    for i, (f, m) in enumerate(zip(result.faces, maps, strict=True)):
        face = cv2.resize(f.seen, (size, size), interpolation=cv2.INTER_CUBIC)
        heat = cv2.applyColorMap(
            cv2.resize((m * 255).astype(np.uint8), (size, size)), cv2.COLORMAP_JET
        )[..., ::-1]
        blend = (0.55 * np.repeat(face[..., None], 3, 2) + 0.45 * heat).astype(np.uint8)
        k = int(f.probs.argmax())
        out.append((blend, f"face {i}: {predictor.classes[k]} ({f.probs[k]:.0%})"))
    return out


def bars_html(predictor: Predictor, result: PhotoResult) -> str:
    rows = []
    for i, f in enumerate(result.faces):
        k = int(f.probs.argmax())
        bars = "".join(
            f'<div style="display:flex;align-items:center;gap:.4em">'
            f'<span style="width:5.5em">{html.escape(name)}</span>'
            f'<span style="display:inline-block;height:.8em;width:{p * 12:.2f}em;'
            f'background:{"#e6a800" if j == k else "#8aa"}"></span>'
            f"<span>{p:.0%}</span></div>"
            for j, (name, p) in enumerate(zip(predictor.classes, f.probs, strict=True))
        )
        rows.append(
            f'<div class="ferlab-face" data-emotion="{html.escape(predictor.classes[k])}">'
            f"<b>face {i}</b> {f.box.as_list()}: {html.escape(predictor.classes[k])} "
            f"({f.probs[k]:.0%}){bars}</div>"
        )
    return "".join(rows)


def analyze_upload(
    path: str | None, model_ref: str, models: Models, detector, root: Path | None = None
) -> tuple:
    """(annotated image, summary markdown, bars html, saliency gallery, the answer as JSON:
    each face's box, emotion and probabilities by name, numbered from 0 as in `ferlab
    predict`'s rows) for one upload; `path` must lie in the upload folder `root` (default:
    gradio's)."""
    if not path:
        return None, "Upload, drop or take a photo first.", "", [], {}
    if not isinstance(path, str):
        return None, NOT_AN_UPLOAD, "", [], {}
    started = time.perf_counter()
    try:
        data = read_upload(path, root)
    except FerlabError as e:
        return None, str(e), "", [], {}
    try:
        name = Path(path).name
        img = read_photo(data, name)
        with models.lock:
            predictor = models.get(model_ref)
            result = analyze_image(predictor, img, detector, name)
            overlays = saliency_overlays(models.network(model_ref), result)
    except FerlabError as e:
        return None, f"**Cannot use this file.** {e}", "", [], {}
    except (OSError, MemoryError, ValueError) as e:
        return None, f"**Cannot use this file.** {type(e).__name__}: {e}", "", [], {}
    seconds = time.perf_counter() - started
    if result.faces:
        found = "; ".join(
            f"face {i}: **{predictor.classes[int(f.probs.argmax())]}** ({f.probs.max():.0%})"
            for i, f in enumerate(result.faces)
        )
        how = "classified as one 48x48 face" if result.direct else "detected"
        summary = f"{len(result.faces)} face(s) {how}: {found}"
    else:
        summary = "No face found in this photo."
    summary += f"  \n<small>{img.width}x{img.height}, {seconds * 1000:.0f} ms, {model_ref}</small>"
    answer = {
        "model": model_ref,
        "width": img.width,
        "height": img.height,
        "faces": [r for r in face_rows(result, predictor.classes) if r["face"] is not None],
    }
    return (
        annotate(img, result, predictor.classes),
        summary,
        bars_html(predictor, result),
        overlays,
        answer,
    )


def served_models(extra: list[str]) -> list[str]:
    """The models the page offers: the shipped ones, then the runs or checkpoints `extra`
    names (not .onnx files: the page explains each answer by the torch model's gradients)."""
    from ferlab.inference import shipped_models

    shipped = shipped_models()
    refs = shipped + [ref for ref in extra if ref not in shipped]
    onnx_files = [ref for ref in refs if ref.lower().endswith(".onnx")]
    if onnx_files:
        raise FerlabError(f"{onnx_files[0]}: serve takes runs and checkpoints, not .onnx files")
    return refs


def build_app(
    model_refs: list[str],
    detector: str = DEFAULT_DETECTOR,
    runtime: str | None = None,
    min_face: int | None = None,
):
    # A demo on loopback reports nothing to gradio's servers.
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        import gradio as gr
    except ImportError:
        raise FerlabError(
            "the web demo needs the serve extra: pip install -e '.[serve]' (from ferlab's clone)"
        ) from None
    if not model_refs:
        raise FerlabError("no model to serve: ship a default model or pass --model RUN")
    models = Models(model_refs, runtime)
    for ref in model_refs:  # a bad --model fails at start, not at the first upload
        models.get(ref)
    detect = create_detector(detector, min_face)

    def handle(payload, model_ref):
        # preprocess=False keeps gradio from decoding the image itself (ferlab's reader
        # refuses bombs and odd files with a message), so the record arrives as the client
        # sent it: analyze_upload reads its path only inside gradio's upload folder.
        path = payload.get("path") if isinstance(payload, dict) else payload
        return analyze_upload(path, model_ref, models, detect)

    with gr.Blocks(title="ferlab: facial expressions", delete_cache=DELETE_CACHE) as app:
        gr.Markdown(
            "# ferlab: facial expressions\nUpload, drop or take a photo. Each face is boxed "
            "with its emotion and the landmarks the face was aligned on (eyes in cyan, levelled "
            "before the crop; nose and mouth corners in white); the bars give every emotion's "
            "probability, and the overlay shows where the model looked (Grad-CAM) on the "
            f"aligned face it classified. Files up to {MAX_UPLOAD}."
        )
        with gr.Row():
            with gr.Column():
                photo = gr.Image(
                    sources=["upload", "webcam", "clipboard"],
                    type="filepath",
                    label="Photo",
                    elem_id="photo",
                )
                model = gr.Dropdown(model_refs, value=model_refs[0], label="Model")
                button = gr.Button("Analyze", variant="primary", elem_id="analyze")
            with gr.Column():
                boxed = gr.Image(label="Faces", type="pil", interactive=False, elem_id="boxed")
                summary = gr.Markdown(elem_id="summary")
                bars = gr.HTML(elem_id="bars")
                overlays = gr.Gallery(label="Saliency (Grad-CAM)", columns=4, height="auto")
                answer = gr.JSON(label="Answer (JSON)", elem_id="answer")
        outputs = [boxed, summary, bars, overlays, answer]
        button.click(handle, [photo, model], outputs, api_name="analyze", preprocess=False)
        photo.upload(handle, [photo, model], outputs, api_name=False, preprocess=False)
    # One request at a time: both cores already serve one inference, and gradio writes equal
    # outputs of concurrent requests to the same cache file (a client then read a partial
    # file in the load test). Waiting requests queue.
    app.queue(default_concurrency_limit=1)
    return app


def serve(
    host: str,
    port: int,
    model_refs: list[str],
    detector: str = DEFAULT_DETECTOR,
    block=True,
    runtime: str | None = None,
    min_face: int | None = None,
):
    app = build_app(model_refs, detector, runtime, min_face)
    app.launch(
        server_name=host,
        server_port=port,
        max_file_size=MAX_UPLOAD,
        prevent_thread_lock=not block,
        show_error=True,
        quiet=True,
    )
    return app
