"""Inference: faces in, emotion probabilities out, the same way for every caller.

`load_model(ref)` gives a Predictor for a run folder, a checkpoint file or `default` (the
weights shipped in the package). A Predictor applies what its model card says the model was
trained on: preprocessing (histogram equalization), pixels to a [0, 1] tensor, the model's own
centre crop (inside the model, so ONNX exports carry it too) and, on request, test-time
augmentation. Evaluation, photos, the web demo, explanation and export all go through it.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ferlab.atomic import PACKAGE_MODELS
from ferlab.data.preprocess import Preprocess
from ferlab.errors import FerlabError
from ferlab.models.card import ModelCard, read_checkpoint
from ferlab.runs import RunFolder
from ferlab.runtime import OnnxRunner

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


@dataclass
class Predictor:
    model: nn.Module  # the torch model (explanation hooks into it); for an .onnx file, its runner
    card: ModelCard
    path: Path | None = None  # the file it was loaded from
    device: str = "cpu"
    runtime: str = "torch"  # what computes probabilities: torch | onnx (ferlab.runtime)
    runner: nn.Module | None = None  # the ONNX Runtime twin of `model` when runtime is onnx

    @property
    def predicting_model(self) -> nn.Module:
        """The module probabilities are computed with, in the chosen runtime."""
        return self.runner if self.runner is not None else self.model

    @property
    def classes(self) -> list[str]:
        return list(self.card.classes)

    @property
    def preprocess(self) -> Preprocess:
        return self.card.preprocess

    def prepared(self, faces: np.ndarray) -> np.ndarray:
        """(N, 48, 48) uint8 faces as read -> as the model was trained on them."""
        return self.preprocess.apply(faces)

    def tensor(self, faces: np.ndarray) -> torch.Tensor:
        """Prepared (N, 48, 48) uint8 faces -> the model's input batch."""
        return face_batch(faces, self.device)

    def probabilities(
        self, faces: np.ndarray, tta: bool = False, prepared: bool = False
    ) -> np.ndarray:
        """(N, 48, 48) uint8 faces -> (N, classes) probabilities; `prepared`: the faces are
        already preprocessed (e.g. by `prepared()`), as explanation keeps them."""
        faces = faces if prepared else self.prepared(faces)
        model = self.predicting_model
        if tta:
            return probabilities_tta(model, faces, TTA_MODE, device=self.device)
        return probabilities(model, faces, device=self.device)


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
    ref: str | Path, device: str = "cpu", weights: str = "final", runtime: str = "torch"
) -> Predictor:
    """The Predictor a MODEL_REF names; weights="raw": a run's raw weights beside its EMA;
    runtime="onnx": probabilities computed by ONNX Runtime (an `.onnx` file needs it)."""
    from ferlab.runtime import check_runtime, onnx_card, onnx_file_runner, onnx_runner

    runtime = check_runtime(runtime)
    path = resolve_checkpoint(ref)
    if path.suffix.lower() == ".onnx":
        if runtime != "onnx":
            raise FerlabError(
                f"{path}: an ONNX file runs only with ONNX Runtime (predict, evaluate and serve "
                "take --runtime onnx); export, layers and explain need the torch network: give "
                "the run folder or checkpoint it was exported from"
            )
        card = onnx_card(path)
        runner = onnx_file_runner(path, card)
        return Predictor(runner, card, path, "cpu", "onnx", runner)
    model, card = read_checkpoint(path, device, weights)
    runner = onnx_runner(model) if runtime == "onnx" else None
    return Predictor(model, card, path, device, runtime, runner)


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


def face_batch(faces: np.ndarray, device: str = "cpu") -> torch.Tensor:
    """(B, 48, 48) uint8 -> (B, 1, 48, 48) float in [0, 1], channels_last (faster convs)."""
    x = torch.from_numpy(faces).to(device).float().div_(255).unsqueeze(1)
    return x.contiguous(memory_format=torch.channels_last)


@torch.no_grad()
def probabilities(
    model: nn.Module, faces: np.ndarray, batch_size: int = 512, device: str = "cpu"
) -> np.ndarray:
    """(N, 48, 48) preprocessed uint8 faces -> (N, classes) softmax probabilities."""
    chunks = [faces[i : i + batch_size] for i in range(0, len(faces), batch_size)]
    if isinstance(model, OnnxRunner):  # no torch op around the session (its docstring: why)
        out = [model.probabilities(chunk) for chunk in chunks]
    else:
        model.eval().to(memory_format=torch.channels_last)
        out = [
            torch.softmax(model(face_batch(chunk, device)).float(), dim=1).cpu().numpy()
            for chunk in chunks
        ]
    n_classes = model.model_args.get("num_classes", 7) if hasattr(model, "model_args") else 7
    return np.concatenate(out) if out else np.zeros((0, n_classes), np.float32)


def tta_views(x: torch.Tensor, mode: str, native: int = 0) -> list[torch.Tensor]:
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
                view = x.roll((m // 2 - top, m // 2 - left), dims=(-2, -1))
            else:
                view = x[..., top : top + crop, left : left + crop]
                view = F.interpolate(view, size=(size, size), mode="bilinear", align_corners=False)
            views.append(view)
    if mode in ("flip", "flip+crops"):
        views = views + [v.flip(-1) for v in views]
    return views


@torch.no_grad()
def probabilities_tta(
    model: nn.Module,
    faces: np.ndarray,
    mode: str = TTA_MODE,
    batch_size: int = 256,
    device: str = "cpu",
) -> np.ndarray:
    """(N, 48, 48) preprocessed uint8 -> (N, classes) mean softmax over the TTA views."""
    if not len(faces):
        return probabilities(model, faces)  # the empty (0, classes) answer lives there
    model.eval().to(memory_format=torch.channels_last)
    out = []
    for i in range(0, len(faces), batch_size):
        x = face_batch(faces[i : i + batch_size], device)
        views = tta_views(x, mode, getattr(model, "input_crop", 0))
        probs = [torch.softmax(model(v).float(), 1) for v in views]
        out.append(torch.stack(probs).mean(0).cpu().numpy())
    return np.concatenate(out)
