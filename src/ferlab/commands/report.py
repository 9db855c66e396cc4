"""`ferlab report`: the study in one command (the pipeline is ferlab.report.build)."""

import sys
from pathlib import Path

import typer

from ferlab.commands.common import err, note_renamed, with_field_options
from ferlab.errors import FerlabError
from ferlab.report.plan import ReportConfig
from ferlab.settings import cli_settings


def report_cmd(
    data: Path = typer.Option(
        None, "--data", help="FER2013 source \\[default: $FERLAB_DATA, else ../shared/data]."
    ),
    report_dir: Path = typer.Option(..., "--out", help="Report folder (rerun it to resume)."),
    **given,
) -> None:
    """The whole study in one command: train, compare, evaluate, explain; write report.html."""
    from ferlab.data import default_data
    from ferlab.report.build import Interrupted, build_report  # torch and the rest load here

    given = {k: list(v) if isinstance(v, tuple) else v for k, v in given.items() if v is not None}
    note_renamed(given.get("cnn"), given.get("dnn"), given.get("control"))
    cfg = ReportConfig(data=str(data or default_data()), out=str(report_dir), **given)
    if cfg.full_study:
        from ferlab.atomic import new_output_dir
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
