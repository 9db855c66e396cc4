"""The core install: the shipped models from the command line and from Python with ONNX Runtime
alone. Each case runs in a process where the training, explanation, report and demo stacks
cannot be imported (as if not installed); what needs one of them says which extra, in one
line."""

import json
import os
import subprocess
import sys

import pytest
from PIL import Image
from skimage import data as skdata

# Modules of the extras: importing any of them fails in these processes.
EXTRAS = ("torch", "lightning", "torchmetrics", "kornia", "captum", "matplotlib", "gradio",
          "pandas", "onnx", "onnxscript", "tensorboard")  # fmt: skip

BLOCK = f"""
import importlib.abc, sys
class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {EXTRAS!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, NotInstalled())
"""


def core(code: str, cwd) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "FERLAB_RUNTIME"}  # the default
    return subprocess.run(
        [sys.executable, "-c", BLOCK + code], cwd=cwd, env=env, capture_output=True, text=True
    )


def cli(*args, cwd) -> subprocess.CompletedProcess:
    return core(f"from ferlab.commands.cli import main; main({list(map(str, args))!r})", cwd)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("core")
    astronaut = Image.fromarray(skdata.astronaut())
    (folder / "labelled" / "happy").mkdir(parents=True)
    astronaut.save(folder / "photo.png")
    astronaut.save(folder / "labelled" / "happy" / "a.png")
    astronaut.transpose(Image.FLIP_LEFT_RIGHT).save(folder / "labelled" / "happy" / "b.png")
    return folder


def test_the_blocker_blocks(photos):
    r = core("import torch", photos)
    assert r.returncode != 0 and "No module named 'torch'" in r.stderr


def test_predict_and_evaluate_photos_without_the_training_stack(photos):
    r = cli("predict", "default", "photo.png", "--out", "rows.json", cwd=photos)
    assert r.returncode == 0, r.stderr
    rows = json.loads((photos / "rows.json").read_text())["rows"]
    assert [row["emotion"] for row in rows] == ["happy"]
    r = cli("evaluate", "fast", "--data", "labelled", "--detector", "yunet", "--json", cwd=photos)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["accuracy"] == 1.0
    r = cli("predict", "ferplus", "photo.png", "--tta", cwd=photos)
    assert r.returncode == 0 and ": happy (" in r.stdout, r.stderr
    r = cli("models", cwd=photos)  # the shipped models, from their graphs' cards
    from ferlab.inference import load_model

    shipped = load_model("default", runtime="torch").card.metrics["PublicTest"]["accuracy"]
    assert r.returncode == 0 and f"{shipped:.1%}" in r.stdout, r.stderr
    assert "train extra" in r.stdout  # where the registered networks would be


def test_the_python_api_without_the_training_stack(photos):
    code = (
        "import ferlab\n"
        "faces = ferlab.Recognizer().analyze('photo.png')\n"
        "assert [f.emotion for f in faces] == ['happy'], faces\n"
        "print(ferlab.Recognizer('fast', tta=True).analyze('photo.png')[0].emotion)\n"
    )
    r = core(code, photos)
    assert r.returncode == 0 and r.stdout.strip() == "happy" and r.stderr == "", r.stderr


def test_what_needs_an_extra_says_which_in_one_line(photos):
    r = cli("explain", "saliency", "default", "--image", "photo.png", "--out", "maps",
            cwd=photos)  # fmt: skip
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert "extra" in r.stderr and "pip install -e '.[" in r.stderr
    assert not (photos / "maps").exists()


def test_data_commands_and_dataset_evaluation_without_the_training_stack(tmp_path):
    from ferlab.testing import synthetic_faces, write_fer2013_csv

    faces = synthetic_faces(per_class=4)
    write_fer2013_csv(faces, tmp_path / "fer.csv")
    r = cli("data", "info", "fer.csv", cwd=tmp_path)
    assert r.returncode == 0 and str(len(faces)) in r.stdout, r.stderr
    r = cli("data", "split", "fer.csv", "--out", "split.json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "split.json").read_text())
    r = cli("data", "convert", "fer.csv", "tree", "--format", "folders", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert len(list((tmp_path / "tree").rglob("*.png"))) == len(faces)
    r = cli("evaluate", "fast", "--data", "fer.csv", "--split", "PublicTest", "--json",
            cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["n"] == 4 * 7


def test_a_users_onnx_file_runs_without_the_export_extra(photos):
    import shutil

    from ferlab.atomic import PACKAGE_WEIGHTS_DIR

    shutil.copy(PACKAGE_WEIGHTS_DIR / "fast.onnx", photos / "mine.onnx")  # carries its card
    r = cli("predict", "mine.onnx", "photo.png", "--runtime", "onnx", cwd=photos)
    assert r.returncode == 0 and ": happy (" in r.stdout, r.stderr
    (photos / "broken.onnx").write_bytes(b"\x08\x07not a graph" * 50)
    r = cli("predict", "broken.onnx", "photo.png", "--runtime", "onnx", cwd=photos)
    assert r.returncode == 2 and "not a readable ONNX model" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
