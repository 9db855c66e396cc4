"""`ferlab data info|convert|split`: read, inspect and convert FER2013 sources."""

import json
from pathlib import Path

import typer

from ferlab.commands.common import out, table
from ferlab.data import FORMATS
from ferlab.errors import FerlabError


def data_info(
    data: Path = typer.Argument(..., help="Folder, .zip, fer2013.csv or train.csv/test.csv."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Decode again; do not use the cache."),
) -> None:
    """Counts per split and emotion, exact duplicates within and across splits."""
    from ferlab.data import RAW, duplicate_summary, load, summary_lines

    faces, fp = load(data, preprocess=RAW, use_cache=not no_cache)
    summary = faces.summary() | {"fingerprint": fp, "duplicates": duplicate_summary(faces)}
    if as_json:
        print(json.dumps(summary, indent=1))
        return
    rows = [
        (split, str(entry["total"]), *(str(entry["per_class"][e]) for e in faces.classes))
        for split, entry in summary["splits"].items()
    ]
    columns = ["split", "total>", *(f"{e}>" for e in faces.classes)]
    title = f"{data}  ({len(faces)} faces, {faces.resized} resized to 48x48)"
    out.print(table(columns, rows, title))
    for line in summary_lines(summary):
        out.print(line)
    out.print(f"fingerprint {fp}")


def data_convert(
    data: Path = typer.Argument(..., help="Any readable FER2013 source."),
    out_path: Path = typer.Argument(..., metavar="OUT", help="New output folder."),
    fmt: str = typer.Option(..., "--format", help=" | ".join(FORMATS)),
) -> None:
    """Write the data in another format (raw pixels, no preprocessing)."""
    from ferlab.data import RAW, convert, load

    faces, _ = load(data, preprocess=RAW)
    convert(faces, fmt, out_path)
    out.print(f"wrote {len(faces)} faces as {fmt} to {out_path}")


def data_split(
    data: Path = typer.Argument(..., help="A source with a Training split."),
    out_path: Path = typer.Option(..., "--out", help="Split file to write (JSON)."),
    fraction: float = typer.Option(0.1, "--val-fraction"),
    split_seed: int = typer.Option(0, "--split-seed", "--seed", help="Seed of the draw."),
) -> None:
    """Carve a stratified, seeded validation split from Training (identical faces kept on one
    side) and save it: content hashes and ids of its faces."""
    from ferlab.data import RAW, carve_validation, load

    if out_path.exists():
        raise FerlabError(f"{out_path}: already exists; choose a new path")
    faces, _ = load(data, preprocess=RAW)
    split = carve_validation(faces, fraction, split_seed)
    split.save(out_path)
    out.print(f"wrote {len(split.ids)} validation faces to {out_path}")
