"""Inference runtimes: ONNX Runtime (the core install's), or PyTorch.

ONNX Runtime runs the models here 1.6-2.4x faster than eager PyTorch on this CPU
(`benchmarks/results/export_speed.json`), so it is the default where installed. The shipped
models run the graphs shipped beside their weights; a trained network's graph is exported
(the export extra) once and kept in the cache (FERLAB_CACHE, keyed by the weights), because
torch's exporter takes seconds, and without that extra the network runs in PyTorch; an
`.onnx` file (e.g. from `ferlab export --onnx --int8`) runs
as it is. Either way a backend has one method, `logits`: a (B, 1, 48, 48) float32 batch in,
(B, classes) logits out, numpy both; it knows nothing of the network's attributes.
"""

import contextlib
import hashlib
import importlib.util
import io
import json
import logging
import os
import sys
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ferlab.atomic import write_bytes_atomic, write_text_atomic
from ferlab.errors import FerlabError

if TYPE_CHECKING:  # torch is imported by what runs the torch network, not by ONNX Runtime's
    from torch import nn

    from ferlab.models.card import ModelCard

RUNTIMES = ("onnx", "torch")
ONNX_INPUT = "faces"  # (batch, 1, 48, 48) float32 in [0, 1], preprocessed as the card says
ONNX_OUTPUT = "logits"
EXPORT_EXTRA = "pip install -e '.[export]' (from ferlab's clone)"


def installed(*modules: str) -> bool:
    try:
        return all(importlib.util.find_spec(m) for m in modules)
    except (ImportError, ValueError):  # a finder that refuses the name: not usable here
        return False


def onnx_installed() -> bool:
    """Whether torch networks can be exported to ONNX here (the export extra)."""
    return installed("onnx", "onnxscript", "onnxruntime")


def default_runtime() -> str:
    """FERLAB_RUNTIME when set, else ONNX Runtime (the core install has it), else torch."""
    chosen = os.environ.get("FERLAB_RUNTIME")
    if chosen:
        return check_runtime(chosen)
    return "onnx" if installed("onnxruntime") else "torch"


def check_runtime(runtime: str | None) -> str:
    """The runtime to use for a --runtime value (None: the default), or one clear error."""
    if runtime is None:
        return default_runtime()
    if runtime not in RUNTIMES:
        raise FerlabError(f"unknown runtime '{runtime}'; choose one of {', '.join(RUNTIMES)}")
    if runtime == "onnx" and not installed("onnxruntime"):
        raise FerlabError("--runtime onnx needs onnxruntime: pip install -e . (from the clone)")
    return runtime


def onnx_graph(model: "nn.Module"):
    """The model as an ONNX graph (onnx.ModelProto): (batch, 1, 48, 48) faces -> logits, the
    batch axis dynamic and the model's own centre crop inside."""
    import onnx
    import torch

    model = model.eval().to(memory_format=torch.contiguous_format)
    example = torch.rand(2, 1, 48, 48)
    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # the exporter logs notices (e.g. about torchvision)
    try:
        # It also narrates every step on stdout; callers' output stays theirs. It writes
        # external data beside the file, so it gets a folder of its own.
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.onnx"
            # ... and warns of its own deprecations (torch.export's pytree): not the user's
            # to act on.
            with contextlib.redirect_stdout(io.StringIO()), torch.no_grad(), silenced():
                torch.onnx.export(
                    model,
                    (example,),
                    str(path),
                    dynamo=True,
                    input_names=[ONNX_INPUT],
                    output_names=[ONNX_OUTPUT],
                    dynamic_shapes={"x": {0: torch.export.Dim("batch")}},
                )
            return onnx.load(str(path))
    finally:
        quiet.setLevel(level)


@contextlib.contextmanager
def silenced():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def usable_cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


# Threads of each session, OpenCV and torch in this process when several processes share the
# cores (`use_threads`); None: as many as the cores.
_THREADS: list[int | None] = [None]


def use_threads(n: int) -> None:
    """Compute with `n` threads in this process (a worker of N on the machine's cores): the
    sessions made from now on, OpenCV, and torch when it is loaded."""
    import cv2

    _THREADS[0] = n
    cv2.setNumThreads(n)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)


def session(graph: Path | bytes):
    """An ONNX Runtime CPU session using as many threads as `use_threads` set, else as torch
    does, else one per core this process may use."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    torch = sys.modules.get("torch")
    threads = _THREADS[0] or (torch.get_num_threads() if torch else usable_cores())
    options.intra_op_num_threads = threads
    options.log_severity_level = 3  # errors only
    # Its idle threads would otherwise spin between runs, taking the cores from the work
    # around each run (preprocessing, softmax): `fast` ran 1,688 faces/s so, 2,334 not
    # (results/speed/onnx_spinning.md).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    source = str(graph) if isinstance(graph, Path) else graph
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


class TorchBackend:
    """Logits by the torch network: (B, 1, 48, 48) float32 faces in [0, 1] -> (B, classes)."""

    name = "torch"

    def __init__(self, model: "nn.Module", device: str = "cpu"):
        self.model, self.device = model, device

    def logits(self, batch: np.ndarray) -> np.ndarray:
        import torch

        model = self.model.eval().to(memory_format=torch.channels_last)  # faster convs
        x = torch.from_numpy(batch).to(self.device).contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            return model(x).float().cpu().numpy()


class OnnxBackend:
    """Logits by an ONNX Runtime session, numpy in and out. No torch op runs around the
    session: torch's threads, woken by them, took the cores from the session's (`fast`: 2,082
    faces/s that way, 2,822 so; the bare session 2,812: results/speed/predictor_overhead.md)."""

    name = "onnx"

    def __init__(self, graph: Path | bytes):
        self.session = session(graph)

    def logits(self, batch: np.ndarray) -> np.ndarray:
        faces = np.ascontiguousarray(batch, dtype=np.float32)
        return self.session.run([ONNX_OUTPUT], {ONNX_INPUT: faces})[0]


def shipped_graph(weights: Path) -> tuple[OnnxBackend, dict] | None:
    """(a session of the ONNX graph shipped beside the weights file `weights`, its model
    card as a dict) when that graph was made from exactly these weights (the sha256 it
    records); None otherwise (no graph, or one of other weights)."""
    graph = Path(weights).with_suffix(".onnx")
    if not graph.is_file():
        return None
    backend = OnnxBackend(graph)
    meta = backend.session.get_modelmeta().custom_metadata_map
    digest = hashlib.sha256(Path(weights).read_bytes()).hexdigest()
    if meta.get("ferlab.weights_sha256") != digest or "ferlab" not in meta:
        return None
    return backend, json.loads(meta["ferlab"])


def weights_key(model: "nn.Module") -> str:
    """A hash of what the graph depends on: the network, its weights, torch's exporter."""
    import torch

    h = hashlib.sha256(f"{type(model).__name__}\n{torch.__version__}\n".encode())
    h.update(repr(sorted(getattr(model, "model_args", {}).items())).encode())
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:32]


def onnx_backend(model: "nn.Module") -> OnnxBackend:
    """The torch model run by ONNX Runtime, its graph exported once and cached. A cached graph
    is used only when its bytes have the hash recorded beside it and it answers a probe batch
    as the torch model does: a damaged or substituted file is exported again."""
    from ferlab.data.cache import cache_dir

    folder = cache_dir() / "onnx"
    key = weights_key(model)
    path, digest = folder / f"{key}.onnx", folder / f"{key}.sha256"
    cached = _verified_graph(path, digest)
    if cached is not None:
        with contextlib.suppress(Exception):  # onnxruntime raises its own types on bad graphs
            backend = OnnxBackend(cached)
            if _agrees(backend, model):
                return backend
    graph = onnx_graph(model).SerializeToString()
    try:
        write_bytes_atomic(path, graph)
        write_text_atomic(digest, hashlib.sha256(graph).hexdigest() + "\n")
    except OSError:  # a read-only cache: run from memory, export again next time
        pass
    return OnnxBackend(graph)


def _verified_graph(path: Path, digest: Path) -> bytes | None:
    """The cached graph's bytes, when they hash to the recorded digest (read once: what is
    checked is what runs)."""
    try:
        graph, recorded = path.read_bytes(), digest.read_text().strip()
    except (OSError, UnicodeError):
        return None
    return graph if hashlib.sha256(graph).hexdigest() == recorded else None


def _agrees(backend: OnnxBackend, model: "nn.Module") -> bool:
    import torch

    probe = np.random.default_rng(0).random((2, 1, 48, 48), dtype=np.float32)
    with torch.no_grad():
        expected = model.eval()(torch.from_numpy(probe)).float().numpy()
    got = backend.logits(probe)
    return got.shape == expected.shape and bool(np.allclose(got, expected, atol=1e-3, rtol=1e-3))


def onnx_file(path: Path) -> tuple[OnnxBackend, "ModelCard"]:
    """(an ONNX Runtime session of an exported ONNX file, the model card it carries in its
    metadata). ONNX Runtime alone reads both: the core install runs a user's exported model."""
    from ferlab.models.card import ModelCard

    size = Path(path).stat().st_size
    if size > MAX_ONNX_BYTES:  # a graph is read whole before it is parsed
        raise FerlabError(
            f"{path}: {size / 1e6:.0f} MB, larger than any ferlab model "
            f"(at most {MAX_ONNX_BYTES / 1e6:.0f} MB are read)"
        )
    try:
        backend = OnnxBackend(Path(path))
    except Exception as e:  # onnxruntime raises its own types (InvalidProtobuf, Fail, ...)
        raise FerlabError(f"{path}: not a readable ONNX model ({type(e).__name__})") from None
    props = backend.session.get_modelmeta().custom_metadata_map
    if "ferlab" not in props:
        raise FerlabError(f"{path}: an ONNX model without a ferlab model card")
    try:
        meta = json.loads(props["ferlab"])
    except (ValueError, RecursionError) as e:
        raise FerlabError(
            f"{path}: its ferlab model card is not JSON ({type(e).__name__})"
        ) from None
    return backend, ModelCard.from_dict(meta, str(path))


def onnx_card(path: Path) -> "ModelCard":
    """The model card an exported ONNX file carries in its metadata."""
    return onnx_file(path)[1]


# The study's VGG, the largest registered network, exports to about 180 MB of fp32 weights.
MAX_ONNX_BYTES = 400_000_000
