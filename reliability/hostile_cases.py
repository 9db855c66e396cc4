"""Hostile cases against the `ferlab` command, as a user or an attacker would try them.

Each case prepares its input in a fresh temporary folder, runs one command and records the exit
code and the first line of stderr. A case holds when the command answers with exit 0 and a valid
result, or exit 2 and exactly one line, never a traceback, within its time limit, left no
temporary files behind, and left the shipped weights byte for byte as they were.

Cases that must also leave something untouched (a shipped model, an input, a run) or run
nothing (a pickled payload) check that after the command; the full-disk cases need a small
tmpfs, so they run as root.

    .venv/bin/python reliability/hostile_cases.py > results/reliability.md
"""

import contextlib
import io
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ferlab.atomic import PACKAGE_WEIGHTS_DIR
from ferlab.testing import synthetic_faces, tiny_config, tiny_run, write_tree, zip_tree

PX = " ".join(["7"] * 2304)
CASES = []


def case(kind: str, name: str, expect: str = "refused"):
    def wrap(fn):
        CASES.append((kind, name, expect, fn))
        return fn

    return wrap


@dataclass
class Then:
    """A command, then a check of what it must have left alone: the check returns what went
    wrong ("" when nothing did). `env` is added to the command's environment."""

    cmd: list[str]
    check: Callable[[], str]
    env: dict = field(default_factory=dict)


def cli(*args) -> list[str]:
    return [sys.executable, "-m", "ferlab", *map(str, args)]


def tree(d: Path) -> Path:
    return write_tree(synthetic_faces(per_class=3), d / "tree")


def csv_file(d: Path, text: str | bytes, name: str = "fer2013.csv") -> Path:
    p = d / name
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    return p


def central_records(b: bytearray) -> list[int]:
    """Offsets of a zip's central directory records (their signature is PK\\x01\\x02)."""
    found, pos = [], 0
    while (pos := b.find(b"PK\x01\x02", pos)) >= 0:
        found.append(pos)
        pos += 4
    return found


# ---- data readers --------------------------------------------------------------------------
@case("folder", "an emotion folder that cannot be entered (root without dac_override)")
def _(d):
    t = tree(d)
    (t / "train" / "sad").chmod(0)
    drop = "-dac_override,-dac_read_search"
    return ["setpriv", f"--inh-caps={drop}", f"--bounding-set={drop}", *cli("data", "info", t)]


@case("folder", "a broken symlink among the faces")
def _(d):
    t = tree(d)
    (t / "train" / "happy" / "Training_x.png").symlink_to(d / "gone.png")
    return cli("data", "info", t)


@case("folder", "a FIFO named like a face")
def _(d):
    t = tree(d)
    os.mkfifo(t / "train" / "happy" / "Training_x.png")
    return cli("data", "info", t)


@case("folder", "a FIFO named fer2013.csv")
def _(d):
    os.mkfifo(d / "fer2013.csv")
    return cli("data", "info", d / "fer2013.csv")


@case("folder", "an empty folder")
def _(d):
    (d / "empty").mkdir()
    return cli("data", "info", d / "empty")


@case("folder", "an unknown emotion folder")
def _(d):
    t = tree(d)
    (t / "train" / "happy").rename(t / "train" / "joy")
    return cli("data", "info", t)


@case("folder", "a text file named .jpg")
def _(d):
    t = tree(d)
    (t / "train" / "happy" / "Training_x.jpg").write_text("hello")
    return cli("data", "info", t)


@case("folder", "a truncated PNG")
def _(d):
    t = tree(d)
    f = next((t / "train" / "happy").iterdir())
    f.write_bytes(f.read_bytes()[:60])
    return cli("data", "info", t)


@case("zip", "a zip whose member bytes are damaged (CRC)")
def _(d):
    z = zip_tree(tree(d), d / "f.zip")
    with zipfile.ZipFile(z) as zf:
        info = zf.infolist()[2]
    b = bytearray(z.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    b[start : start + 16] = b"\0" * 16
    z.write_bytes(bytes(b))
    return cli("data", "info", z)


def _zip_with_headers(d: Path, edit) -> Path:
    """A zip of a tree whose every local header and central directory record went through
    edit(bytes, offset, kind), kind "local" or "central"."""
    z = zip_tree(tree(d), d / "f.zip")
    b = bytearray(z.read_bytes())
    with zipfile.ZipFile(z) as zf:
        for info in zf.infolist():
            edit(b, info.header_offset, "local")
    for pos in central_records(b):
        edit(b, pos, "central")
    z.write_bytes(bytes(b))
    return z


@case("zip", "a zip whose member names an unsupported compression method")
def _(d):
    def method_99(b, at, kind):  # the method field: byte 8 of a local header, 10 of a record
        at += 8 if kind == "local" else 10
        b[at : at + 2] = (99).to_bytes(2, "little")

    return cli("data", "info", _zip_with_headers(d, method_99))


@case("zip", "a zip whose member claims the encryption flag")
def _(d):
    def encrypted(b, at, kind):  # bit 0 of the flags: byte 6 of a local header, 8 of a record
        b[at + (6 if kind == "local" else 8)] |= 1

    return cli("data", "info", _zip_with_headers(d, encrypted))


@case("zip", "a zip whose sizes lie (compressed sizes say 10x larger)", expect="either")
def _(d):
    z = zip_tree(tree(d), d / "f.zip")
    b = bytearray(z.read_bytes())
    for pos in central_records(b):
        size = int.from_bytes(b[pos + 20 : pos + 24], "little")
        b[pos + 20 : pos + 24] = (size * 10).to_bytes(4, "little")
    z.write_bytes(bytes(b))
    return cli("data", "info", z)


@case("zip", "a truncated zip")
def _(d):
    z = zip_tree(tree(d), d / "f.zip")
    z.write_bytes(z.read_bytes()[: z.stat().st_size // 2])
    return cli("data", "info", z)


@case("zip", "random bytes named .zip")
def _(d):
    (d / "f.zip").write_bytes(os.urandom(5000))
    return cli("data", "info", d / "f.zip")


# One file each: (case, file name, contents).
CSV_CASES = [
    ("wrong CSV columns", "fer2013.csv", "a,b,c\n1,2,3\n"),
    ("a row with 2303 pixels", "fer2013.csv", f"emotion,pixels,Usage\n3,{PX[2:]},Training\n"),
    (
        "Arabic-Indic digits among the pixels",
        "fer2013.csv",
        f"emotion,pixels,Usage\n3,{PX[2:]} \u0663,Training\n",
    ),
    (
        "a label in Arabic-Indic digits",
        "fer2013.csv",
        f"emotion,pixels,Usage\n\u0663,{PX},Training\n",
    ),
    ("an unknown Usage value", "fer2013.csv", f"emotion,pixels,Usage\n3,{PX},Validation\n"),
    ("Latin-1 bytes in a UTF-8 CSV", "fer2013.csv", b"emotion,pixels,Usage\n3,\xe9\xff,Training\n"),
    ("an unclosed quote", "fer2013.csv", f'emotion,pixels,Usage\n3,"{PX},Training\n'),
    ("a 400 kB field", "train.csv", 'label,feature\n3,"' + "7 " * 200_000 + '"\n'),
    ("a NUL byte in a row", "fer2013.csv", f"emotion,pixels,Usage\n3,{PX}\0,Training\n"),
    ("duplicate ids in test.csv", "test.csv", f"id,feature\n4,{PX}\n4,{PX}\n"),
]
for _name, _file, _text in CSV_CASES:
    case("csv", _name)(
        lambda d, file=_file, text=_text: cli("data", "info", csv_file(d, text, file))
    )


@case("csv", "a folder named fer2013.csv")
def _(d):
    (d / "fer2013.csv").mkdir()
    return cli("data", "info", d / "fer2013.csv")


@case("cache", "a truncated cache entry (rebuilt with a notice)", expect="works")
def _(d):
    t = tree(d)
    before = set(Path(ENV["FERLAB_CACHE"]).glob("*.npz"))
    subprocess.run(cli("data", "info", t), capture_output=True, env=ENV)
    for entry in set(Path(ENV["FERLAB_CACHE"]).glob("*.npz")) - before:
        entry.write_bytes(entry.read_bytes()[:100])
    return cli("data", "info", t)


# ---- outputs -------------------------------------------------------------------------------
def _blocker(d: Path) -> Path:
    (d / "a-file").write_text("x")
    return d / "a-file"


@case("output", "data split --out inside a file")
def _(d):
    return cli("data", "split", tree(d), "--out", _blocker(d) / "s.json")


@case("output", "data convert into a read-only folder (root without dac_override)")
def _(d):
    t = tree(d)
    (d / "ro").mkdir()
    (d / "ro").chmod(0o555)
    drop = "-dac_override,-dac_read_search"
    return [
        "setpriv",
        f"--inh-caps={drop}",
        f"--bounding-set={drop}",
        *cli("data", "convert", t, d / "ro" / "out", "--format", "folders"),
    ]


@case("output", "train --out inside a file")
def _(d):
    return cli("train", "--data", tree(d), "--out", _blocker(d) / "run", "--epochs", "1")


@case("output", "evaluate --out inside a file")
def _(d):
    run, data = RUN
    return cli("evaluate", run, "--data", data, "--split", "PublicTest", "--out", _blocker(d) / "e")


@case("output", "predict --out inside a file")
def _(d):
    run, data = RUN
    return cli("predict", run, data / "test", "--out", _blocker(d) / "p.csv")


@case("output", "export --weights inside a file")
def _(d):
    return cli("export", RUN[0], "--weights", _blocker(d) / "w.pt")


@case("output", "export --onnx to /proc (unwritable)")
def _(d):
    return cli("export", RUN[0], "--onnx", "/proc/ferlab.onnx")


# ---- models, runs, checkpoints ---------------------------------------------------------------
@case("model", "an unknown model name")
def _(d):
    return cli("train", "--data", tree(d), "--out", d / "run", "--model", "resnet-9000")


@case("model", "--crop with dnn-study")
def _(d):
    return cli(
        "train", "--data", tree(d), "--out", d / "run", "--model", "dnn-study", "--crop", "44"
    )


@case("model", "a checkpoint whose metadata is broken")
def _(d):
    torch.save(
        {"state_dict": {}, "ferlab": {"model": "cnn-baseline", "model_args": [1]}}, d / "bad.ckpt"
    )
    return cli("evaluate", d / "bad.ckpt", "--data", tree(d))


@case("model", "a checkpoint that is not a checkpoint")
def _(d):
    (d / "x.ckpt").write_bytes(os.urandom(3000))
    return cli("evaluate", d / "x.ckpt", "--data", tree(d))


@case("run", "compare on a run without a finished epoch")
def _(d):
    run = d / "run"
    shutil.copytree(RUN[0], run)
    (run / "metrics.json").write_text('{"epochs_completed": 0}')
    (run / "metrics.csv").unlink()
    return cli("compare", run, "--out", d / "cmp")


@case("run", "compare on a run whose metrics.json is not JSON")
def _(d):
    run = d / "run"
    shutil.copytree(RUN[0], run)
    (run / "metrics.json").write_text("{oops")
    return cli("compare", run, "--out", d / "cmp")


@case("run", "resume with a changed option (--epochs)")
def _(d):
    run = d / "run"
    shutil.copytree(RUN[0], run)
    return cli("train", "--data", RUN[1], "--out", run, "--resume", "--epochs", "60")


@case("run", "a split file from other data")
def _(d):
    other = write_tree(synthetic_faces(per_class=3, seed=4), d / "other")
    subprocess.run(cli("data", "split", other, "--out", d / "s.json"), capture_output=True, env=ENV)
    return cli("train", "--data", tree(d), "--out", d / "run", "--split", d / "s.json")


@case("run", "evaluate --split val on other data")
def _(d):
    other = write_tree(synthetic_faces(per_class=3, seed=4), d / "other")
    return cli("evaluate", RUN[0], "--data", other, "--split", "val")


@case("run", "a run folder that exists (never overwritten silently)")
def _(d):
    return cli("train", "--data", RUN[1], "--out", RUN[0], "--epochs", "1")


# ---- photos --------------------------------------------------------------------------------
@case("photo", "predict on a 144-Mpixel PNG bomb")
def _(d):
    Image.new("1", (12000, 12000)).save(d / "bomb.png")
    return cli("predict", "default", d / "bomb.png", "--out", d / "p.csv")


@case("photo", "predict on a folder with a truncated JPEG (listed, exit 2)", expect="listed")
def _(d):
    buf = io.BytesIO()
    Image.fromarray(np.full((200, 200, 3), 128, np.uint8)).save(buf, "JPEG")
    (d / "photos").mkdir()
    (d / "photos" / "cut.jpg").write_bytes(buf.getvalue()[:300])
    return cli("predict", "default", d / "photos", "--out", d / "p.csv")


@case("photo", "predict on an empty folder")
def _(d):
    (d / "empty").mkdir()
    return cli("predict", "default", d / "empty")


# ---- what a hostile pass broke once: each fixed at its cause ------------------------------
class Payload:
    """Unpickling this creates a file: proof that loading ran code."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _resumable(d: Path) -> Path:
    """A copy of a finished one-epoch run whose cosine schedule --extend-epochs continues."""
    run = d / "run"
    shutil.copytree(RESUMABLE, run)
    return run


def _resume(run: Path) -> list[str]:
    return cli("train", "--data", RUN[1], "--out", run, "--resume", "--extend-epochs", "1")


@case("security", "resume whose last.ckpt holds a pickled payload, weights-only load disabled")
def _(d):
    run, marker = _resumable(d), d / "pwned"
    torch.save({"state_dict": {}, "x": Payload(marker)}, run / "checkpoints" / "last.ckpt")
    cmd = _resume(run)
    check = lambda: "the payload ran" if marker.exists() else ""  # noqa: E731
    return Then(cmd, check, env={"TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"})


@case("run", "resume whose last.ckpt is damaged (truncated)")
def _(d):
    ckpt = _resumable(d) / "checkpoints" / "last.ckpt"
    ckpt.write_bytes(ckpt.read_bytes()[:5000])
    return _resume(d / "run")


@case("run", "resume whose last.ckpt is a foreign file (a bare tensor)")
def _(d):
    torch.save(torch.zeros(3), _resumable(d) / "checkpoints" / "last.ckpt")
    return _resume(d / "run")


def _unchanged(path: Path) -> Callable[[], str]:
    before = path.read_bytes()
    return lambda: "" if path.read_bytes() == before else f"{path.name} was overwritten"


@case("output", "export --weights onto the shipped default.pt, with --force")
def _(d):
    shipped = PACKAGE_WEIGHTS_DIR / "default.pt"
    cmd = cli("export", RUN[0], "--weights", shipped, "--force")
    return Then(cmd, _unchanged(shipped))


@case("output", "train --out inside the package's weights folder")
def _(d):
    out = PACKAGE_WEIGHTS_DIR / "hostile-run"
    cmd = cli("train", "--data", RUN[1], "--out", out, "--epochs", "1", "--quiet")
    return Then(cmd, lambda: f"{out} was created" if out.exists() else "")


@case("output", "predict --out naming its input zip, with --force")
def _(d):
    faces = zip_tree(tree(d), d / "faces.zip")
    cmd = cli("predict", RUN[0], faces, "--out", faces, "--force")
    return Then(cmd, _unchanged(faces))


@case("output", "predict --annotate into its input folder, with --force")
def _(d):
    t = tree(d)
    before = sorted(p.name for p in t.rglob("*"))
    cmd = cli("predict", RUN[0], t, "--annotate", t, "--force")
    return Then(cmd, lambda: "" if sorted(p.name for p in t.rglob("*")) == before else "changed")


def _no_run(run: Path) -> Callable[[], str]:
    return lambda: f"{run.name} left behind" if run.exists() else ""


@case("run", "train --devices 99 on this CPU (refused before any process starts)")
def _(d):
    run = d / "run"
    cmd = cli("train", "--data", RUN[1], "--out", run, "--devices", "99", "--quiet")

    def check() -> str:
        children = subprocess.run(["pgrep", "-f", str(run)], capture_output=True, text=True)
        alive = children.stdout.split()
        return f"{len(alive)} processes alive" if alive else _no_run(run)()

    return Then(cmd, check)


for _option, _value in [("--lr", "nan"), ("--lr", "inf"), ("--lr", "-0.1"), ("--minutes", "-1")]:
    case("run", f"train {_option} {_value}")(
        lambda d, o=_option, v=_value: Then(
            cli("train", "--data", RUN[1], "--out", d / "run", o, v, "--epochs", "1"),
            _no_run(d / "run"),
        )
    )


@case("run", "a split file nested 100,000 levels deep (--split)")
def _(d):
    (d / "split.json").write_text("[" * 100_000 + "]" * 100_000)
    return cli("train", "--data", RUN[1], "--out", d / "run", "--split", d / "split.json")


@case("run", "a run folder whose split.json is nested 100,000 levels deep")
def _(d):
    run = _resumable(d)
    (run / "split.json").write_text("[" * 100_000 + "]" * 100_000)
    return cli("evaluate", run, "--data", RUN[1], "--split", "val")


def _onnx(d: Path) -> Path:
    subprocess.run(cli("export", RUN[0], "--onnx", d / "m.onnx"), capture_output=True, env=ENV)
    return d / "m.onnx"


@case("model", "an ONNX file whose ferlab card is not JSON")
def _(d):
    import onnx

    graph = onnx.load(str(_onnx(d)))
    for prop in graph.metadata_props:
        if prop.key == "ferlab":
            prop.value = "{not json"
    onnx.save(graph, str(d / "bad.onnx"))
    return cli("evaluate", d / "bad.onnx", "--data", RUN[1], "--runtime", "onnx")


@case("model", "a 700 MB ONNX file (refused before it is read)")
def _(d):
    big = _onnx(d)
    with big.open("r+b") as f:
        f.truncate(700_000_000)  # sparse: costs no disk
    return cli("evaluate", big, "--data", RUN[1], "--runtime", "onnx")


@case("model", "a raw pickle named .pt (no torch warning before the line)")
def _(d):
    import pickle

    (d / "raw.pt").write_bytes(pickle.dumps({"state_dict": {}}))
    return cli("evaluate", d / "raw.pt", "--data", RUN[1])


@contextlib.contextmanager
def _tmpfs(where: Path, size: str):
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", where], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", where], check=False)


@case("disk", "train into a full disk (a 2 MB tmpfs)")
def _(d):
    disk = d / "disk"
    stack = contextlib.ExitStack()
    stack.enter_context(_tmpfs(disk, "2m"))
    run = disk / "run"
    cmd = cli("train", "--data", RUN[1], "--out", run, "--model", "cnn-baseline", "--epochs", "1")

    def check() -> str:
        try:
            return f"{run.name} left behind" if run.exists() else ""
        finally:
            stack.close()

    return Then([*cmd, "--quiet"], check)


@case("disk", "data convert into a full disk (a 64 kB tmpfs)")
def _(d):
    t = tree(d)
    disk = d / "disk"
    stack = contextlib.ExitStack()
    stack.enter_context(_tmpfs(disk, "64k"))

    def check() -> str:
        try:
            left = [p.name for p in disk.iterdir()]
            return f"left behind: {left}" if left else ""
        finally:
            stack.close()

    return Then(cli("data", "convert", t, disk / "out", "--format", "folders"), check)


# ---- signals ---------------------------------------------------------------------------------
@case("signal", "SIGTERM during data convert: no temporary folder left", expect="interrupted")
def _(d):
    t = write_tree(synthetic_faces(per_class=300), d / "big")
    subprocess.run(cli("data", "info", t), capture_output=True, env=ENV)
    (d / "work").mkdir()
    return (
        "sigterm",
        cli("data", "convert", t, d / "work" / "out", "--format", "folders"),
        d / "work",
    )


@case("signal", "SIGTERM during predict --annotate: no copies left", expect="interrupted")
def _(d):
    photos = d / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for k in range(200):
        Image.fromarray(rng.integers(0, 255, (160, 160, 3), np.uint8)).save(photos / f"{k}.jpg")
    (d / "work").mkdir()
    return ("sigterm", cli("predict", RUN[0], photos, "--annotate", d / "work" / "out"), d / "work")


# ---- the fourth hostile pass ---------------------------------------------------------------
def _special(kind: str, path: Path) -> Callable[[], str]:
    """A private device node (as /dev/null: char 1,3) or a FIFO at `path`, and a check that it
    is still one."""
    import stat

    if kind == "device":
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        test = stat.S_ISCHR
    else:
        os.mkfifo(path)
        test = stat.S_ISFIFO
    return lambda: "" if test(os.lstat(path).st_mode) else f"the {kind} was replaced"


@case("output", "ensemble --out a device node (a private /dev/null), with --force")
def _(d):
    node = d / "null"
    check = _special("device", node)
    return Then(cli("ensemble", RUN[0], RUN[0], "--out", node, "--force"), check)


@case("output", "export --weights a FIFO, with --force")
def _(d):
    fifo = d / "fifo"
    check = _special("fifo", fifo)
    return Then(cli("export", RUN[0], "--weights", fifo, "--force"), check)


@case("output", "export --onnx a device node, with --force")
def _(d):
    node = d / "null"
    check = _special("device", node)
    return Then(cli("export", RUN[0], "--onnx", node, "--force"), check)


@case("output", "ensemble --out naming a member's best.ckpt, with --force")
def _(d):
    run = _resumable(d)
    best = run / "checkpoints" / "best.ckpt"
    return Then(cli("ensemble", run, run, "--out", best, "--force"), _unchanged(best))


@case("output", "ship --record naming the run itself (its metrics.json)")
def _(d):
    run = _resumable(d)
    cmd = cli("ship", run, "--as", "default", "--data", RUN[1], "--record", run)
    return Then(cmd, _unchanged(run / "metrics.json"))


def _always(run: Path, label: int) -> Path:
    """A copy of `run` whose checkpoints answer class `label` to every face."""
    for ckpt in (run / "checkpoints").glob("*.ckpt"):
        state = torch.load(ckpt, weights_only=True)
        weights = state["state_dict"]
        weights["model.classifier.weight"].zero_()
        weights["model.classifier.bias"].fill_(-100.0)
        weights["model.classifier.bias"][label] = 100.0
        torch.save(state, ckpt)
    return run


@case("ship", "ship a model that answers happy to every face, as default")
def _(d):
    run = _always(_resumable(d), 3)
    return cli("ship", run, "--as", "default", "--data", RUN[1], "--record", d / "rec")


@case("ship", "ship a 7-class model as the 8-class ferplus, with --force")
def _(d):
    run = _resumable(d)
    cmd = cli("ship", run, "--as", "ferplus", "--data", RUN[1], "--record", d / "rec", "--force")
    return cmd


def _ferplus(d: Path, rows: dict[str, list[str]]) -> Path:
    """FERPlus's layout: FER2013Train/FER2013Valid with label.csv lines as given (the faces
    fer0000000.png ... are written for the names the lines use)."""
    import cv2

    face = synthetic_faces(per_class=1).images[0]
    for folder, lines in rows.items():
        (d / "fp" / folder).mkdir(parents=True)
        for line in lines:
            cv2.imwrite(str(d / "fp" / folder / line.split(",")[0]), face)
        (d / "fp" / folder / "label.csv").write_text("\n".join(lines) + "\n")
    return d / "fp"


def _votes(k: int, votes: str = "6,2,1,1,0,0,0,0,0,0") -> str:
    return f'fer{k:07d}.png,"(0, 0, 48, 48)",{votes}'


def _plain_ferplus(d: Path) -> Path:
    return _ferplus(d, {"FER2013Train": [_votes(k) for k in range(4)],
                        "FER2013Valid": [_votes(k) for k in range(4, 6)]})  # fmt: skip


for _fmt in ("folders", "fer2013-csv", "ntu-csv"):
    case("data", f"data convert of FER+ data to {_fmt} (would drop the votes)")(
        lambda d, f=_fmt: cli("data", "convert", _plain_ferplus(d), d / "out", "--format", f)
    )


@case("data", "data convert of FER+ data to ferplus, votes kept", expect="works")
def _(d):
    return cli("data", "convert", _plain_ferplus(d), d / "out", "--format", "ferplus")


@case("data", "FER+ vote counts beyond int64 in label.csv")
def _(d):
    return cli("data", "info", _ferplus(d, {"FER2013Train": [_votes(0, "9" * 30 + ",0" * 9)]}))


@case("data", "FER+ vote counts beyond int64 in fer2013new.csv")
def _(d):
    csv_file(d, f"emotion,pixels,Usage\n3,{PX},Training\n")
    votes = "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,"
    votes += "unknown,NF\nTraining,fer0000000.png," + "9" * 30 + ",0,0,0,0,0,0,0,0,0\n"
    csv_file(d, votes, "fer2013new.csv")
    return cli("data", "info", d)


@case("data", "FER+ label.csv listing one face twice")
def _(d):
    return cli("data", "info", _ferplus(d, {"FER2013Train": [_votes(0), _votes(0)]}))


@case("data", "FER+ with an empty label.csv for FER2013Valid")
def _(d):
    return cli("data", "info", _ferplus(d, {"FER2013Train": [_votes(0)], "FER2013Valid": []}))


@case("data", "FER+ absurd vote counts (a million raters)")
def _(d):
    return cli("data", "info", _ferplus(d, {"FER2013Train": [_votes(0, "1000000" + ",0" * 9)]}))


@case("data", "linked split and emotion folders (all faces read)", expect="works")
def _(d):
    t = tree(d)
    linked = d / "linked"
    (linked / "train").mkdir(parents=True)
    (linked / "test").symlink_to(t / "test")
    for emotion in (t / "train").iterdir():
        (linked / "train" / emotion.name).symlink_to(emotion)
    cmd = cli("data", "info", linked, "--json")
    return Then(cmd, lambda: "")


@case("data", "a link from an emotion folder back to its split (a loop)")
def _(d):
    t = tree(d)
    (t / "train" / "happy" / "loop").symlink_to(t / "train")
    return cli("data", "info", t)


@case("data", "a 2 MB zip whose face member inflates to 1 GiB (refused before inflating)")
def _(d):
    with (
        zipfile.ZipFile(d / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as zf,
        zf.open("fer2013/train/happy/Training_1.png", "w", force_zip64=True) as f,
    ):
        for _ in range(1024):
            f.write(b"\0" * 2**20)
    return cli("data", "info", d / "bomb.zip")


@case("data", "a 1 MB zip whose FER+ label.csv inflates to 1 GiB")
def _(d):
    with zipfile.ZipFile(d / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("ferplus/FER2013Train/label.csv", "w", force_zip64=True) as f:
            for _ in range(1024):
                f.write(b"\n" * 2**20)
        zf.writestr("ferplus/FER2013Train/fer0000000.png", b"")
    return cli("data", "info", d / "bomb.zip")


@case("data", "a small PNG declaring 25 Mpixels among the faces")
def _(d):
    import cv2

    t = tree(d)
    cv2.imwrite(str(t / "train" / "happy" / "Training_big.png"), np.zeros((5000, 5000), np.uint8))
    return cli("data", "info", t)


def _card_file(d: Path, edit) -> Path:
    """An ensemble weights file of the trained run twice, its card's arguments edited."""
    from ferlab.export import ensemble_of
    from ferlab.inference import load_model

    net, card = ensemble_of([load_model(RUN[0]), load_model(RUN[0])])
    card = card.to_dict()
    card["model_args"] = edit(card["model_args"])
    state = {f"model.{k}": v for k, v in net.state_dict().items()}
    torch.save({"state_dict": state, "ferlab": card}, d / "card.pt")
    return d / "card.pt"


def _single_card_file(d: Path, **args) -> Path:
    from ferlab.inference import load_model

    model = load_model(RUN[0])
    card = model.card.to_dict()
    card["model_args"] = card["model_args"] | args
    state = {f"model.{k}": v for k, v in model.model.state_dict().items()}
    torch.save({"state_dict": state, "ferlab": card}, d / "card.pt")
    return d / "card.pt"


@case("model", "a 100 kB file whose card asks for widths [100000] (360 GB)")
def _(d):
    return cli("evaluate", _single_card_file(d, widths=[100000]), "--data", RUN[1])


@case("model", "a 100 kB file whose card asks for widths [16000] (9.2 GB)")
def _(d):
    return cli("evaluate", _single_card_file(d, widths=[16000]), "--data", RUN[1])


_ENSEMBLE_EDITS = {
    "listing 20,000 members": lambda m: m | {"members": m["members"] * 10_000},
    "with weights nan, 1": lambda m: m | {"weights": [float("nan"), 1.0]},
    "with weights inf, 1": lambda m: m | {"weights": [float("inf"), 1.0]},
    "with weights 1e308, 1e308": lambda m: m | {"weights": [1e308, 1e308]},
    "with string weights": lambda m: m | {"weights": "1,1"},
    "with ragged weights": lambda m: m | {"weights": [1.0, [1.0, 2.0]]},
    "whose member list is a string": lambda m: m | {"members": "cnn-baseline"},
    "nested 100 deep": lambda m: m | {"members": [_nested(m, 100), m["members"][1]]},
    "in a cycle": lambda m: _cyclic(m),
}


def _nested(m: dict, depth: int) -> dict:
    nested = {"model": "ensemble", "model_args": m}
    for _ in range(depth):
        nested = {"model": "ensemble", "model_args": {"members": [nested]}}
    return nested


def _cyclic(m: dict) -> dict:
    m = dict(m, members=list(m["members"]))
    m["members"][0] = {"model": "ensemble", "model_args": m}
    return m


for _what, _edit in _ENSEMBLE_EDITS.items():
    case("model", f"an ensemble card {_what}")(
        lambda d, e=_edit: cli("evaluate", _card_file(d, e), "--data", RUN[1])
    )


@case("model", "an ONNX file whose card nests an ensemble 3,000 deep")
def _(d):
    import json

    import onnx

    graph = onnx.load(str(_onnx(d)))
    for prop in graph.metadata_props:
        if prop.key == "ferlab":
            # written by hand: json.dumps itself stops at about 1,000 levels
            deep = '{"model": "ensemble", "model_args": {"members": [' * 3000 + "]}}" * 3000
            card = json.dumps(json.loads(prop.value) | {"model_args": "DEEP"})
            prop.value = card.replace('"DEEP"', deep)
    onnx.save(graph, str(d / "deep.onnx"))
    return cli("evaluate", d / "deep.onnx", "--data", RUN[1], "--runtime", "onnx")


for _w in ("nan,1", "inf,1", "1e308,1e308"):
    case("model", f"ensemble --weights {_w}")(
        lambda d, w=_w: cli("ensemble", RUN[0], RUN[0], "--weights", w, "--out", d / "e.pt")
    )


@case("model", "ensemble --choose-weights over 13 members (4^13 grid)", expect="works")
def _(d):
    return cli("ensemble", *[RUN[0]] * 13, "--out", d / "e.pt", "--choose-weights", "--data",
               RUN[1])  # fmt: skip


def _cached_graph(d: Path, harm) -> list[str]:
    """evaluate under ONNX Runtime after the cached graph of the trained run was harmed."""
    subprocess.run(cli("evaluate", RUN[0], "--data", RUN[1], "--split", "val", "--runtime",
                       "onnx"), capture_output=True, env=ENV)  # fmt: skip
    for graph in (Path(ENV["FERLAB_CACHE"]) / "onnx").glob("*.onnx"):
        harm(graph)
    return cli("evaluate", RUN[0], "--data", RUN[1], "--split", "val", "--runtime", "onnx")


@case("model", "a damaged ONNX graph in the cache (exported again)", expect="works")
def _(d):
    return _cached_graph(d, lambda g: g.write_bytes(g.read_bytes()[:300]))


@case("model", "a substituted ONNX graph in the cache, its hash too (exported again)",
      expect="works")  # fmt: skip
def _(d):
    other = _onnx(d)  # the same network's graph from export, standing in for another's
    import hashlib

    def harm(g: Path) -> None:
        shutil.copy(other, g)
        g.with_suffix(".sha256").write_text(hashlib.sha256(g.read_bytes()).hexdigest())

    return _cached_graph(d, harm)


@case("run", "train --minutes 1e-7 (no epoch completes)")
def _(d):
    run = d / "run"
    cmd = cli("train", "--data", RUN[1], "--out", run, "--minutes", "1e-7", "--epochs", "1")
    return Then(cmd, _no_run(run))


@case("run", "FER+ data whose Training faces have no label")
def _(d):
    lines = [_votes(k, "0,0,0,0,0,0,0,0,10,0") for k in range(6)]
    fp = _ferplus(d, {"FER2013Train": lines, "FER2013Valid": [_votes(9)]})
    return Then(cli("train", "--data", fp, "--out", d / "run", "--epochs", "1"), _no_run(d / "run"))


for _line in ("epochs: 1.5", "epochs: .inf", "batch_size: 2.5", "model_args: [1, 2]", "seed: abc",
              "val_fraction: '0.5'"):  # fmt: skip
    case("run", f"train --config with {_line}")(
        lambda d, line=_line: Then(
            cli(
                "train",
                "--config",
                csv_file(d, f"model: cnn-small\n{line}\n", "c.yaml"),
                "--data",
                RUN[1],
                "--out",
                d / "run",
            ),  # fmt: skip
            _no_run(d / "run"),
        )
    )


@case("run", "train --recipe ''")
def _(d):
    return Then(cli("train", "--recipe", "", "--data", RUN[1], "--out", d / "run"),
                _no_run(d / "run"))  # fmt: skip


@case("run", "a run resumed on a machine of another precision (recorded)", expect="works")
def _(d):
    import json

    run = _resumable(d)
    env = json.loads((run / "env.json").read_text())
    (run / "env.json").write_text(json.dumps(env | {"precision": "bf16-mixed"}))

    def check() -> str:
        resumed = json.loads((run / "env.json").read_text()).get("resumed", [])
        return "" if resumed and resumed[-1]["precision"] == "32-true" else "not recorded"

    return Then(_resume(run), check)


for _args in (("--per-class", "0"), ("--per-class", "-3"), ("--sample", "-5"), ("--sample", "0")):
    case("explain", f"explain saliency {' '.join(_args)}")(
        lambda d, a=_args: Then(
            cli("explain", "saliency", RUN[0], "--data", RUN[1], *a, "--out", d / "out"),
            lambda: "left output" if (d / "out").exists() else "",
        )
    )
for _args in (("--filters", "5-2"), ("--filters", "0-99999999"), ("--steps", "0"),
              ("--steps", "-5")):  # fmt: skip
    case("explain", f"explain filters {' '.join(_args)}")(
        lambda d, a=_args: cli(
            "explain", "filters", RUN[0], "--layer", "features.block1.act1", *a, "--out", d / "out"
        )  # fmt: skip
    )


@case("explain", "explain check on a dense network (Grad-CAM not applicable)", expect="works")
def _(d):
    from ferlab.training import train

    with contextlib.redirect_stdout(io.StringIO()):
        train(tiny_config(RUN[1], d / "dense", epochs=1, model="dnn-study",
                          model_args={"depth": 3, "width": 16}))  # fmt: skip
    return cli("explain", "check", d / "dense", "--data", RUN[1], "--n", "8", "--cascade-faces",
               "2")  # fmt: skip


@case("photo", "evaluate --detector '' on a photo folder")
def _(d):
    return cli("evaluate", RUN[0], "--data", tree(d), "--detector", "")


@case("photo", "predict on a damaged video (no FFmpeg line before ferlab's)")
def _(d):
    (d / "bad.mp4").write_bytes(bytes(range(256)) * 12)
    return cli("predict", RUN[0], d / "bad.mp4")


@case("signal", "SIGTERM during evaluate --out: nothing left", expect="interrupted")
def _(d):
    (d / "work").mkdir()
    t = write_tree(synthetic_faces(per_class=300), d / "big")
    subprocess.run(cli("data", "info", t), capture_output=True, env=ENV)
    return ("sigterm", cli("evaluate", RUN[0], "--data", t, "--split", "PublicTest", "--out",
                           d / "work" / "out"), d / "work")  # fmt: skip


@case("signal", "SIGTERM during explain check --out: nothing left", expect="interrupted")
def _(d):
    (d / "work").mkdir()
    return ("sigterm", cli("explain", "check", RUN[0], "--data", RUN[1], "--out",
                           d / "work" / "out"), d / "work")  # fmt: skip


def shipped_hashes() -> dict[str, str]:
    import hashlib

    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(PACKAGE_WEIGHTS_DIR.iterdir()) if p.is_file()}  # fmt: skip


def run_case(fn, d: Path) -> tuple[int, str, str]:
    """(exit code, stderr, what it left behind or changed): the shipped weights are hashed
    before and after every case, whatever it is."""
    before = shipped_hashes()
    code, err, extra = _run_case(fn, d)
    if shipped_hashes() != before:
        extra = "but: a shipped model changed"
    return code, err, extra


def _run_case(fn, d: Path) -> tuple[int, str, str]:
    try:
        spec = fn(d)
    except Exception as e:  # the case could not be built: it fails, the others still run
        return -1, f"preparing the case failed: {type(e).__name__}: {e}", ""
    if isinstance(spec, tuple):  # ("sigterm", command, folder that must end up empty)
        _, cmd, folder = spec
        proc = subprocess.Popen(
            cmd, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=ENV
        )
        deadline = time.monotonic() + 120
        while not any(folder.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
        left = [p.name for p in folder.iterdir()]
        return proc.returncode, err, f"left behind: {left}" if left else "nothing left behind"
    then = spec if isinstance(spec, Then) else Then(spec, lambda: "")
    try:
        r = subprocess.run(
            then.cmd, capture_output=True, text=True, timeout=120, env=ENV | then.env
        )
    except subprocess.TimeoutExpired:
        return -1, "timed out after 120 s", then.check()
    wrong = then.check()
    return r.returncode, r.stderr, f"but: {wrong}" if wrong else ""


def holds(expect: str, code: int, err: str, extra: str) -> bool:
    if "Traceback" in err or code < 0 or extra.startswith(("left behind", "but:")):
        return False
    lines = [line for line in err.strip().splitlines() if line.startswith("ferlab:")]
    if expect == "refused":
        return code == 2 and len(err.strip().splitlines()) == 1 and bool(lines)
    if expect == "interrupted":
        return code == 130
    if expect == "either":  # a valid result or one line
        return code == 0 or (code == 2 and len(err.strip().splitlines()) == 1)
    if expect == "listed":  # the files that could not be read, one line each, then exit 2
        return code == 2 and all(line.startswith("ferlab:") for line in err.strip().splitlines())
    return code == 0


def main() -> None:
    global ENV, RUN, RESUMABLE
    from ferlab.training import train

    base = Path(tempfile.mkdtemp(prefix="ferlab-hostile-"))
    ENV = os.environ | {"FERLAB_CACHE": str(base / "cache")}
    os.environ["FERLAB_CACHE"] = ENV["FERLAB_CACHE"]
    with contextlib.redirect_stdout(io.StringIO()):  # its epoch line is not part of the table
        RUN = tiny_run(base / "trained", per_class=6, seed=0, epochs=1)
        RESUMABLE = base / "resumable"
        train(tiny_config(RUN[1], RESUMABLE, epochs=1, schedule="cosine"))
    # While mending: a number on the command line runs the cases from that one on, a word only
    # those whose name holds it.
    pick = sys.argv[1] if len(sys.argv) > 1 else ""
    chosen = CASES[int(pick) :] if pick.isdigit() else [c for c in CASES if pick in c[1]]
    rows, held = [], 0
    for i, (kind, name, expect, fn) in enumerate(chosen):
        d = base / f"case{i}"
        d.mkdir()
        code, err, extra = run_case(fn, d)
        ok = holds(expect, code, err, extra)
        held += ok
        first = (err.strip().splitlines() or [""])[-1 if expect == "works" else 0]
        first = first.replace(str(base), "TMP").replace("|", "\\|")[:150]
        first = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in first)
        rows.append(
            f"| {kind} | {name} | {code} | {'holds' if ok else '**fails**'} | "
            f"{first}{' (' + extra + ')' if extra else ''} |"
        )
    shutil.rmtree(base, ignore_errors=True)
    print("# Hostile input: what ferlab answers\n")
    print(__doc__.split("\n\n")[1].replace("\n", " ") + "\n")
    print(f"Command: `{__doc__.strip().splitlines()[-1].strip()}`\n")
    print(f"**{held} of {len(chosen)} cases hold.**\n")
    print("| class | case | exit | result | stderr (first line; last for cases that work) |")
    print("| --- | --- | ---: | --- | --- |")
    print("\n".join(rows))


ENV: dict = {}
RUN: tuple = ()
RESUMABLE = Path()

if __name__ == "__main__":
    main()
