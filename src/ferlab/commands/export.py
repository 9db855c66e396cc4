"""`ferlab export` (ONNX, int8 ONNX, a weights file) and `ferlab ship` (a run into the
package, measured and recorded)."""

from pathlib import Path

import typer

from ferlab.atomic import PACKAGE_MODELS
from ferlab.commands.common import TORCH_MODEL_REF, force_option, out
from ferlab.errors import FerlabError


def export_cmd(
    model_ref: str = typer.Argument(..., metavar="MODEL_REF", help=TORCH_MODEL_REF),
    onnx_path: Path = typer.Option(None, "--onnx", help="Write an ONNX model here."),
    weights: Path = typer.Option(None, "--weights", help="Write a weights file here."),
    metrics: Path = typer.Option(None, "--metrics", help="JSON of figures for --weights."),
    int8: bool = typer.Option(False, "--int8", help="Quantize --onnx to int8."),
    data: Path = typer.Option(None, "--data", help="--int8: calibrate on its validation faces."),
    force: bool = force_option("Replace existing output files."),
) -> None:
    """Export a trained model: ONNX (dynamic batch, fp32 or int8) and/or a self-describing
    weights file."""
    from ferlab.shipping import export_files

    if int8 and not data:
        raise FerlabError("--int8 quantizes the --onnx export: give --onnx OUT and --data DATA")
    for line in export_files(model_ref, onnx_path, weights, metrics, data if int8 else None, force):
        out.print(f"wrote {line}")


def ship_cmd(
    run: Path = typer.Argument(None, help="Run folder whose selected checkpoint ships."),
    name: str = typer.Option(None, "--as", help=f"Package model: {' | '.join(PACKAGE_MODELS)}."),
    data: Path = typer.Option(None, "--data", help="FER2013 source of its split and PublicTest."),
    record: Path = typer.Option(None, "--record", help="Where metrics.json goes (results/NAME)."),
    force: bool = force_option("Replace a shipped model that scores higher on the same faces."),
    graphs: bool = typer.Option(False, "--graphs", help="Only remake the shipped ONNX graphs."),
) -> None:
    """Ship a run as a package model: measured on validation and PublicTest (plain and TTA),
    recorded, and written into the package with its ONNX graph: the only way a model gets
    there. --graphs makes the graphs of the shipped weights again."""
    from ferlab.shipping import ship, ship_graphs

    if graphs:
        for path in ship_graphs():
            out.print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
        return
    if run is None or name is None or data is None:
        raise FerlabError("ship RUN --as NAME --data DATA (or --graphs alone)")
    shipped = ship(run, name, data, record or Path("results") / name, force)
    m = shipped.metrics
    out.print(
        f"shipped {run} as {name} ({shipped.weights}): validation {m['val']['accuracy']:.2%} "
        f"({m['val']['accuracy_tta']:.2%} TTA), PublicTest {m['PublicTest']['accuracy']:.2%} "
        f"({m['PublicTest']['accuracy_tta']:.2%} TTA)"
    )


def ensemble_cmd(
    members: list[str] = typer.Argument(..., metavar="MODEL_REF...", help=TORCH_MODEL_REF),
    out_file: Path = typer.Option(..., "--out", help="The ensemble's weights file to write."),
    weights: str = typer.Option(None, "--weights", help="Per member, e.g. 2,1 (default: equal)."),
    choose: bool = typer.Option(False, "--choose-weights", help="Choose them on validation."),
    data: Path = typer.Option(None, "--data", help="--choose-weights: the members' data."),
    tta: bool = typer.Option(False, "--tta", help="--choose-weights: with the members' TTA."),
    force: bool = force_option("Replace an existing --out."),
) -> None:
    """One model averaging its members' probabilities, written as a weights file that every
    command takes (evaluate, predict, explain, export to one ONNX graph, serve)."""
    from ferlab.shipping import write_ensemble

    if choose and not data:
        raise FerlabError("--choose-weights needs --data and no --weights")
    if data and not choose:
        raise FerlabError("--data and --tta are for --choose-weights")
    shares = None
    if weights:
        try:
            shares = [float(w) for w in weights.split(",")]
        except ValueError:
            raise FerlabError(f"--weights {weights}: numbers separated by commas") from None
    choice = write_ensemble(members, out_file, shares, data, tta, force)
    if choice is not None:
        out.print(
            f"weights {','.join(f'{w:g}' for w in choice.weights)} chosen on validation "
            f"({choice.candidates} weightings{', TTA' if tta else ''}): accuracy "
            f"{choice.accuracy:.2%}, equal weights {choice.equal_accuracy:.2%}"
        )
    out.print(f"wrote {out_file} ({len(members)} members, {out_file.stat().st_size / 1e6:.1f} MB)")
