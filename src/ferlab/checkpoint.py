"""Loading a trained model from a run folder, a checkpoint file, or `default` (shipped weights).

A ferlab checkpoint describes itself: checkpoint["ferlab"] holds the model name and arguments,
class names, preprocessing, data fingerprint and epoch, so the file alone rebuilds the model.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ferlab.data.preprocess import Preprocess
from ferlab.errors import FerlabError
from ferlab.models import create

PACKAGE_WEIGHTS = Path(__file__).parent / "weights" / "default.pt"


@dataclass
class LoadedModel:
    model: nn.Module
    meta: dict
    path: Path

    @property
    def preprocess(self) -> Preprocess:
        return Preprocess.from_dict(self.meta.get("preprocess", {}))

    @property
    def classes(self) -> list[str]:
        return list(self.meta["classes"])


def resolve_checkpoint(ref: str | Path) -> Path:
    """The checkpoint file a MODEL_REF names: a run folder's best, a file, or `default`."""
    if str(ref) == "default":
        if not PACKAGE_WEIGHTS.is_file():
            raise FerlabError("no default model is shipped with this installation yet")
        return PACKAGE_WEIGHTS
    path = Path(ref)
    if path.is_dir():
        for name in ("best.ckpt", "last.ckpt"):
            if (path / "checkpoints" / name).is_file():
                return path / "checkpoints" / name
        raise FerlabError(f"{path}: run folder has no checkpoint (checkpoints/best.ckpt)")
    if not path.is_file():
        raise FerlabError(f"{path}: no such run folder or checkpoint file")
    return path


def load_model(ref: str | Path, device: str = "cpu", weights: str = "final") -> LoadedModel:
    """The model a MODEL_REF names. A run trained with --ema-decay checkpoints the averaged
    weights as its state (weights="final") and keeps the raw ones beside (weights="raw")."""
    path = resolve_checkpoint(ref)
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except Exception as e:  # torch raises many types for a damaged or foreign file
        first = (str(e).strip().splitlines() or [""])[0]
        raise FerlabError(
            f"{path}: not a readable checkpoint ({type(e).__name__}: {first})"
        ) from None
    meta = ckpt.get("ferlab") if isinstance(ckpt, dict) else None
    if not meta:
        raise FerlabError(f"{path}: not a ferlab checkpoint (no 'ferlab' metadata)")
    try:
        model = create(meta["model"], **meta.get("model_args", {}))
        if "input_crop" not in meta:  # runs from before input_crop was recorded in the metadata
            config = ckpt.get("hyper_parameters", {}).get("config", {})
            meta = meta | {"input_crop": int(config.get("crop") or 0)}
        model.input_crop = int(meta["input_crop"])
        state = ckpt["state_dict"]
        list(meta["classes"])
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise FerlabError(f"{path}: damaged ferlab metadata ({type(e).__name__}: {e})") from None
    if weights == "raw":
        state = ckpt.get("current_model_state", state)  # WeightAveraging's raw weights
    # Lightning prefixes the wrapped model's weights with "model."
    state = {
        k.removeprefix("model."): v.float() if v.is_floating_point() else v
        for k, v in state.items()
        if k.startswith("model.")
    }
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise FerlabError(f"{path}: weights do not fit model {meta['model']} ({e})") from None
    return LoadedModel(model.eval().to(device), meta, path)


@torch.no_grad()
def predict_proba(
    model: nn.Module, faces: np.ndarray, batch_size: int = 512, device: str = "cpu"
) -> np.ndarray:
    """(N, 48, 48) preprocessed uint8 faces -> (N, classes) softmax probabilities."""
    model.eval().to(memory_format=torch.channels_last)
    out = []
    for i in range(0, len(faces), batch_size):
        x = face_batch(faces[i : i + batch_size], device)
        out.append(torch.softmax(model(x).float(), dim=1).cpu().numpy())
    n_classes = model.model_args.get("num_classes", 7) if hasattr(model, "model_args") else 7
    return np.concatenate(out) if out else np.zeros((0, n_classes), np.float32)


def face_batch(faces: np.ndarray, device: str = "cpu") -> torch.Tensor:
    """(B, 48, 48) uint8 -> (B, 1, 48, 48) float in [0, 1], channels_last (faster convs)."""
    x = torch.from_numpy(faces).to(device).float().div_(255).unsqueeze(1)
    return x.contiguous(memory_format=torch.channels_last)
