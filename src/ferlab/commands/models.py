"""`ferlab models`, `ferlab summary` and `ferlab layers`: the registered networks, the shipped
models, and a network's layers."""

import typer
from rich.table import Table

from ferlab.commands.common import TORCH_MODEL_REF, note_renamed, out


def models_list(pattern: str = typer.Argument("*", help="Wildcard, e.g. 'vgg*'.")) -> None:
    """List the registered models."""
    from ferlab.models import create, describe, keras_param_counts, list_models

    table = Table()
    for col in ("name", "params", "description"):
        table.add_column(col)
    standalone = list_models(pattern, standalone=True)
    for name in list_models(pattern):
        params = f"{keras_param_counts(create(name)).total:,}" if name in standalone else "members'"
        table.add_row(name, params, describe(name))
    out.print(table)
    from ferlab.inference import load_model, shipped_models

    shipped = Table(title="Trained models in the package (MODEL_REF)")
    for col in ("name", "network", "recipe", "PublicTest", "validation"):
        shipped.add_column(col)
    for name in shipped_models():
        card = load_model(name, runtime="torch").card
        metrics = card.metrics or {}
        shipped.add_row(
            name,
            card.model,
            card.recipe or "",
            *(
                f"{metrics[k]['accuracy']:.1%}" if k in metrics else ""
                for k in ("PublicTest", "val")
            ),
        )
    out.print(shipped)


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
    table = Table(title=net.model_name)
    for col, justify in (
        ("layer", "left"),
        ("type", "left"),
        ("output shape", "left"),
        ("params", "right"),
    ):
        table.add_column(col, justify=justify)
    for row in summary_rows(net):
        table.add_row(row.name, row.kind, str(row.output_shape), f"{row.params:,}")
    out.print(table)
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

    table = Table()
    table.add_column("layer")
    table.add_column("output shape")
    for name, shape in layer_names(load_model(model_ref, runtime="torch").model):
        table.add_row(name, str(shape))
    out.print(table)
