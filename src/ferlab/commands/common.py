"""What every command shares: the consoles, the MODEL_REF help, tables, and the options made
from a config dataclass's fields (so a setting is declared once)."""

import inspect
import typing
from dataclasses import Field

import typer
from rich.console import Console
from rich.table import Table

from ferlab.atomic import PACKAGE_WEIGHTS_DIR
from ferlab.photos.detect import DEFAULT_DETECTOR, list_detectors
from ferlab.settings import flag_of

# Choices in help texts come from the registries, so they cannot go stale.
DETECTORS = " | ".join(list_detectors())
SHIPPED = ", ".join(sorted(p.stem for p in PACKAGE_WEIGHTS_DIR.glob("*.pt")))
MODEL_REF = f"Run folder, checkpoint file, .onnx file, or a shipped model ({SHIPPED})."
TORCH_MODEL_REF = f"Run folder, checkpoint file, or a shipped model ({SHIPPED})."

out = Console(soft_wrap=True)  # a long line stays one line in logs and pipes
err = Console(stderr=True)


RUNTIME_HELP = "onnx | torch \\[default: onnx when onnxruntime is installed, else torch]."


def runtime_option():
    return typer.Option(None, "--runtime", help=RUNTIME_HELP)


def force_option(help: str = "Write into a non-empty --out."):
    return typer.Option(False, "--force", help=help)


def detector_option(default: str | None = DEFAULT_DETECTOR, help: str | None = None):
    return typer.Option(default, "--detector", help=help or f"Face detector: {DETECTORS}.")


def min_face_option():
    return typer.Option(None, "--min-face", help="Find faces down to this width (px; slower).")


def note_renamed(*names: str | None) -> None:
    """Old model names still work; say the new one so that scripts can move on."""
    from ferlab.models.registry import RENAMED

    for name in names:
        if name in RENAMED:
            say(err, f"ferlab: note: model '{name}' is now called '{RENAMED[name]}'")


def say(console: Console, line: str) -> None:
    """`line` as it is: no markup read from it (a file name may hold [brackets])."""
    console.print(line, markup=False, highlight=False, soft_wrap=True)


def table(columns: list[str], rows, title: str | None = None) -> Table:
    """A table of `rows` (sequences of strings); a column named "NAME>" is NAME aligned
    right."""
    shown = Table(title=title)
    for c in columns:
        shown.add_column(c.rstrip(">"), justify="right" if c.endswith(">") else "left")
    for row in rows:
        shown.add_row(*row)
    return shown


def counted(n: int, noun: str) -> str:
    """'1 face', '2 faces'."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def with_field_options(command, settings: list[Field]):
    """`command` with one option per field in `settings` (made with `ferlab.settings.setting`:
    its metadata holds help, flag and choices) after its own parameters. Each option defaults
    to None, meaning "not given"; the help shows the field's default."""
    params = [p for p in inspect.signature(command).parameters.values() if p.kind != p.VAR_KEYWORD]
    for f in settings:
        kind = f.type if isinstance(f.type, type) else typing.get_args(f.type)[0]  # X | None
        flag = flag_of(f)
        decls = [f"{flag}/--no-{flag[2:]}"] if kind is bool else [flag]
        choices = f.metadata["choices"]
        help_text = f.metadata["help"] + (f" \\[{' | '.join(choices)}]" if choices else "")
        if typing.get_origin(f.type) is list:  # repeatable; not given: an empty list
            annotation = f.type
        else:
            shown = f.default if f.default is not None else "none"
            help_text += f" \\[default: {shown}]"  # escaped: rich reads [..] as markup
            annotation = kind | None
        option = typer.Option(None, *decls, help=help_text, show_default=False)
        params.append(
            inspect.Parameter(
                f.name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation
            )  # fmt: skip
        )
    command.__signature__ = inspect.Signature(params)
    return command
