"""Bounded load test of `ferlab serve` on loopback: N requests, C at a time, through the same
HTTP API the page uses (gradio_client); plus the in-process latency of one 1280x720 photo.

Usage: python benchmarks/serve_load.py [N=200] [C=4]   (nothing else running)
Writes results/serve/load.json.
"""

import json
import os
import platform
import socket
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from gradio_client import Client, handle_file
from PIL import Image
from skimage import data as skdata

from ferlab.inference import load_model
from ferlab.photos.analyze import analyze_image, read_photo
from ferlab.photos.detect import create_detector
from ferlab.serve import serve


def photo_1280x720(path: Path) -> Path:
    """The astronaut's 512x512 portrait twice, side by side on a 1280x720 canvas (2 faces)."""
    canvas = Image.new("RGB", (1280, 720), (90, 90, 90))
    face = Image.fromarray(skdata.astronaut()).resize((600, 600))
    canvas.paste(face, (20, 60))
    canvas.paste(face, (660, 60))
    canvas.save(path, quality=90)
    return path


def percentiles(ms: list[float]) -> dict:
    return {f"p{q}": round(float(np.percentile(ms, q)), 1) for q in (50, 90, 95, 99)} | {
        "max": round(max(ms), 1),
        "mean": round(float(np.mean(ms)), 1),
    }


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    concurrency = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    tmp = Path(tempfile.mkdtemp())
    photo = photo_1280x720(tmp / "photo.jpg")

    # End to end in process: decode + detect + crop + classify one 1280x720 photo.
    loaded, detect = load_model("default"), create_detector("haar")
    data = photo.read_bytes()
    e2e = []
    for _ in range(30):
        t = time.perf_counter()
        result = analyze_image(loaded, read_photo(data, "photo.jpg"), detect)
        e2e.append((time.perf_counter() - t) * 1000)
    faces = len(result.faces)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = serve("127.0.0.1", port, ["default"], block=False)
    url = f"http://127.0.0.1:{port}/"
    clients = [Client(url, verbose=False) for _ in range(concurrency)]
    errors, latencies = [], []

    def one(i: int):
        t = time.perf_counter()
        try:
            out = clients[i % concurrency].predict(
                handle_file(photo), "default", api_name="/analyze"
            )
            if "face(s) detected" not in out[1]:
                errors.append(f"request {i}: {out[1][:80]}")
        except Exception as e:  # any failure counts; the test reports them all
            errors.append(f"request {i}: {type(e).__name__}: {e}")
        latencies.append((time.perf_counter() - t) * 1000)

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(n)))
    wall = time.perf_counter() - start
    app.close()
    result = {
        "command": f"python benchmarks/serve_load.py {n} {concurrency}",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "photo": "1280x720 JPEG, 2 faces",
        "faces_found": faces,
        "in_process_ms_one_photo": percentiles(e2e),
        "requests": n,
        "concurrency": concurrency,
        "errors": len(errors),
        "error_samples": errors[:5],
        "requests_per_s": round(n / wall, 2),
        "latency_ms": percentiles(latencies),
        "note": "latency includes upload, gradio queue, decode, detection, classification, "
        "Grad-CAM overlays for each face and the annotated image's return",
    }
    out = Path(__file__).resolve().parents[1] / "results" / "serve" / "load.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
