"""Exports of a trained model: the package's `default` weights file and ONNX.

Both carry the checkpoint's metadata (architecture, classes, preprocessing, recipe, data
fingerprint, metrics), so an exported file alone says what it expects and how it was made.
"""

import contextlib
import io
import json
import logging
from pathlib import Path

import torch

from ferlab.checkpoint import LoadedModel
from ferlab.errors import FerlabError
from ferlab.io import write_bytes_atomic

ONNX_INPUT = "faces"  # (batch, 1, 48, 48) float32 in [0, 1], preprocessed as meta says
ONNX_OUTPUT = "logits"


def weights_bytes(loaded: LoadedModel, extra_meta: dict) -> bytes:
    """A minimal ferlab checkpoint: fp32 weights and metadata, no optimizer state."""
    state = {f"model.{k}": v.detach().cpu().clone() for k, v in loaded.model.state_dict().items()}
    buf = io.BytesIO()
    torch.save({"state_dict": state, "ferlab": loaded.meta | extra_meta}, buf)
    return buf.getvalue()


def export_weights(loaded: LoadedModel, out: Path, extra_meta: dict | None = None) -> Path:
    write_bytes_atomic(Path(out), weights_bytes(loaded, extra_meta or {}))
    return Path(out)


def export_onnx(loaded: LoadedModel, out: Path) -> Path:
    """ONNX graph with a dynamic batch axis; the ferlab metadata goes in metadata_props."""
    try:
        import onnx
    except ImportError:
        raise FerlabError(
            "ONNX export needs the export extra: pip install 'ferlab[export]'"
        ) from None
    model = loaded.model.eval().to(memory_format=torch.contiguous_format)
    example = torch.rand(2, 1, 48, 48)
    tmp = Path(out).with_name(Path(out).name + ".export")
    # The exporter narrates every step on stdout and logs notices (e.g. about torchvision) as
    # warnings; keep the CLI's output to its result.
    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), torch.no_grad():
            torch.onnx.export(
                model,
                (example,),
                str(tmp),
                dynamo=True,
                input_names=[ONNX_INPUT],
                output_names=[ONNX_OUTPUT],
                dynamic_shapes={"x": {0: torch.export.Dim("batch")}},
            )
        graph = onnx.load(str(tmp))
    finally:
        quiet.setLevel(level)
        for leftover in (tmp, tmp.with_name(tmp.name + ".data")):
            leftover.unlink(missing_ok=True)
    meta = {k: v for k, v in loaded.meta.items() if k not in ("validation_ids", "validation_split")}
    entry = graph.metadata_props.add()
    entry.key, entry.value = "ferlab", json.dumps(meta)
    write_bytes_atomic(Path(out), graph.SerializeToString())
    return Path(out)


def onnx_meta(path: Path) -> dict:
    import onnx

    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    return json.loads(props.get("ferlab", "{}"))
