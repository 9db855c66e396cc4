"""`ferlab serve`: the web demo (ferlab.serve), loaded only when the command runs."""

import typer

from ferlab.commands.common import detector_option, min_face_option, out, runtime_option


def serve_cmd(
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(7860, "--port"),
    model: list[str] = typer.Option(
        None, "--model", help="Runs or checkpoints to offer besides the shipped ones (repeatable)."
    ),
    detector: str = detector_option(),
    min_face: int = min_face_option(),
    runtime: str = runtime_option(),
) -> None:
    """Web demo: upload, drop or take a photo; faces boxed with emotion bars and saliency."""
    from ferlab.runtime import check_runtime
    from ferlab.serve import serve, served_models

    refs, runtime = served_models(model or []), check_runtime(runtime)
    out.print(f"serving on http://{host}:{port} (Ctrl-C stops; probabilities by {runtime})")
    serve(host, port, refs, detector, runtime=runtime, min_face=min_face)
