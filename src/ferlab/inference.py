"""Inference: faces in, emotion probabilities out, the same way for every caller.

`load_model(ref)` gives a Predictor for a run folder, a checkpoint file, an `.onnx` file or a
shipped model (`default`, ...). A Predictor applies what its model card says the model was
trained on: preprocessing (histogram equalization), the faces as the model's batch
(`face_batch`), on request test-time augmentation, and a softmax; a backend computes the
logits (`ferlab.runtime`: PyTorch or ONNX Runtime) and knows nothing else. The model's own
centre crop is inside the network, so ONNX exports carry it too. Evaluation, photos, the web
demo, explanation and export all go through it.
"""

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from ferlab.atomic import PACKAGE_MODELS
from ferlab.data.faceset import FaceSet
from ferlab.data.preprocess import RAW, Preprocess
from ferlab.errors import FerlabError
from ferlab.models.card import ModelCard, read_checkpoint
from ferlab.models.spec import InputSpec, face_batch
from ferlab.runs import RunFolder

if TYPE_CHECKING:  # torch is imported where the torch network runs: ONNX Runtime needs none
    import torch
    from torch import nn

WEIGHTS_DIR = Path(__file__).parent / "weights"
PACKAGE_WEIGHTS = WEIGHTS_DIR / "default.pt"
# Models shipped in the package, by the name a MODEL_REF uses: the most accurate one (first:
# the web demo's default, as it is also the best on photos, results/photos/), a small one
# distilled from it for speed (results/fast/), and one trained on FER+'s votes
# (results/ferplus/).


def shipped_models() -> list[str]:
    """The package models this installation carries."""
    return [name for name in PACKAGE_MODELS if (WEIGHTS_DIR / f"{name}.pt").is_file()]


TTA_MODE = "flip+crops"
TTA_CROP = 44  # whole-face models: crops of 44x44 at the corners, resized back to 48x48


class Backend(Protocol):
    name: str

    def logits(self, batch: np.ndarray) -> np.ndarray: ...


@dataclass
class Predictor:
    model: "nn.Module | None"  # the torch network (explanation hooks into it); None: an .onnx file
    card: ModelCard
    backend: Backend | None = None  # what computes logits (None: the torch network does)
    path: Path | None = None  # the file it was loaded from
    device: str = "cpu"
    # The parts of a model that averages networks (an ensemble), for TTA, as (weight, backend,
    # input crop): each takes its own views under its own crop. None: the whole model's views
    # (one network; a bare ensemble .onnx graph, one backend).
    members: list[tuple[float, Backend, int]] | None = None

    def __post_init__(self):
        if self.backend is None:
            from ferlab.runtime import TorchBackend

            self.backend = TorchBackend(self.model, self.device)
        if self.members is None and self.model is not None:
            self.members = part_backends(self.model, "torch", self.device)

    @property
    def runtime(self) -> str:
        return self.backend.name

    @property
    def classes(self) -> list[str]:
        return list(self.card.classes)

    @property
    def spec(self) -> InputSpec:
        """What the model sees (its card's preprocessing, size and crop)."""
        return self.card.input_spec

    @property
    def preprocess(self) -> Preprocess:
        return self.card.preprocess

    def seen(self, faces: FaceSet) -> FaceSet:
        """Faces as read, or already as this model sees them -> as it sees them, by the
        preprocessing they record (FaceSet.preprocess); any other preprocessing is refused."""
        wanted = self.preprocess.to_dict()
        if faces.preprocess == wanted:
            return faces
        if faces.preprocess not in ({}, RAW.to_dict()):
            raise FerlabError(
                f"faces preprocessed as {faces.preprocess}; the model takes them read raw or "
                f"preprocessed as {wanted}"
            )
        return replace(faces, images=self.preprocess.apply(faces.images), preprocess=wanted)

    def seen_images(self, faces: "FaceSet | np.ndarray") -> np.ndarray:
        """(N, 48, 48) uint8 faces as this model sees them (its preprocessing applied): a bare
        array is taken as read, a FaceSet by the preprocessing it records."""
        if isinstance(faces, FaceSet):
            return self.seen(faces).images
        return self.preprocess.apply(np.asarray(faces))

    def input_batch(self, faces: "FaceSet | np.ndarray") -> "torch.Tensor":
        """Faces (as `seen_images` takes them) -> the torch network's input batch."""
        import torch

        x = torch.from_numpy(face_batch(self.seen_images(faces))).to(self.device)
        return x.contiguous(memory_format=torch.channels_last)

    def probabilities(self, faces: "FaceSet | np.ndarray", tta: bool = False) -> np.ndarray:
        """Faces (as `seen_images` takes them) -> (N, classes) probabilities."""
        seen = self.seen_images(faces)
        if not len(seen):
            return np.zeros((0, len(self.classes)), np.float32)
        if tta and self.members:
            return sum(
                w * probabilities(backend, seen, TTA_MODE, crop, 256)
                for w, backend, crop in self.members
            )
        if tta:
            return probabilities(self.backend, seen, TTA_MODE, self.spec.crop, 256)
        return probabilities(self.backend, seen)


def shipped_rows() -> list[tuple[str, ...]]:
    """(name, network, recipe, labels scored on, PublicTest and validation accuracy) of each
    shipped model, from its card (in the core install, its graph's)."""
    rows = []
    for name in shipped_models():
        card = load_model(name).card
        m = card.metrics or {}
        figures = [f"{m[k]['accuracy']:.1%}" if k in m else "" for k in ("PublicTest", "val")]
        labels = "FER+" if "contempt" in card.classes else "FER2013"
        rows.append((name, card.model, card.recipe or "", labels, *figures))
    return rows


def resolve_checkpoint(ref: str | Path) -> Path:
    """The checkpoint file a MODEL_REF names: a run folder's best, a file, or `default`."""
    if str(ref) in PACKAGE_MODELS:
        path = WEIGHTS_DIR / f"{ref}.pt"
        if not path.is_file():
            raise FerlabError(f"no {ref} model is shipped with this installation yet")
        return path
    path = Path(ref)
    if path.is_dir():
        return RunFolder(path).checkpoint()
    if not path.is_file():
        raise FerlabError(f"{path}: no such run folder or checkpoint file")
    return path


def load_model(
    ref: str | Path, device: str = "cpu", weights: str = "final", runtime: str | None = None
) -> Predictor:
    """The Predictor a MODEL_REF names; weights="raw": a run's raw weights beside its EMA;
    runtime: torch | onnx (None: FERLAB_RUNTIME, else ONNX Runtime where installed, as the
    commands do). An `.onnx` file runs only with ONNX Runtime and has no torch network; nor
    does a shipped model in ONNX Runtime, which runs the graph shipped with its weights
    (`ferlab ship` writes both); ask for runtime="torch" where the network is needed."""
    from ferlab.runtime import check_runtime, onnx_file

    runtime = check_runtime(runtime)
    path = resolve_checkpoint(ref)
    if runtime == "onnx" and str(ref) in PACKAGE_MODELS:
        from ferlab.runtime import shipped_graph

        shipped = shipped_graph(path)
        if shipped is not None:  # the graph made at shipping: no torch network is built
            backend, card = shipped
            return Predictor(None, ModelCard.from_dict(card, str(path)), backend, path)
    if path.suffix.lower() == ".onnx":
        if runtime != "onnx":
            raise FerlabError(
                f"{path}: an ONNX file runs only with ONNX Runtime (predict, evaluate and serve "
                "take --runtime onnx); export, layers and explain need the torch network: give "
                "the run folder or checkpoint it was exported from"
            )
        backend, card = onnx_file(path)
        return Predictor(None, card, backend, path)
    model, card = read_checkpoint(path, device, weights)
    backend = backend_of(model, runtime, device)
    return Predictor(model, card, backend, path, device, part_backends(model, runtime, device))


def backend_of(net: "nn.Module", runtime: str, device: str = "cpu") -> Backend:
    """What computes `net`'s logits in `runtime`: its ONNX graph exported once and cached, or
    (without the export extra to make that graph) the network itself, which gives the same
    probabilities to 1e-5."""
    from ferlab.runtime import TorchBackend, onnx_backend, onnx_installed

    if runtime == "onnx" and onnx_installed():
        return onnx_backend(net)
    return TorchBackend(net, device)


def part_backends(model: "nn.Module", runtime: str, device: str = "cpu") -> list | None:
    """(weight, backend, input crop) of each network `model` averages, in `runtime`; None for
    a model that is one network."""
    parts = model.weighted_parts() if hasattr(model, "weighted_parts") else None
    if not parts:
        return None
    return [(w, backend_of(net, runtime, device), net.input_crop) for w, net in parts]


def validation_split_of(predictor: Predictor):
    """The split the model was selected on: shipped weights carry it, a run's checkpoint finds
    it in the run's split.json."""
    from ferlab.data import ValidationSplit

    if predictor.card.split is not None:
        return ValidationSplit(**predictor.card.split)
    run = RunFolder.of_checkpoint(predictor.path) if predictor.path else None
    if run is None or not run.split.is_file():
        raise FerlabError(f"{predictor.path}: no saved validation split beside this checkpoint")
    return run.read_split()


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def probabilities(
    backend: Backend, faces: np.ndarray, tta: str = "none", native: int = 0, batch_size: int = 512
) -> np.ndarray:
    """(N, 48, 48) prepared uint8 faces -> (N, classes): the softmax of the backend's logits,
    averaged over the TTA views (tta: none | flip | flip+crops; `native`: the centre crop the
    model reads, from its card)."""
    out = []
    for i in range(0, len(faces), batch_size):
        views = tta_views(face_batch(faces[i : i + batch_size]), tta, native)
        out.append(np.mean([softmax(backend.logits(v)) for v in views], axis=0))
    return np.concatenate(out)


def tta_views(x: np.ndarray, mode: str, native: int = 0) -> list[np.ndarray]:
    """(B, 1, 48, 48) -> list of (B, 1, 48, 48) views. mode: none | flip | flip+crops.
    flip+crops: the plain view and the four corner crops, resized back to 48x48 for a
    whole-face model. A model trained on crops of side `native` looks at the centre crop of
    what it is given, so its views are the face shifted to bring each corner crop to the
    centre: it sees the centre and the corner crops at their native size, and every view keeps
    the input's shape (an exported graph takes them as they are)."""
    views = [x]
    if mode == "flip+crops":
        crop = native or TTA_CROP
        size, m = x.shape[-1], x.shape[-1] - crop
        for top, left in ((0, 0), (0, m), (m, 0), (m, m)):
            if native:  # rows/columns that wrap around land outside the centre crop
                view = np.roll(x, (m // 2 - top, m // 2 - left), axis=(-2, -1))
            else:  # only whole-face models (no ONNX speed at stake) resize, with torch's filter
                import torch
                import torch.nn.functional as F

                corner = torch.from_numpy(
                    np.ascontiguousarray(x[..., top : top + crop, left : left + crop])
                )
                view = F.interpolate(
                    corner, size=(size, size), mode="bilinear", align_corners=False
                ).numpy()
            views.append(view)
    if mode in ("flip", "flip+crops"):
        views = views + [np.ascontiguousarray(v[..., ::-1]) for v in views]
    return views
