"""`ferlab train`: one option per TrainConfig setting, declared once in the config."""

import sys
from pathlib import Path

import typer

from ferlab.commands.common import force_option, note_renamed, out, with_field_options
from ferlab.settings import cli_settings
from ferlab.training.config import TrainConfig


def train_cmd(
    data: Path = typer.Option(
        None, "--data", help="FER2013 source with a Training split \\[default: the config's]."
    ),
    run: Path = typer.Option(..., "--out", help="Run folder to create."),
    config: Path = typer.Option(None, "--config", help="Start from a run's config.yaml."),
    recipe: str = typer.Option(
        None, "--recipe", help="Start from a packaged recipe (e.g. flagship); options override it."
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out."),
    extend_epochs: int = typer.Option(
        0, "--extend-epochs", help="With --resume: continue the schedule over N more epochs."
    ),
    force: bool = force_option("Replace an existing run in --out."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar; one line per epoch."),
    **given,
) -> None:
    """Train a model; the run folder keeps config, split, metrics, curves and checkpoints."""
    from ferlab.runs import RunFolder
    from ferlab.training import train
    from ferlab.training.config import config_of

    given = {k: str(v) if isinstance(v, Path) else v for k, v in given.items() if v is not None}
    note_renamed(given.get("model"))
    cfg, settings = config_of(data, run, config, recipe, resume, quiet, given)
    result = train(cfg, resume=resume, force=force, given=settings, extend_epochs=extend_epochs)
    if result is None:
        return
    m = result.metrics
    val = m.get("val", {}).get("accuracy")
    out.print(
        f"{result.out}: stopped by {result.stopped_by} after {m['epochs_completed']} epochs;"
        f" best val accuracy {val if val is not None else 'n/a'}"
    )
    if result.stopped_by in ("interrupt", "budget"):
        if RunFolder(run).last.is_file():
            out.print(f"resume with: ferlab train --out {run} --resume")
        else:
            out.print("no epoch was finished, so there is nothing to resume: start it again")
    if result.stopped_by == "interrupt":
        sys.exit(130)


train_cmd = with_field_options(train_cmd, cli_settings(TrainConfig))
