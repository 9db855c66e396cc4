"""`ferlab export` (ONNX, int8 ONNX, a weights file) and `ferlab ship` (a run into the
package, measured and recorded)."""

import json
from dataclasses import asdict, replace
from pathlib import Path

import typer

from ferlab.atomic import PACKAGE_MODELS, refuse_special_file
from ferlab.commands.common import TORCH_MODEL_REF, out
from ferlab.errors import FerlabError


def export_cmd(
    model_ref: str = typer.Argument(..., metavar="MODEL_REF", help=TORCH_MODEL_REF),
    onnx_path: Path = typer.Option(None, "--onnx", help="Write an ONNX model here."),
    weights: Path = typer.Option(
        None, "--weights", help="Write a small weights file (what `default` ships) here."
    ),
    metrics: Path = typer.Option(
        None, "--metrics", help="JSON of measured metrics to store with --weights."
    ),
    int8: bool = typer.Option(
        False, "--int8", help="Quantize --onnx to int8, calibrated on the validation faces."
    ),
    data: Path = typer.Option(
        None, "--data", help="--int8: the FER2013 source its validation split is read from."
    ),
    force: bool = typer.Option(False, "--force", help="Replace existing output files."),
) -> None:
    """Export a trained model: ONNX (dynamic batch, fp32 or int8) and/or a self-describing
    weights file."""
    from ferlab.export import export_onnx, export_onnx_int8, export_weights, shipping_card
    from ferlab.inference import load_model

    if not onnx_path and not weights:
        raise FerlabError("nothing to export: give --onnx OUT and/or --weights OUT")
    if int8 and not (onnx_path and data):
        raise FerlabError("--int8 quantizes the --onnx export: give --onnx OUT and --data DATA")
    for target in (onnx_path, weights):
        if target:
            refuse_special_file(target)
        if target and target.exists() and not force:
            raise FerlabError(f"{target}: exists; use --force to replace it")
    predictor = load_model(model_ref, runtime="torch")
    if weights:
        measured = None
        if metrics:
            try:
                measured = json.loads(metrics.read_text())
            except (OSError, json.JSONDecodeError) as e:
                raise FerlabError(f"{metrics}: not a readable JSON file ({e})") from None
        export_weights(predictor.model, shipping_card(predictor, measured), weights)
        out.print(f"wrote {weights} ({weights.stat().st_size / 1e6:.1f} MB)")
    if onnx_path and int8:
        from ferlab.evaluation import select_split

        val = select_split(predictor, data, "val")
        export_onnx_int8(predictor, onnx_path, val, val.labels)
        out.print(
            f"wrote {onnx_path} ({onnx_path.stat().st_size / 1e6:.1f} MB, int8, calibrated on "
            f"{len(val.images)} validation faces)"
        )
    elif onnx_path:
        export_onnx(predictor, onnx_path)
        out.print(f"wrote {onnx_path} ({onnx_path.stat().st_size / 1e6:.1f} MB)")


def ship_cmd(
    run: Path = typer.Argument(..., help="Run folder whose selected checkpoint ships."),
    name: str = typer.Option(..., "--as", help=f"Package model: {' | '.join(PACKAGE_MODELS)}."),
    data: Path = typer.Option(..., "--data", help="FER2013 source of its split and PublicTest."),
    record: Path = typer.Option(
        None, "--record", help="Folder for metrics.json (default: results/NAME)."
    ),
    force: bool = typer.Option(
        False, "--force", help="Replace a shipped model that scores higher on the same faces."
    ),
) -> None:
    """Ship a run as a package model: measured on validation and PublicTest (plain and TTA),
    recorded, and written into the package: the only way a model gets there."""
    from ferlab.shipping import ship

    if record is not None and record.resolve() == run.resolve():
        raise FerlabError(
            f"{record}: is the run itself (its metrics.json is its training record); choose "
            "another --record"
        )
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
    weights: str = typer.Option(
        None, "--weights", help="One weight per member, e.g. 2,1 (default: equal)."
    ),
    choose: bool = typer.Option(
        False, "--choose-weights", help="Choose the weights on the members' validation split."
    ),
    data: Path = typer.Option(
        None, "--data", help="--choose-weights: the FER2013 source of that validation split."
    ),
    tta: bool = typer.Option(False, "--tta", help="--choose-weights: with the members' TTA."),
    force: bool = typer.Option(False, "--force", help="Replace an existing --out."),
) -> None:
    """One model averaging its members' probabilities, written as a weights file that every
    command takes (evaluate, predict, explain, export to one ONNX graph, serve)."""
    from ferlab.export import ensemble_of, export_weights
    from ferlab.inference import load_model

    if len(members) < 2:
        raise FerlabError("an ensemble needs at least two members")
    refuse_special_file(out_file)
    from ferlab.inference import resolve_checkpoint

    for ref in members:  # --force would replace the member it is about to read
        if out_file.resolve() == resolve_checkpoint(ref).resolve():
            raise FerlabError(f"{out_file}: is the member {ref} itself; choose another --out")
    if out_file.exists() and not force:
        raise FerlabError(f"{out_file}: exists; use --force to replace it")
    if choose and (weights or not data):
        raise FerlabError("--choose-weights needs --data and no --weights")
    if (data or tta) and not choose:
        raise FerlabError("--data and --tta are for --choose-weights")
    shares = None
    if weights:
        try:
            shares = [float(w) for w in weights.split(",")]
        except ValueError:
            raise FerlabError(f"--weights {weights}: numbers separated by commas") from None
        if len(shares) != len(members):
            raise FerlabError(f"--weights: {len(shares)} weights for {len(members)} members")
    loaded = [load_model(ref, runtime="torch") for ref in members]
    net, card = ensemble_of(loaded, shares)  # refuses members of different splits first
    if choose:
        from ferlab.evaluation.weights import validation_choice

        choice = validation_choice(loaded, data, tta)
        out.print(
            f"weights {','.join(f'{w:g}' for w in choice.weights)} chosen on validation "
            f"({choice.candidates} weightings{', TTA' if tta else ''}): accuracy "
            f"{choice.accuracy:.2%}, equal weights {choice.equal_accuracy:.2%}"
        )
        net, card = ensemble_of(loaded, list(choice.weights))
        chosen = asdict(choice) | {"weights": list(choice.weights), "tta": tta}
        card = replace(card, metrics={"weights_chosen": chosen})
    export_weights(net, card, out_file)
    out.print(f"wrote {out_file} ({len(members)} members, {out_file.stat().st_size / 1e6:.1f} MB)")
