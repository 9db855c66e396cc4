"""Readers for every FER2013 distribution, each returning a raw (not preprocessed) FaceSet.

Bad input is fatal: the first bad file or row stops the read with a FerlabError naming it,
so a dataset never silently loses faces.
"""

import csv
import io
import os
import stat
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from ferlab.data.faceset import FaceSet
from ferlab.data.images import decode_gray, is_image_name
from ferlab.data.labels import (
    EMOTIONS,
    FERPLUS_CLASSES,
    FERPLUS_SPLITS,
    FERPLUS_VOTE_COLUMNS,
    FERPLUS_VOTES,
    FILE_PREFIXES,
    NUM_CLASSES,
    SPLIT_FOLDERS,
    UNLABELED,
    emotion_id,
)
from ferlab.data.preprocess import FACE_SIZE, to_face_size
from ferlab.errors import FerlabError

PIXELS = FACE_SIZE * FACE_SIZE
FER2013_COLUMNS = ("emotion", "pixels", "Usage")
FER2013_USAGES = ("Training", "PublicTest", "PrivateTest")
FERPLUS_CSV_COLUMNS = ("Usage", "Image name", *FERPLUS_VOTE_COLUMNS)  # fer2013new.csv
NTU_TRAIN_COLUMNS = ("label", "feature")
NTU_TEST_COLUMNS = ("id", "feature")


def read_source(path: str | Path) -> FaceSet:
    """Read faces from a folder, a zip of a folder, fer2013.csv (with FER+'s fer2013new.csv
    beside it: its votes), or the train.csv/test.csv pair."""
    path = Path(path)
    if not path.exists():
        raise FerlabError(f"{path}: no such file or folder")
    if path.is_dir():
        if any((path / folder / "label.csv").is_file() for folder in FERPLUS_SPLITS):
            return read_ferplus(_folder_entries(path, everything=True), str(path))
        if (path / "fer2013.csv").is_file() and (path / "fer2013new.csv").is_file():
            return read_fer2013new(path / "fer2013.csv", path / "fer2013new.csv")
        if (path / "fer2013.csv").is_file():
            return read_fer2013_csv(path / "fer2013.csv")
        if (path / "train.csv").is_file() or (path / "test.csv").is_file():
            return read_ntu_pair(path)
        return _read_image_tree(_folder_entries(path), str(path))
    if not path.is_file():  # a FIFO or device would block or never end
        raise FerlabError(f"{path}: not a regular file")
    if path.suffix.lower() == ".zip":
        return _read_zip(path)
    if path.suffix.lower() == ".csv":
        header = csv_header(path)
        if header == FER2013_COLUMNS:
            return read_fer2013_csv(path)
        if header == FERPLUS_CSV_COLUMNS:
            beside = path.parent / "fer2013.csv"
            if not beside.is_file():
                raise FerlabError(
                    f"{path}: FER+'s votes for fer2013.csv's faces; no fer2013.csv beside it"
                )
            return read_fer2013new(beside, path)
        if header in (NTU_TRAIN_COLUMNS, NTU_TEST_COLUMNS):
            return FaceSet(
                *read_ntu_csv(path, labeled=header == NTU_TRAIN_COLUMNS), source=str(path)
            )
        raise FerlabError(
            f"{path}: unexpected CSV columns {','.join(header)[:200]}; expected "
            f"{','.join(FER2013_COLUMNS)} (fer2013.csv), {','.join(NTU_TRAIN_COLUMNS)} (train.csv) "
            f"or {','.join(NTU_TEST_COLUMNS)} (test.csv)"
        )
    if is_image_name(path.name):
        raise FerlabError(f"{path}: a single image is not a dataset; give its folder")
    raise FerlabError(f"{path}: not a folder, .zip or .csv of FER2013 faces")


# ---- image trees (folders and zips) ------------------------------------------------------------

Entry = tuple[str, Callable[[], bytes]]  # (relative path with '/', reader of the file's bytes)


# What reading a zip member can raise for damaged, encrypted or unsupported members, or sizes
# that lie; each becomes one line naming the member.
ZIP_MEMBER_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    NotImplementedError,
    RuntimeError,
    EOFError,
    OSError,
    ValueError,
)


def image_files(root: Path, everything: bool = False) -> list[tuple[str, Path]]:
    """(path relative to root, full path) of every image file under root, sorted. A folder
    that cannot be entered, a broken link or a file that is not a regular file (a FIFO would
    block the read) stops the walk with one line: a dataset never silently loses faces."""

    def cannot_enter(err: OSError):
        raise FerlabError(f"{root}: cannot enter {err.filename} ({err.strerror})")

    found, seen = [], set()
    # Linked folders are followed (a split or emotion folder is often a link to another
    # disk); a folder reached twice would read its faces twice, and a loop for ever.
    for dirpath, dirnames, filenames in os.walk(root, onerror=cannot_enter, followlinks=True):
        here = os.stat(dirpath)
        if (here.st_dev, here.st_ino) in seen:
            rel = Path(dirpath).relative_to(root).as_posix()
            raise FerlabError(f"{root}: {rel}: a link to a folder already read (faces read twice)")
        seen.add((here.st_dev, here.st_ino))
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not (is_image_name(name) or (everything and name == "label.csv")):
                continue
            full = Path(dirpath) / name
            rel = full.relative_to(root).as_posix()
            try:
                mode = full.stat().st_mode  # follows links
            except OSError as e:
                what = "a broken link" if full.is_symlink() else e.strerror
                raise FerlabError(f"{root}: {rel}: cannot read ({what})") from None
            if not stat.S_ISREG(mode):
                raise FerlabError(f"{root}: {rel}: not a regular file")
            found.append((rel, full))
    return found


# What one file of a dataset may hold: a face image (a 48x48 PNG is 2 kB; a photo of a face a
# few MB) or a FER+ label.csv (a row of about 50 bytes a face: 1.4 MB for FER2013Train). A zip
# member is refused by the size it declares (zipfile never inflates past it), before it is read.
MAX_MEMBER_BYTES = 32 * 2**20
# fer2013new.csv (votes for 35,887 faces) is about 2 MB.
MAX_VOTES_BYTES = 64 * 2**20
# A dataset's face, decoded: 16 Mpixels (a 48x48 face needs 2,304; a phone photo has 12 M).
MAX_FACE_PIXELS = 16_000_000


def _too_large(where: str, size: int, limit: int) -> FerlabError:
    return FerlabError(
        f"{where}: {size / 1e6:.0f} MB, more than any face image or label file of a dataset "
        f"(at most {limit / 1e6:.0f} MB are read)"
    )


def _file_reader(root: Path, rel: str, full: Path) -> Callable[[], bytes]:
    def read() -> bytes:
        try:
            size = full.stat().st_size
            if size > MAX_MEMBER_BYTES:
                raise _too_large(f"{root}: {rel}", size, MAX_MEMBER_BYTES)
            return full.read_bytes()
        except OSError as e:
            raise FerlabError(f"{root}: {rel}: cannot read ({e.strerror})") from None

    return read


def _folder_entries(root: Path, everything: bool = False) -> list[Entry]:
    files = image_files(root, everything)
    return [(rel, _file_reader(root, rel, full)) for rel, full in files]


def _read_zip(path: Path) -> FaceSet:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise FerlabError(f"{path}: not a readable zip ({e})") from None
    with zf:
        names = [n for n in zf.namelist() if not n.endswith("/") and "__MACOSX/" not in n]
        csvs = [n for n in names if n.rsplit("/", 1)[-1] == "fer2013.csv"]
        new = [n for n in names if n.rsplit("/", 1)[-1] == "fer2013new.csv"]
        if csvs:
            votes = _zip_text(zf, path, new[0]) if new else None
            try:
                with zf.open(csvs[0]) as f:
                    text = io.TextIOWrapper(f, newline="", encoding="utf-8-sig")
                    if votes is not None:
                        return read_fer2013new(text, votes, f"{path}!{csvs[0]}")
                    return read_fer2013_csv(text, name=f"{path}!{csvs[0]}")
            except ZIP_MEMBER_ERRORS as e:
                raise _member_error(path, csvs[0], e) from None
        if any(n.rsplit("/", 2)[-2:] == [f, "label.csv"] for n in names for f in FERPLUS_SPLITS):
            wanted = [n for n in sorted(names) if is_image_name(n) or n.endswith("/label.csv")]
            return read_ferplus([(n, zip_reader(zf, n)) for n in wanted], str(path))
        entries = [(n, zip_reader(zf, n)) for n in sorted(names) if is_image_name(n)]
        return _read_image_tree(entries, str(path))


def _zip_text(zf: zipfile.ZipFile, path: Path, name: str) -> io.StringIO:
    """A small zip member's text, read whole (fer2013new.csv: about 2 MB)."""
    try:
        size = zf.getinfo(name).file_size
        if size > MAX_VOTES_BYTES:
            raise _too_large(f"{path}!{name}", size, MAX_VOTES_BYTES)
        return io.StringIO(zf.read(name).decode("utf-8-sig"), newline="")
    except UnicodeDecodeError as e:
        raise FerlabError(f"{path}!{name}: cannot read ({e})") from None
    except ZIP_MEMBER_ERRORS as e:
        raise _member_error(path, name, e) from None


def zip_reader(
    zf: zipfile.ZipFile, name: str, limit: int = MAX_MEMBER_BYTES
) -> Callable[[], bytes]:
    def read() -> bytes:
        try:
            size = zf.getinfo(name).file_size
            if size > limit:
                raise _too_large(f"{zf.filename}!{name}", size, limit)
            return zf.read(name)
        except ZIP_MEMBER_ERRORS as e:
            raise _member_error(zf.filename, name, e) from None

    return read


def _member_error(archive, member: str, e: Exception) -> FerlabError:
    return FerlabError(f"{archive}: member {member}: cannot be read ({type(e).__name__}: {e})")


def _label_and_split(relpath: str, source: str) -> tuple[int, str]:
    parts = relpath.split("/")
    if len(parts) < 2:
        raise FerlabError(
            f"{source}: {relpath} is not inside an emotion folder "
            f"(expected <emotion>/<file>, emotions: {', '.join(EMOTIONS)})"
        )
    label = emotion_id(parts[-2])
    if label is None:
        raise FerlabError(
            f"{source}: unknown emotion folder '{parts[-2]}' (at {relpath}); "
            f"expected one of {', '.join(EMOTIONS)}"
        )
    split = next((s for p, s in FILE_PREFIXES.items() if parts[-1].startswith(p)), None)
    if split is None and len(parts) >= 3:
        split = SPLIT_FOLDERS.get(parts[-3].lower())
    return label, split or "Unsplit"


def _read_image_tree(entries: list[Entry], source: str) -> FaceSet:
    if not entries:
        raise FerlabError(f"{source}: no face images found (expected <emotion>/*.jpg|png)")
    n = len(entries)
    images = np.empty((n, FACE_SIZE, FACE_SIZE), dtype=np.uint8)
    labels = np.empty(n, dtype=np.int64)
    splits, ids, resized = [], [], 0
    for i, (relpath, read) in enumerate(entries):
        labels[i], split = _label_and_split(relpath, source)
        gray = decode_gray(read(), f"{source}: {relpath}", MAX_FACE_PIXELS)
        resized += gray.shape != (FACE_SIZE, FACE_SIZE)
        images[i] = to_face_size(gray)
        splits.append(split)
        ids.append(relpath)
    return FaceSet(images, labels, np.array(splits), np.array(ids), source=source, resized=resized)


# ---- FER+ ---------------------------------------------------------------------------------------


# FER+ asked 10 raters a face; a count past this is no crowd's (and past int64, no array's).
MAX_VOTES = 1000


def _vote_counts(cells: list[str], where: str) -> list[int]:
    counts = []
    for cell in cells:
        cell = cell.strip()
        if not (cell.isascii() and cell.isdigit()):
            raise FerlabError(f"{where}: vote count '{cell[:20]}' is not a count >= 0")
        if len(cell) > 6 or int(cell) > MAX_VOTES:
            raise FerlabError(f"{where}: vote count {cell[:20]} is more than {MAX_VOTES} raters")
        counts.append(int(cell))
    return counts


def read_ferplus(entries: list[Entry], source: str) -> FaceSet:
    """FERPlus's layout: FER2013Train/FER2013Valid/FER2013Test folders, each with label.csv
    (no header: file name, face box, 10 vote counts) beside its PNGs. Labels are the majority
    labels by FERPlus's rule (UNLABELED where a face has none); the votes are kept."""

    by_path = dict(entries)
    tables = sorted(
        p
        for p in by_path
        if p.rsplit("/", 2)[-2:][0] in FERPLUS_SPLITS and p.endswith("/label.csv")
    )
    images, votes, splits, ids = [], [], [], []
    for table in tables:
        folder = table[: -len("label.csv")]
        split = FERPLUS_SPLITS[folder.rstrip("/").rsplit("/", 1)[-1]]
        text = by_path[table]().decode("utf-8-sig", errors="replace")
        listed = set()
        for line_no, row in enumerate(csv.reader(io.StringIO(text)), 1):
            where = f"{source}: {table} line {line_no}"
            if not row:
                continue
            if len(row) != 2 + len(FERPLUS_VOTES):
                raise FerlabError(
                    f"{where}: {len(row) - 2} vote counts, expected {len(FERPLUS_VOTES)} "
                    f"({', '.join(FERPLUS_VOTES)})"
                )
            name = row[0].strip()
            counts = _vote_counts(row[2:], where)
            member = folder + name
            if "/" in name or member not in by_path:
                raise FerlabError(f"{where}: {name[:80]} is not in {folder or 'the folder'}")
            if member in listed:  # its votes twice: one face counted as two
                raise FerlabError(f"{where}: {name[:80]} is listed twice")
            listed.add(member)
            gray = decode_gray(by_path[member](), f"{source}: {member}", MAX_FACE_PIXELS)
            images.append(to_face_size(gray))
            votes.append(counts)
            splits.append(split)
            ids.append(member)
        if not listed:  # its split would vanish without a word
            raise FerlabError(f"{source}: {table} lists no faces")
    if not images:
        raise FerlabError(f"{source}: FER+ label.csv files list no faces")
    return _voted_faces(np.stack(images), votes, np.array(splits), ids, source)


def _voted_faces(images: np.ndarray, votes: list, splits: np.ndarray, ids: list, source: str):
    """A FER+ FaceSet: the votes kept, the labels their majority labels (FERPlus's rule;
    UNLABELED where a face has none)."""
    from ferlab.data.votes import majority_labels

    votes = np.array(votes, dtype=np.int64)
    labels = majority_labels(votes)
    labels[labels < 0] = UNLABELED
    return FaceSet(
        images, labels, splits, np.array(ids), source=source, classes=FERPLUS_CLASSES, votes=votes
    )


# ---- CSV formats -------------------------------------------------------------------------------


def csv_header(path: Path) -> tuple[str, ...]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            row = next(csv.reader(f), [])
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise FerlabError(f"{path}: cannot read ({e})") from None
    return tuple(c.strip() for c in row)


def _pixels(text: str, where: str) -> np.ndarray:
    if not text.isascii():  # int() would read other scripts' digits as numbers
        raise FerlabError(f"{where}: pixel values must be ASCII digits")
    tokens = text.split()
    if len(tokens) != PIXELS:
        raise FerlabError(f"{where}: {len(tokens)} pixel values, expected {PIXELS} (48x48)")
    try:
        values = np.array(tokens, dtype=np.int64)
    except ValueError:
        bad = next(t for t in tokens if not t.lstrip("-").isdigit())
        raise FerlabError(f"{where}: non-numeric pixel value {bad[:20]!r}") from None
    if values.min() < 0 or values.max() > 255:
        raise FerlabError(f"{where}: pixel values must lie in 0..255")
    return values.astype(np.uint8).reshape(FACE_SIZE, FACE_SIZE)


def _is_ascii_number(text: str) -> bool:
    """Digits 0-9 only: int() would also read other scripts' digits."""
    digits = text.strip()
    return digits.isascii() and digits.isdigit()


def _label(text: str, where: str) -> int:
    if not _is_ascii_number(text):
        raise FerlabError(f"{where}: label '{text[:20]}' is not an integer")
    value = int(text)
    if not 0 <= value < NUM_CLASSES:
        raise FerlabError(f"{where}: label {value} out of range 0..{NUM_CLASSES - 1}")
    return value


def _rows(f: Iterable[str], name: str, columns: tuple[str, ...]) -> Iterator[tuple[int, list]]:
    """(line number, row) of a CSV whose header must be `columns`."""
    reader = csv.reader(f)
    rows = _guarded(reader, name)
    header = tuple(c.strip().lstrip("\ufeff") for c in next(rows, []))
    if header != columns:
        raise FerlabError(
            f"{name}: columns are {','.join(header)[:200] or '(none)'}, expected "
            f"{','.join(columns)}"
        )
    for row in rows:
        if not row:
            continue
        if len(row) != len(columns):
            raise FerlabError(
                f"{name}: row {reader.line_num}: {len(row)} fields, expected {len(columns)}"
            )
        yield reader.line_num, row


def _guarded(reader, name: str) -> Iterator[list[str]]:
    """The reader's rows; what the csv module, the decoder or the file raise becomes one line
    naming the file and line."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except (csv.Error, UnicodeDecodeError, OSError, EOFError, zlib.error) as e:
            raise FerlabError(f"{name}: line {reader.line_num + 1}: cannot read ({e})") from None
        yield row


def _open_csv(path: Path):
    try:
        return open(path, newline="", encoding="utf-8-sig")
    except OSError as e:
        raise FerlabError(f"{path}: cannot read ({e})") from None


def read_fer2013_csv(src: Path | io.TextIOBase, name: str | None = None) -> FaceSet:
    """The original fer2013.csv: emotion,pixels,Usage. Ids are '<file>:<data row>' from 0."""
    name = name or str(src)
    f = _open_csv(src) if isinstance(src, Path) else src
    base = name.replace("!", "/").rsplit("/", 1)[-1]
    images, labels, splits, ids = [], [], [], []
    with f:
        for k, (line, (emotion, pixels, usage)) in enumerate(_rows(f, name, FER2013_COLUMNS)):
            where = f"{name}: row {line}"
            labels.append(_label(emotion, where))
            images.append(_pixels(pixels, where))
            if usage.strip() not in FER2013_USAGES:
                raise FerlabError(
                    f"{where}: Usage '{usage.strip()[:40]}' is not one of "
                    f"{', '.join(FER2013_USAGES)}"
                )
            splits.append(usage.strip())
            ids.append(f"{base}:{k}")
    if not images:
        raise FerlabError(f"{name}: no rows")
    return FaceSet(
        np.stack(images),
        np.array(labels, dtype=np.int64),
        np.array(splits),
        np.array(ids),
        source=name,
    )


USAGE_FOLDER = {usage: folder for folder, usage in FERPLUS_SPLITS.items()}


def read_fer2013new(
    faces_csv: Path | io.TextIOBase, votes_csv: Path | io.TextIOBase, name: str | None = None
) -> FaceSet:
    """fer2013.csv's faces with FER+'s votes from fer2013new.csv (Usage, Image name, 10 vote
    counts): row i of one is row i of the other. Rows with no image name are FER+'s
    exclusions and are left out. Labels are the majority labels, as in FERPlus's layout,
    and so are ids (FER2013Train/fer0000000.png), so the two layouts name a face alike."""
    faces = read_fer2013_csv(faces_csv, name)
    where_votes = (
        str(votes_csv) if isinstance(votes_csv, Path) else f"{faces.source} (fer2013new.csv)"
    )
    f = _open_csv(votes_csv) if isinstance(votes_csv, Path) else votes_csv
    keep, votes, ids, k = [], [], [], -1
    with f:
        for k, (line, row) in enumerate(_rows(f, where_votes, FERPLUS_CSV_COLUMNS)):
            where = f"{where_votes}: row {line}"
            if k >= len(faces):
                raise FerlabError(f"{where}: more rows than fer2013.csv's {len(faces):,}")
            usage, image = row[0].strip(), row[1].strip()
            if usage != faces.splits[k]:
                raise FerlabError(
                    f"{where}: Usage '{usage[:40]}', but fer2013.csv's row {k + 2} says "
                    f"'{faces.splits[k]}': the two files are not of the same faces"
                )
            if not image:
                continue  # excluded by FER+ (not a face, or too few raters)
            counts = _vote_counts(row[2:], where)
            keep.append(k)
            votes.append(counts)
            ids.append(f"{USAGE_FOLDER[usage]}/{image}")
    if k + 1 != len(faces):
        raise FerlabError(f"{where_votes}: {k + 1:,} rows, but fer2013.csv has {len(faces):,}")
    if not keep:
        raise FerlabError(f"{where_votes}: every row is excluded (no image names)")
    index = np.array(keep)
    return _voted_faces(faces.images[index], votes, faces.splits[index], ids, faces.source)


def read_ntu_csv(path: Path, labeled: bool) -> tuple[np.ndarray, ...]:
    """One course CSV: (images, labels, splits, ids). label,feature rows are Training;
    id,feature rows are an unlabeled Test split with ids '<file>:<Kaggle id>'."""
    columns = NTU_TRAIN_COLUMNS if labeled else NTU_TEST_COLUMNS
    images, labels, ids, seen = [], [], [], set()
    with _open_csv(path) as f:
        for k, (line, (first, feature)) in enumerate(_rows(f, str(path), columns)):
            where = f"{path}: row {line}"
            images.append(_pixels(feature, where))
            if labeled:
                labels.append(_label(first, where))
                ids.append(f"{path.name}:{k}")
            else:
                if not _is_ascii_number(first):
                    raise FerlabError(f"{where}: id '{first}' is not a non-negative integer")
                labels.append(UNLABELED)
                ids.append(f"{path.name}:{int(first)}")
                if int(first) in seen:
                    raise FerlabError(f"{where}: id {int(first)} appears twice")
                seen.add(int(first))
    if not images:
        raise FerlabError(f"{path}: no rows")
    split = "Training" if labeled else "Test"
    return (
        np.stack(images),
        np.array(labels, dtype=np.int64),
        np.array([split] * len(ids)),
        np.array(ids),
    )


def read_ntu_pair(folder: Path) -> FaceSet:
    """The course pair in a folder: train.csv (label,feature) and test.csv (id,feature)."""
    parts = [
        read_ntu_csv(folder / name, labeled)
        for name, labeled in (("train.csv", True), ("test.csv", False))
        if (folder / name).is_file()
    ]
    if not parts:
        raise FerlabError(f"{folder}: no train.csv or test.csv")
    return FaceSet(
        *(np.concatenate(arrays) for arrays in zip(*parts, strict=True)), source=str(folder)
    )
