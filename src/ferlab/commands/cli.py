"""The `ferlab` command: a thin shell over library functions. Each command's body lives in
`ferlab.commands.<name>`; this module names the commands and turns errors into one line."""

import signal
import sys
import warnings

import typer

from ferlab.atomic import request_stop
from ferlab.commands import data, evaluate, explain, export, models, predict, report, serve, train
from ferlab.commands.common import err, say
from ferlab.errors import BOUNDARY_ERRORS, FerlabError, boundary_message, missing_extra

app = typer.Typer(
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    help="Facial expression recognition on FER2013.",
)
data_app = typer.Typer(no_args_is_help=True, help="Read, inspect and convert FER2013 data.")
explain_app = typer.Typer(no_args_is_help=True, help="Look inside a trained model.")
app.add_typer(data_app, name="data")
app.add_typer(explain_app, name="explain")


def _version(asked: bool) -> None:
    if asked:
        import ferlab

        print(f"ferlab {ferlab.__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print ferlab's version."
    ),
) -> None:
    """Facial expression recognition on FER2013."""


COMMANDS = {
    (data_app, "info"): data.data_info,
    (data_app, "convert"): data.data_convert,
    (data_app, "split"): data.data_split,
    (app, "models"): models.models_list,
    (app, "summary"): models.summary,
    (app, "train"): train.train_cmd,
    (app, "evaluate"): evaluate.evaluate_cmd,
    (app, "predict"): predict.predict_cmd,
    (app, "compare"): evaluate.compare_cmd,
    (app, "layers"): models.layers_cmd,
    (explain_app, "saliency"): explain.explain_saliency,
    (explain_app, "check"): explain.explain_check,
    (explain_app, "activations"): explain.explain_activations,
    (explain_app, "filters"): explain.explain_filters,
    (app, "export"): export.export_cmd,
    (app, "ship"): export.ship_cmd,
    (app, "ensemble"): export.ensemble_cmd,
    (app, "serve"): serve.serve_cmd,
    (app, "report"): report.report_cmd,
}
for (group, name), command in COMMANDS.items():
    group.command(name)(command)


def _sigterm(signum, frame):
    request_stop()  # remembered too: a library's bare except may swallow what is raised here
    raise KeyboardInterrupt  # unwinds like Ctrl-C: temporary files and folders are removed


def _fail(message: str) -> None:
    message = " ".join(message.split("\n"))  # one line, whatever a library put in its message
    say(err, f"ferlab: error: {message}")
    sys.exit(2)


def main(args: list[str] | None = None) -> None:
    """The `ferlab` command (args: instead of sys.argv[1:])."""
    request_stop(False)
    signal.signal(signal.SIGTERM, _sigterm)
    # A command's output is its results: the libraries' notices about their own future
    # (deprecations inside torch, Lightning, gradio) are for their developers, not our users.
    for category in (DeprecationWarning, FutureWarning):
        warnings.filterwarnings("ignore", category=category)
    try:
        app(args=args)
    except FerlabError as e:
        _fail(str(e))
    except ModuleNotFoundError as e:  # an extra this install lacks
        _fail(missing_extra(e))
    except BOUNDARY_ERRORS as e:
        _fail(boundary_message(e))
    except KeyboardInterrupt:
        err.print("ferlab: interrupted")
        sys.exit(130)
    finally:
        # Past here only the interpreter's exit runs (atexit handlers): a SIGTERM there ends
        # the process as SIGTERM does, instead of a traceback from inside a handler and exit 0.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
