"""Hostile input, as a user or an attacker would give it: every reader error is one line naming
the file with exit 2 (never a traceback), folder walks report what they cannot enter, and
interrupted commands leave nothing behind."""

import io
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import pixel_text, run_cli, synthetic_faces, tiny_run, write_tree, zip_tree
from ferlab.data import read_source
from ferlab.errors import FerlabError


def one_line_exit_2(r: subprocess.CompletedProcess, says: str = "") -> None:
    assert r.returncode == 2, (r.returncode, r.stderr[-1500:])
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ferlab: error: "), r.stderr
    assert says in lines[0], lines[0]


@pytest.fixture
def tree(tmp_path):
    return write_tree(synthetic_faces(per_class=3), tmp_path / "tree")


def without_root_override(*args: str) -> list[str]:
    """The command as root without the capabilities that let root ignore permission bits."""
    drop = "-dac_override,-dac_read_search"
    return ["setpriv", "--inh-caps=" + drop, "--bounding-set=" + drop, *args]


def _setpriv_works() -> bool:
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        return False
    probe = subprocess.run(without_root_override("true"), capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not _setpriv_works(), reason="needs root and setpriv to drop dac_override")
def test_a_folder_that_cannot_be_entered_is_an_error_not_a_missing_class(tree):
    sad = tree / "train" / "sad"
    sad.chmod(0)
    try:
        cmd = [sys.executable, "-m", "ferlab", "data", "info", str(tree)]
        r = subprocess.run(without_root_override(*cmd), capture_output=True, text=True)
    finally:
        sad.chmod(0o755)
    one_line_exit_2(r, "cannot enter")
    assert "sad" in r.stderr


def test_a_broken_symlink_is_named(tree):
    (tree / "train" / "happy" / "Training_gone.png").symlink_to(tree / "nowhere.png")
    one_line_exit_2(run_cli("data", "info", tree), "Training_gone.png: cannot read (a broken link)")
    # Also when the same folder was read (and cached) before the link broke.
    (tree / "train" / "happy" / "Training_gone.png").unlink()
    assert run_cli("data", "info", tree).returncode == 0
    (tree / "train" / "happy" / "Training_gone.png").symlink_to(tree / "nowhere.png")
    one_line_exit_2(run_cli("data", "info", tree), "a broken link")


def test_a_fifo_is_refused_not_waited_on(tree, tmp_path):
    os.mkfifo(tree / "train" / "happy" / "Training_fifo.png")
    one_line_exit_2(run_cli("data", "info", tree, timeout=60), "not a regular file")
    os.mkfifo(tmp_path / "fer2013.csv")
    one_line_exit_2(run_cli("data", "info", tmp_path / "fer2013.csv", timeout=60), "regular file")


def test_a_damaged_zip_member_is_named(tree, tmp_path):
    archive = zip_tree(tree, tmp_path / "fer.zip")
    with zipfile.ZipFile(archive) as zf:
        info = zf.infolist()[3]
    data = bytearray(archive.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start : start + 20] = b"\x00" * 20  # damage the member's stored bytes (CRC fails)
    archive.write_bytes(bytes(data))
    one_line_exit_2(run_cli("data", "info", archive), f"member {info.filename}")


@pytest.mark.parametrize(
    "case, row, says",
    [
        ("arabic digits", "3,{px} \u0663,Training", "ASCII digits"),
        ("label in other digits", "\u0663,{px},Training", "not an integer"),
        ("unknown usage", "3,{px},Validation", "Usage 'Validation'"),
        ("quoting", '3,"{px},Training\n"unclosed', ""),
    ],
)
def test_csv_defects_are_one_line(tmp_path, case, row, says):
    px = " ".join(["7"] * (2304 if "arabic" not in case else 2303))
    (tmp_path / "fer2013.csv").write_text("emotion,pixels,Usage\n" + row.format(px=px) + "\n")
    one_line_exit_2(run_cli("data", "info", tmp_path / "fer2013.csv"), says)


def test_csv_in_another_encoding_or_with_a_huge_field(tmp_path):
    (tmp_path / "fer2013.csv").write_bytes(b"emotion,pixels,Usage\n3,\xff\xfe,Training\n")
    one_line_exit_2(run_cli("data", "info", tmp_path / "fer2013.csv"), "fer2013.csv")
    (tmp_path / "train.csv").write_text('label,feature\n3,"' + "7 " * 200_000 + '"\n')
    one_line_exit_2(run_cli("data", "info", tmp_path / "train.csv"), "train.csv")


def test_duplicate_ids_in_test_csv_are_refused(tmp_path):
    face = pixel_text(synthetic_faces(per_class=1).images[0])
    (tmp_path / "test.csv").write_text(f"id,feature\n4,{face}\n4,{face}\n")
    one_line_exit_2(run_cli("data", "info", tmp_path / "test.csv"), "id 4 appears twice")


def test_outputs_that_cannot_be_written_are_one_line(tree, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    run, data = tiny_run(tmp_path / "r", per_class=4, seed=0, epochs=1)
    commands = [
        ("data", "split", tree, "--out", blocker / "s.json"),
        ("data", "convert", tree, blocker / "out", "--format", "folders"),
        ("train", "--data", tree, "--out", blocker / "run", "--epochs", "1"),
        ("evaluate", run, "--data", data, "--split", "PublicTest", "--out", blocker / "ev"),
        ("export", run, "--weights", blocker / "w.pt"),
        ("predict", run, data / "test", "--out", blocker / "p.csv"),
    ]
    for cmd in commands:
        r = run_cli(*cmd)
        one_line_exit_2(r, "a-file")


def test_a_checkpoint_with_broken_metadata_is_one_line(tmp_path):
    torch.save(
        {"state_dict": {}, "ferlab": {"model": "cnn-baseline", "model_args": [1]}},
        tmp_path / "bad.ckpt",
    )
    one_line_exit_2(run_cli("evaluate", tmp_path / "bad.ckpt", "--data", tmp_path), "bad.ckpt")
    torch.save({"state_dict": {}, "ferlab": {"model_args": {}}}, tmp_path / "bad2.ckpt")
    one_line_exit_2(run_cli("export", tmp_path / "bad2.ckpt", "--weights", tmp_path / "w.pt"))


def test_compare_refuses_a_run_without_a_finished_epoch(tmp_path):
    run, _ = tiny_run(tmp_path / "r", per_class=4, seed=0, epochs=1)
    (run / "metrics.json").write_text('{"epochs_completed": 0}')
    (run / "metrics.csv").unlink()
    one_line_exit_2(run_cli("compare", run, "--out", tmp_path / "cmp"), "no finished epoch")


@pytest.mark.slow
def test_sigterm_during_convert_leaves_no_temporary_folder(tmp_path):
    faces = synthetic_faces(per_class=400)  # long enough to be caught writing
    tree = write_tree(faces, tmp_path / "tree", ext=".png")
    assert run_cli("data", "info", tree).returncode == 0  # decode once, into the cache
    out = tmp_path / "work" / "converted"
    out.parent.mkdir()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ferlab",
            "data",
            "convert",
            str(tree),
            str(out),
            "--format",
            "folders",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not list(out.parent.glob(".converted.*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list(out.parent.glob(".converted.*")), "convert never started writing"
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in stderr
    assert list(out.parent.iterdir()) == []  # neither the temporary folder nor a partial OUT


def test_outputs_follow_the_umask(tree, tmp_path):
    r = run_cli("data", "split", tree, "--out", tmp_path / "s.json")
    assert r.returncode == 0
    assert (tmp_path / "s.json").stat().st_mode & 0o777 == 0o666 & ~_umask()
    r = run_cli("data", "convert", tree, tmp_path / "conv", "--format", "fer2013-csv")
    assert r.returncode == 0
    assert (tmp_path / "conv").stat().st_mode & 0o777 == 0o777 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ---- fuzzing: every reader answers "a valid FaceSet" or "one FerlabError", never else ------

FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _read_or_refuse(path) -> None:
    try:
        faces = read_source(path)
    except FerlabError as e:
        assert "\n" not in str(e)
        return
    assert faces.images.shape[1:] == (48, 48) and len(faces) == len(faces.labels)


def _valid_csv() -> bytes:
    faces = synthetic_faces(per_class=1)
    rows = [f"{faces.labels[k]},{pixel_text(faces.images[k])},Training" for k in range(3)]
    return ("emotion,pixels,Usage\n" + "\n".join(rows) + "\n").encode()


def _valid_zip(tmp_path_factory) -> bytes:
    root = tmp_path_factory.mktemp("z")
    tree = write_tree(synthetic_faces(per_class=1), root / "t")
    return zip_tree(tree, root / "f.zip").read_bytes()


def _mutate(data: bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    buf = bytearray(data)
    for pos, value in edits:
        buf[pos % len(buf)] = value
    return bytes(buf[:cut] if cut is not None else buf)


edits = st.lists(st.tuples(st.integers(0, 10**7), st.integers(0, 255)), max_size=12)
cuts = st.one_of(st.none(), st.integers(0, 10**5))


@FUZZ
@given(data=st.binary(max_size=4000))
def test_fuzz_csv_random_bytes(tmp_path, data):
    (tmp_path / "fer2013.csv").write_bytes(b"emotion,pixels,Usage\n" + data)
    _read_or_refuse(tmp_path / "fer2013.csv")


@FUZZ
@given(edits=edits, cut=cuts)
def test_fuzz_csv_mutations(tmp_path, edits, cut):
    (tmp_path / "fer2013.csv").write_bytes(_mutate(_valid_csv(), edits, cut))
    _read_or_refuse(tmp_path / "fer2013.csv")


@pytest.fixture(scope="module")
def valid_zip(tmp_path_factory):
    return _valid_zip(tmp_path_factory)


@FUZZ
@given(edits=edits, cut=cuts)
def test_fuzz_zip_mutations(tmp_path, valid_zip, edits, cut):
    (tmp_path / "f.zip").write_bytes(_mutate(valid_zip, edits, cut))
    _read_or_refuse(tmp_path / "f.zip")


@FUZZ
@given(data=st.binary(max_size=3000))
def test_fuzz_zip_random_bytes(tmp_path, data):
    (tmp_path / "f.zip").write_bytes(data)
    _read_or_refuse(tmp_path / "f.zip")


@FUZZ
@given(edits=edits, cut=cuts, ext=st.sampled_from([".png", ".jpg", ".bmp", ".gif"]))
def test_fuzz_image_mutations(tmp_path, edits, cut, ext):
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.arange(48 * 48, dtype=np.uint8).reshape(48, 48)).save(
        buf, {".jpg": "JPEG", ".png": "PNG", ".bmp": "BMP", ".gif": "GIF"}[ext]
    )
    folder = tmp_path / "d" / "happy"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    (folder / f"Training_0{ext}").write_bytes(_mutate(buf.getvalue(), edits, cut))
    _read_or_refuse(tmp_path / "d")
