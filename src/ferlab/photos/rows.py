"""Rows of faces into a .csv or .json file that appears whole when the writing ends, streamed
(a long video never holds its rows in memory)."""

import csv
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from ferlab.atomic import atomic_writer
from ferlab.errors import FerlabError

LANDMARK_COLUMNS = [
    f"{part}_{axis}"
    for part in ("right_eye", "left_eye", "nose", "mouth_right", "mouth_left")
    for axis in ("x", "y")
]
FORMATS = (".csv", ".json")


class CsvRows:
    """One line per face: box, emotion, confidence, each probability, score, landmarks."""

    def __init__(self, f: TextIO, labels: list[str], video: bool):
        self.labels, self.video = labels, video
        self.csv = csv.writer(f, lineterminator="\n")
        head = ["file"] + (["frame"] if video else [])
        head += ["face", "x", "y", "w", "h", "emotion", "confidence"]
        self.csv.writerow(head + [f"p_{e}" for e in labels] + ["score", *LANDMARK_COLUMNS])

    def write(self, rows: list[dict]) -> None:
        for row in rows:
            box = row["box"] or [""] * 4
            probs = row.get("probabilities") or {}
            lead = [row["file"]] + ([row["frame"]] if self.video else [])
            self.csv.writerow(
                lead
                + [row["face"] if row["face"] is not None else "", *box]
                + [row["emotion"] or "", "" if row["confidence"] is None else row["confidence"]]
                + [probs.get(e, "") for e in self.labels]
                + ["" if row.get("score") is None else row["score"]]
                + [v for point in row.get("landmarks") or [["", ""]] * 5 for v in point]
            )

    def finish(self, summary: dict) -> None:
        pass  # a CSV file is its rows


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
        raise FerlabError(f"{path}: --out must end in .csv or .json")


@contextmanager
def row_file(path: Path | None, labels: list[str], video: bool) -> Iterator:
    """A writer of rows into `path` (.csv or .json; None: rows go nowhere). Call
    `finish(summary)` last; the file appears only if the block ends without an error."""
    check_rows_path(path)
    if path is None:
        yield NoRows()
        return
    with atomic_writer(path, "w") as f:
        yield CsvRows(f, labels, video) if path.suffix.lower() == ".csv" else JsonRows(f)


def row_line(row: dict) -> str:
    """One face's row (or a photo's without a face) as `ferlab predict` prints it."""
    where = row["file"] + (f" frame {row['frame']}" if "frame" in row else "")
    if row["emotion"] is None:
        return f"{where}: no face found"
    return (
        f"{where}: face {row['face']} at {row['box']}: {row['emotion']} ({row['confidence']:.0%})"
    )
