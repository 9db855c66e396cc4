"""The documentation runs: every `python` and `bash` block of README.md and docs/*.md is
executed (a file's python blocks in order, in one namespace, as a reader pastes them), in a
folder holding the photo, photo folder and video they name; every `ferlab ...` line of a
`text` block (a command synopsis) names a command and options that its --help lists."""

import os
import re
import shlex
import subprocess
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)
PHOTOS_TW = ROOT.parent / "shared" / "data" / "photos-tw.zip"


def blocks(path: Path, language: str) -> list[str]:
    return [code for lang, code in BLOCK.findall(path.read_text()) if lang == language]


def a_photo() -> Image.Image:
    """A photo from the photo set when it is here (never committed), else skimage's
    astronaut."""
    if PHOTOS_TW.is_file():
        with zipfile.ZipFile(PHOTOS_TW) as z:
            name = next(n for n in sorted(z.namelist()) if n.lower().endswith(".jpg"))
            with z.open(name) as f:
                return Image.open(f).convert("RGB")
    return Image.fromarray(skdata.astronaut())


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("docs")
    photo = a_photo()
    photo.save(folder / "photo.jpg", quality=92)
    (folder / "photos").mkdir()
    astronaut = Image.fromarray(skdata.astronaut())
    for name, image in (("a.jpg", photo), ("b.jpg", astronaut), ("c.jpg", astronaut.rotate(10))):
        image.save(folder / "photos" / name, quality=92)
    bgr = np.asarray(astronaut)[..., ::-1].copy()
    writer = cv2.VideoWriter(str(folder / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10,
                             (512, 512))  # fmt: skip
    for i in range(30):
        writer.write(bgr if i < 20 else np.full_like(bgr, 90))
    writer.release()
    return folder


def test_the_docs_hold_runnable_examples():
    assert blocks(ROOT / "README.md", "python") and blocks(ROOT / "README.md", "bash")


@pytest.mark.parametrize("path", [p for p in DOCS if blocks(p, "python")], ids=lambda p: p.name)
def test_python_blocks_run(path, workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    namespace = {"__name__": "__docs__"}
    for code in blocks(path, "python"):
        exec(compile(code, str(path), "exec"), namespace)  # noqa: S102 (our own docs)


@pytest.mark.parametrize("path", [p for p in DOCS if blocks(p, "bash")], ids=lambda p: p.name)
def test_bash_blocks_run(path, workdir):
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    for code in blocks(path, "bash"):
        r = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", code], cwd=workdir, env=env,
            capture_output=True, text=True,
        )  # fmt: skip
        assert r.returncode == 0, f"{path.name}:\n{code}\n{r.stderr}"
        assert "Traceback" not in r.stderr


def synopsis_lines(path: Path) -> list[str]:
    """The `ferlab ...` lines of the text blocks, continuation lines joined."""
    lines = []
    for code in blocks(path, "text"):
        for line in code.replace("\\\n", " ").splitlines():
            if line.startswith("ferlab "):
                lines.append(line.split("#", 1)[0])
    return lines


@pytest.mark.parametrize("path", [p for p in DOCS if synopsis_lines(p)], ids=lambda p: p.name)
def test_command_synopses_name_real_commands_and_options(path):
    from typer.testing import CliRunner

    from ferlab.commands.cli import app

    helps = {}
    for line in synopsis_lines(path):
        words = shlex.split(line.replace("|", " ").replace("[", " ").replace("]", " "))[1:]
        command = []
        for word in words:  # the command: the words before the first argument or option
            if word.startswith("-") or not word.islower() or not word.isalpha():
                break
            trial = " ".join([*command, word])
            if trial not in helps:
                result = CliRunner().invoke(app, [*trial.split(), "--help"])
                helps[trial] = result.output if result.exit_code == 0 else None
            if helps[trial] is None:
                break
            command.append(word)
        assert command, f"{path.name}: no ferlab command in: {line}"
        text = helps[" ".join(command)]
        for option in {w.split("=")[0] for w in words if w.startswith("--")}:
            assert option in text, f"{path.name}: `ferlab {' '.join(command)}` has no {option}"


def test_no_doc_names_a_missing_file():
    for path in DOCS:
        for target in re.findall(r"\]\(([^)#:]+)\)", path.read_text()):
            assert (path.parent / target).exists(), f"{path.name} links to missing {target}"
