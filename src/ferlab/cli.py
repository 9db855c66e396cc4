"""The `ferlab` command: a thin shell over library functions; heavy imports happen per command."""

import json
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from ferlab.errors import FerlabError

app = typer.Typer(
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    help="Facial expression recognition on FER2013.",
)
data_app = typer.Typer(no_args_is_help=True, help="Read, inspect and convert FER2013 data.")
app.add_typer(data_app, name="data")
out = Console()
err = Console(stderr=True)


@data_app.command("info")
def data_info(
    data: Path = typer.Argument(..., help="Folder, .zip, fer2013.csv or train.csv/test.csv."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Decode again; do not use the cache."),
) -> None:
    """Counts per split and emotion."""
    from ferlab.data import EMOTIONS, RAW, load

    faces, fp = load(data, preprocess=RAW, use_cache=not no_cache)
    summary = faces.summary() | {"fingerprint": fp}
    if as_json:
        print(json.dumps(summary, indent=1))
        return
    table = Table(title=f"{data}  ({len(faces)} faces, {faces.resized} resized to 48x48)")
    table.add_column("split")
    table.add_column("total", justify="right")
    for name in EMOTIONS:
        table.add_column(name, justify="right")
    for split, entry in summary["splits"].items():
        table.add_row(split, str(entry["total"]), *(str(entry["per_class"][e]) for e in EMOTIONS))
    out.print(table)
    out.print(f"fingerprint {fp}")


@data_app.command("convert")
def data_convert(
    data: Path = typer.Argument(..., help="Any readable FER2013 source."),
    out_path: Path = typer.Argument(..., metavar="OUT", help="New output folder."),
    fmt: str = typer.Option(..., "--format", help="folders | fer2013-csv | ntu-csv"),
) -> None:
    """Write the data in another format (raw pixels, no preprocessing)."""
    from ferlab.data import RAW, convert, load

    faces, _ = load(data, preprocess=RAW)
    convert(faces, fmt, out_path)
    out.print(f"wrote {len(faces)} faces as {fmt} to {out_path}")


@data_app.command("split")
def data_split(
    data: Path = typer.Argument(..., help="A source with a Training split."),
    out_path: Path = typer.Option(..., "--out", help="Split file to write (JSON)."),
    fraction: float = typer.Option(0.1, "--val-fraction"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Carve a stratified, seeded validation split from Training and save its ids."""
    from ferlab.data import RAW, carve_validation, load

    if out_path.exists():
        raise FerlabError(f"{out_path}: already exists; choose a new path")
    faces, fp = load(data, preprocess=RAW)
    split = carve_validation(faces, fraction, seed, fp)
    split.save(out_path)
    out.print(f"wrote {len(split.ids)} validation ids to {out_path}")


def main() -> None:
    try:
        app()
    except FerlabError as e:
        err.print(f"ferlab: error: {e}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("ferlab: interrupted")
        sys.exit(130)
