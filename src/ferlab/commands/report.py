"""`ferlab report`: the study in one command (the pipeline is ferlab.report.build)."""

import os
import sys
from pathlib import Path

import typer

from ferlab.commands.common import err, note_renamed, with_field_options
from ferlab.errors import FerlabError
from ferlab.report.plan import ReportConfig
from ferlab.settings import cli_settings

GET_FER2013 = (
    "no FER2013 data: pass --data or set FERLAB_DATA to fer2013.csv (Kaggle: 'Challenges in "
    "Representation Learning: Facial Expression Recognition Challenge') or a folder/zip of "
    "train/ and test/ images (Kaggle dataset msambare/fer2013)"
)


def default_data() -> Path:
    """FERLAB_DATA, else the shared copy beside the project (run from the project root)."""
    if os.environ.get("FERLAB_DATA"):
        return Path(os.environ["FERLAB_DATA"])
    shared = Path("../shared/data/fer2013.zip")
    if shared.is_file():
        return shared
    raise FerlabError(GET_FER2013)


def report_cmd(
    data: Path = typer.Option(
        None, "--data", help="FER2013 source \\[default: $FERLAB_DATA, else ../shared/data]."
    ),
    report_dir: Path = typer.Option(..., "--out", help="Report folder (rerun it to resume)."),
    **given,
) -> None:
    """The whole study in one command: train, compare, evaluate, explain; write report.html."""
    from ferlab.report.build import Interrupted, build_report  # torch and the rest load here

    given = {k: list(v) if isinstance(v, tuple) else v for k, v in given.items() if v is not None}
    note_renamed(given.get("cnn"), given.get("dnn"), given.get("control"))
    cfg = ReportConfig(data=str(data or default_data()), out=str(report_dir), **given)
    if cfg.full_study:
        from ferlab.commands.common import new_output_dir
        from ferlab.report.full_study import build_full_study

        if set(given) - {"full_study", "quiet"}:
            raise FerlabError("--full-study draws from records alone: give only --data and --out")
        new_output_dir(report_dir, False)
        err.print(f"wrote {build_full_study(Path(cfg.full_study), cfg.data, report_dir)}")
        return
    try:
        build_report(cfg, console=err)
    except Interrupted as e:
        err.print(f"interrupted; {e} is resumable: run the same command again to continue")
        sys.exit(130)


report_cmd = with_field_options(report_cmd, cli_settings(ReportConfig))
