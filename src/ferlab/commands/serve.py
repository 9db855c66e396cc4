"""`ferlab serve`: the web demo (ferlab.serve), loaded only when the command runs."""

import typer

from ferlab.commands.common import detector_option, out, runtime_option
from ferlab.errors import FerlabError


def serve_cmd(
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(7860, "--port"),
    model: list[str] = typer.Option(
        None,
        "--model",
        help="Runs or checkpoints to offer besides the shipped models (repeatable).",
    ),
    detector: str = detector_option(),
    runtime: str = runtime_option(),
) -> None:
    """Web demo: upload, drop or take a photo; faces boxed with emotion bars and saliency."""
    from ferlab.inference import shipped_models
    from ferlab.runtime import check_runtime
    from ferlab.serve import serve

    refs = shipped_models() + [ref for ref in model or [] if ref not in shipped_models()]
    runtime = check_runtime(runtime)
    onnx_files = [ref for ref in refs if ref.lower().endswith(".onnx")]
    if onnx_files:  # the page explains each answer by the torch model's gradients
        raise FerlabError(f"{onnx_files[0]}: serve takes runs and checkpoints, not .onnx files")
    out.print(f"serving on http://{host}:{port} (Ctrl-C stops; probabilities by {runtime})")
    serve(host, port, refs, detector, runtime=runtime)
