"""`ferlab models`, `ferlab summary` and `ferlab layers`: the registered networks, the shipped
models, and a network's layers."""

import typer

from ferlab.commands.common import TORCH_MODEL_REF, note_renamed, out, table
from ferlab.errors import missing_extra


def models_list(pattern: str = typer.Argument("*", help="Wildcard, e.g. 'vgg*'.")) -> None:
    """List the registered networks (with the train extra) and the shipped models."""
    from ferlab.inference import shipped_rows

    try:
        from ferlab.models.summary import network_rows

        out.print(table(["name", "params", "description"], network_rows(pattern)))
    except ModuleNotFoundError as e:  # the core install runs the shipped graphs, no networks
        out.print(f"(registered networks: {missing_extra(e)})")
    columns = ["name", "network", "recipe", "scored on", "PublicTest", "validation"]
    out.print(table(columns, shipped_rows(), "Trained models in the package (MODEL_REF)"))


def summary(
    model: str = typer.Argument(
        ..., help="Registered model name, or a trained model: a shipped name, a run, a file."
    ),
) -> None:
    """Keras-style layer table with total, trainable and non-trainable parameters."""
    from ferlab.models import create, keras_param_counts, list_models, summary_rows
    from ferlab.models.registry import canonical

    note_renamed(model)
    if canonical(model) in list_models():
        net = create(model)
    else:  # as every other command takes it: default, fast, ferplus, a run, a checkpoint
        from ferlab.inference import load_model

        net = load_model(model, runtime="torch").model
    rows = [(r.name, r.kind, str(r.output_shape), f"{r.params:,}") for r in summary_rows(net)]
    out.print(table(["layer", "type", "output shape", "params>"], rows, net.model_name))
    counts = keras_param_counts(net)
    out.print(f"Total params: {counts.total:,}")
    out.print(f"Trainable params: {counts.trainable:,}")
    out.print(f"Non-trainable params: {counts.non_trainable:,}")


def layers_cmd(
    model_ref: str = typer.Argument(..., metavar="MODEL_REF", help=TORCH_MODEL_REF),
) -> None:
    """Layer names usable by `ferlab explain activations|filters`, with output shapes."""
    from ferlab.explain import layer_names
    from ferlab.inference import load_model

    rows = [(n, str(s)) for n, s in layer_names(load_model(model_ref, runtime="torch").model)]
    out.print(table(["layer", "output shape"], rows))
