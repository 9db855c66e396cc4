"""Rows of faces into a file, streamed (a long video never holds its rows in memory): .json
appears whole when the writing ends; .csv and .jsonl (a row a line) grow in FILE.partial, each
input's rows flushed as they come, and take their name when the run ends. An interrupted run
leaves FILE.partial, valid to its last whole line, and `resumed_rows` continues it."""

import csv
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from ferlab.atomic import (
    FULL,
    atomic_writer,
    disk_full,
    refuse_package_weights,
    refuse_special_file,
)
from ferlab.errors import FerlabError

LANDMARK_COLUMNS = [
    f"{part}_{axis}"
    for part in ("right_eye", "left_eye", "nose", "mouth_right", "mouth_left")
    for axis in ("x", "y")
]
FORMATS = (".csv", ".json", ".jsonl")
STREAMED = (".csv", ".jsonl")  # grow in FILE.partial and can be resumed


def csv_header(labels: list[str], video: bool) -> list[str]:
    head = ["file"] + (["frame"] if video else [])
    head += ["face", "x", "y", "w", "h", "emotion", "confidence"]
    return head + [f"p_{e}" for e in labels] + ["score", *LANDMARK_COLUMNS]


def csv_cells(row: dict, labels: list[str], video: bool) -> list:
    """A row as the CSV's cells (csv_header's columns; "" for what a row lacks)."""
    box = row["box"] or [""] * 4
    probs = row.get("probabilities") or {}
    lead = [row["file"]] + ([row["frame"]] if video else [])
    return (
        lead
        + [row["face"] if row["face"] is not None else "", *box]
        + [row["emotion"] or "", "" if row["confidence"] is None else row["confidence"]]
        + [probs.get(e, "") for e in labels]
        + ["" if row.get("score") is None else row["score"]]
        + [v for point in row.get("landmarks") or [["", ""]] * 5 for v in point]
    )


def row_of_cells(cells: list[str], labels: list[str], video: bool) -> dict:
    """The row `csv_cells` wrote (numbers as they were written)."""
    at = dict(zip(csv_header(labels, video), cells, strict=True))
    row = {"file": at["file"]} | ({"frame": int(at["frame"])} if video else {})
    if at["emotion"] == "":
        return row | {"face": None, "box": None, "emotion": None, "confidence": None}
    points = [float(at[c]) if at[c] else None for c in LANDMARK_COLUMNS]
    return (
        row
        | {
            "face": int(at["face"]),
            "box": [int(at[c]) for c in ("x", "y", "w", "h")],
            "emotion": at["emotion"],
            "confidence": float(at["confidence"]),
            "probabilities": {e: float(at[f"p_{e}"]) for e in labels},
            "detected": None,  # not a CSV column
            "score": float(at["score"]) if at["score"] else None,
            "landmarks": None
            if points[0] is None
            else [points[i : i + 2] for i in range(0, 10, 2)],
        }
    )


class CsvRows:
    """One line per face: box, emotion, confidence, each probability, score, landmarks."""

    def __init__(self, f: TextIO, labels: list[str], video: bool, header: bool = True):
        self.labels, self.video = labels, video
        self.csv = csv.writer(f, lineterminator="\n")
        if header:
            self.csv.writerow(csv_header(labels, video))

    def write(self, rows: list[dict]) -> None:
        for row in rows:
            self.csv.writerow(csv_cells(row, self.labels, self.video))

    def finish(self, summary: dict) -> None:
        pass  # a CSV file is its rows


class JsonlRows:
    """One JSON object a line: a row as `ferlab predict --out x.json` holds it."""

    def __init__(self, f: TextIO):
        self.f = f

    def write(self, rows: list[dict]) -> None:
        self.f.writelines(json.dumps(row) + "\n" for row in rows)

    def finish(self, summary: dict) -> None:
        pass


class JsonRows:
    """{"rows": [...], "summary": {...}}, the rows written as they come."""

    def __init__(self, f: TextIO):
        self.f, self.count = f, 0
        f.write('{"rows": [\n')

    def write(self, rows: list[dict]) -> None:
        for row in rows:
            self.f.write((",\n" if self.count else "") + json.dumps(row))
            self.count += 1

    def finish(self, summary: dict) -> None:
        self.f.write(f'\n],\n"summary": {json.dumps(summary, indent=1)}}}\n')


class NoRows:
    def write(self, rows: list[dict]) -> None:
        pass

    def finish(self, summary: dict) -> None:
        pass


def check_rows_path(path: Path | None) -> None:
    if path is not None and path.suffix.lower() not in FORMATS:
        raise FerlabError(f"{path}: --out must end in .csv, .jsonl or .json")


def partial_path(path: Path) -> Path:
    """Where a .csv or .jsonl file's rows grow until the run ends."""
    return path.with_name(path.name + ".partial")


def check_resumable(path: Path | None, resume: bool, force: bool) -> None:
    """Refuse, before any work, to resume what cannot be, or to start over silently on the
    rows of an unfinished run."""
    if resume:
        if path is None or path.suffix.lower() not in STREAMED:
            raise FerlabError("--resume continues the rows of --out FILE.csv or FILE.jsonl")
        if path.exists() and not partial_path(path).exists():
            raise FerlabError(f"{path}: complete; nothing to resume")
    elif path is not None and partial_path(path).exists() and not force:
        raise FerlabError(
            f"{partial_path(path)}: the rows of an unfinished run; --resume continues it, "
            "--force starts again"
        )


@dataclass
class Resumed:
    """What an unfinished run's rows file already holds: its rows and the inputs (photo
    paths, or a video's frame indices) whose rows are all there."""

    rows: list[dict] = field(default_factory=list)
    done: set = field(default_factory=set)


def resumed_rows(path: Path, labels: list[str], video: bool) -> Resumed:
    """Read FILE.partial and cut it after the last input it surely holds whole: the last
    input's rows (perhaps cut short by the kill) go, to be made again."""
    partial = partial_path(path)
    if not partial.exists():
        return Resumed()
    refuse_special_file(partial)  # reading a FIFO would wait for a writer
    data = partial.read_bytes()
    whole = data[: data.rfind(b"\n") + 1]  # after the last newline: a line the kill cut short
    if not whole:
        partial.unlink()  # not even a header: start afresh
        return Resumed()
    lines, starts, at = [], [], 0
    for line in whole.split(b"\n")[:-1]:
        lines.append(line)
        starts.append(at)
        at += len(line) + 1
    starts.append(at)  # the end of the whole lines
    csv_file = path.suffix.lower() == ".csv"
    if csv_file and next(csv.reader([lines[0].decode(errors="replace")])) != csv_header(
        labels, video
    ):
        raise FerlabError(
            f"{partial}: its columns are not this model's and input's; remove it or use "
            "--force to start again"
        )
    rows, keys, key = [], [], "frame" if video else "file"
    for number in range(int(csv_file), len(lines)):
        try:
            text = lines[number].decode()
            cells = next(csv.reader([text])) if csv_file else None
            row = row_of_cells(cells, labels, video) if csv_file else json.loads(text)
            keys.append(row[key])  # a JSON line that is not a row fails here too
            rows.append(row)
        except (ValueError, KeyError, TypeError, IndexError) as e:
            raise FerlabError(
                f"{partial}: line {number + 1} is not a row of this run ({type(e).__name__}); "
                "remove it or use --force to start again"
            ) from None
    # The last input's rows may be incomplete: they go, and it is made again.
    first = keys.index(keys[-1]) if keys else len(keys)
    with open(partial, "r+b") as f:
        f.truncate(starts[first + int(csv_file)])
    return Resumed(rows[:first], set(keys[:first]))


class StreamedRows:
    """Rows appended to FILE.partial, flushed an input at a time; `close(done)` renames it to
    FILE when the run is done, and otherwise leaves it to be resumed (or removes it when it
    holds no rows)."""

    def __init__(self, path: Path, labels: list[str], video: bool, resume: bool):
        refuse_package_weights(path)
        self.path, self.partial = path, partial_path(path)
        refuse_special_file(path)
        refuse_special_file(self.partial)  # appending to a FIFO would wait for a reader
        continuing = resume and self.partial.exists()
        path.parent.mkdir(parents=True, exist_ok=True)
        self.f = open(self.partial, "a" if continuing else "w", newline="")  # noqa: SIM115
        self.fresh = not continuing
        if path.suffix.lower() == ".csv":
            self.rows = CsvRows(self.f, labels, video, header=not continuing)
        else:
            self.rows = JsonlRows(self.f)
        self.written = 0

    def write(self, rows: list[dict]) -> None:
        try:
            self.rows.write(rows)
            self.f.flush()
        except OSError as e:
            if e.errno in FULL:  # the OS names no file: say which one could not be written
                left = "the rows written so far are kept; --resume continues once there is room"
                raise FerlabError(disk_full(self.partial, left)) from None
            raise
        self.written += len(rows)

    def finish(self, summary: dict) -> None:
        pass

    def close(self, done: bool) -> None:
        self.f.close()
        if done:
            refuse_special_file(self.path)
            os.replace(self.partial, self.path)
        elif self.fresh and self.written == 0:
            self.partial.unlink(missing_ok=True)


@contextmanager
def row_file(path: Path | None, labels: list[str], video: bool, resume: bool = False) -> Iterator:
    """A writer of rows into `path` (.csv, .jsonl or .json; None: rows go nowhere). Call
    `finish(summary)` last. A .json file appears only if the block ends without an error; a
    .csv or .jsonl file grows in FILE.partial, left there for `resume` if the block does not
    end (resumed_rows reads it first)."""
    check_rows_path(path)
    if path is None:
        yield NoRows()
        return
    if path.suffix.lower() in STREAMED:
        writer = StreamedRows(path, labels, video, resume)
        done = False
        try:
            yield writer
            done = True
        finally:
            writer.close(done)
        return
    with atomic_writer(path, "w") as f:
        yield JsonRows(f)


def row_line(row: dict) -> str:
    """One face's row (or a photo's without a face) as `ferlab predict` prints it."""
    where = row["file"] + (f" frame {row['frame']}" if "frame" in row else "")
    if row["emotion"] is None:
        return f"{where}: no face found"
    return (
        f"{where}: face {row['face']} at {row['box']}: {row['emotion']} ({row['confidence']:.0%})"
    )
