"""What every command shares: the consoles, the MODEL_REF help, output-folder checks, and the
options made from a config dataclass's fields (so a setting is declared once)."""

import inspect
import typing
from contextlib import contextmanager
from dataclasses import Field
from pathlib import Path

import typer
from rich.console import Console

from ferlab.atomic import PACKAGE_WEIGHTS_DIR, staged_folder
from ferlab.errors import FerlabError
from ferlab.photos.detect import DEFAULT_DETECTOR, list_detectors
from ferlab.settings import flag_of

# Choices in help texts come from the registries, so they cannot go stale.
DETECTORS = " | ".join(list_detectors())
SHIPPED = ", ".join(sorted(p.stem for p in PACKAGE_WEIGHTS_DIR.glob("*.pt")))
MODEL_REF = f"Run folder, checkpoint file, .onnx file, or a shipped model ({SHIPPED})."
TORCH_MODEL_REF = f"Run folder, checkpoint file, or a shipped model ({SHIPPED})."

out = Console(soft_wrap=True)  # a long line stays one line in logs and pipes
err = Console(stderr=True)


def runtime_option():
    return typer.Option(
        None,
        "--runtime",
        help="onnx | torch \\[default: onnx when the export extra is installed, else torch].",
    )


def detector_option(default: str | None = DEFAULT_DETECTOR, help: str | None = None):
    return typer.Option(default, "--detector", help=help or f"Face detector: {DETECTORS}.")


@contextmanager
def output_folder(path: Path | None, force: bool):
    """The folder a command writes its set of files into (None: no --out): checked as
    `new_output_dir`, written as `staged_folder` (all of it, or nothing)."""
    if path is None:
        yield None
        return
    new_output_dir(path, force)
    with staged_folder(path) as staging:
        yield staging


def new_output_dir(path: Path, force: bool) -> None:
    if path.exists() and not path.is_dir():
        raise FerlabError(f"{path}: exists and is not a folder; choose a new folder")
    if path.exists() and any(path.iterdir()) and not force:
        raise FerlabError(f"{path}: exists and is not empty; choose a new folder or use --force")


def overlaps(output: Path, target: Path) -> bool:
    """Whether writing `output` (with --force) would replace `target` or anything in it."""
    out_, src = output.resolve(), target.resolve()
    return out_ == src or src in out_.parents or out_ in src.parents


def note_renamed(*names: str | None) -> None:
    """Old model names still work; say the new one so that scripts can move on."""
    from ferlab.models.registry import RENAMED

    for name in names:
        if name in RENAMED:
            err.print(
                f"ferlab: note: model '{name}' is now called '{RENAMED[name]}'",
                markup=False,
                highlight=False,
            )


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
