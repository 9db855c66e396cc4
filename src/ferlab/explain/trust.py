"""Can a saliency map be trusted? Sanity checks and faithfulness scores for every method.

- Model-parameter randomization (Adebayo et al. 2018, "Sanity Checks for Saliency Maps"): the
  weight layers are re-initialized one by one from the top (the classifier) down, and each
  map of the trained model is compared with the map of the model so damaged: Spearman rank
  correlation and SSIM. A map that stays the same shows the image, not the model.
- Deletion and insertion (Petsiuk et al. 2018, RISE): the face's pixels are replaced, in the
  order the map ranks them, by the face's blurred copy (deletion: the original fades into the
  blur; insertion: the blur turns into the original), and the probability of the class the
  model answered on the untouched face is followed; the area under that curve is the score
  (deletion: lower is better; insertion: higher). Baselines: a random order, and the edge
  magnitude of the face (a map that knows nothing of the model).
- Stability: the map of the face shifted by one pixel (or flipped), moved back, against the
  map of the face (Spearman).

Model and faces in, numbers and arrays out; plotting is in ferlab.plots.
"""

import copy
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch
from kornia.metrics import ssim
from torch import nn

from ferlab.explain.saliency import METHODS, normalize_maps, saliency_maps
from ferlab.models import cam_layer, weight_layers

STEPS = 16  # points on the deletion/insertion curves, pixels in equal shares
BLUR_SIGMA = 4.0  # px on the 48x48 face: the removed pixels' stand-in
RANDOMIZED_BELOW = 0.5  # a method passes when, all layers re-initialized, its maps correlate less


@dataclass
class MethodTrust:
    method: str
    layers: list[str]  # re-initialized cumulatively, top first
    spearman: list[float]  # mean over faces, one per depth of the cascade
    ssim: list[float]
    deletion_auc: float
    insertion_auc: float
    deletion_curve: list[float]  # mean class probability at each step
    insertion_curve: list[float]
    shift_spearman: float
    flip_spearman: float
    cascade_maps: np.ndarray = field(repr=False)  # (depths + 1, faces shown, H, W)

    @property
    def passes_randomization(self) -> bool:
        return self.spearman[-1] < RANDOMIZED_BELOW

    def to_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k != "cascade_maps"}
        return d | {"passes_randomization": self.passes_randomization}


def seen_pixels(model: nn.Module, h: int, w: int) -> np.ndarray:
    """(H, W) bool: the pixels the model looks at. A model trained on crops takes the centre
    crop of a whole face, so every map is 0 on the border outside it, in the trained and the
    randomized model alike: counted, those shared zeros alone would give two unrelated maps a
    rank correlation of about 0.34 (44x44 of 48x48), and a random deletion order would waste
    steps on pixels the model never reads."""
    seen = np.ones((h, w), dtype=bool)
    crop = int(getattr(model, "seen_crop", getattr(model, "input_crop", 0)) or 0)
    if crop and crop < min(h, w):
        top, left = (h - crop) // 2, (w - crop) // 2
        seen[:] = False
        seen[top : top + crop, left : left + crop] = True
    return seen


def spearman(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Spearman rank correlation of (N, P) arrays (ties take their mean rank); NaN
    where a map is constant (a Grad-CAM that went all zero)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.array(
            [np.corrcoef(_ranks(x), _ranks(y))[0, 1] for x, y in zip(a, b, strict=True)]
        )


def _ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(len(x))
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return (sums / counts)[inverse]


def map_ssim(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N,) SSIM of (N, H, W) maps, each scaled to [0, 1] first."""
    x = torch.from_numpy(normalize_maps(a)).float()[:, None]
    y = torch.from_numpy(normalize_maps(b)).float()[:, None]
    return ssim(x, y, window_size=7).mean((1, 2, 3)).numpy()


def batched_maps(model, x, target, method, batch_size=50) -> np.ndarray:
    return np.concatenate(
        [
            saliency_maps(model, x[i : i + batch_size], target[i : i + batch_size], method)
            for i in range(0, len(x), batch_size)
        ]
    )


def randomization_cascade(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    method: str,
    original: np.ndarray,
    seed: int = 0,
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """(layers, spearman (depths, N), ssim (depths, N), maps (depths + 1, N, H, W)): the maps
    of the trained model (`original`, computed by the caller), then with the top 1, 2, ...
    weight layers re-initialized (on a copy of the model)."""
    damaged = copy.deepcopy(model).eval()
    modules = weight_layers(damaged)
    layers = list(modules)[::-1]
    maps, rho, sim = [original], [], []
    seen = seen_pixels(model, *original.shape[-2:])
    rows, cols = np.flatnonzero(seen.any(1)), np.flatnonzero(seen.any(0))
    box = (slice(None), slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    torch.manual_seed(seed)
    for name in layers:
        modules[name].reset_parameters()
        m = batched_maps(damaged, x, target, method)
        maps.append(m)
        rho.append(spearman(original[:, seen], m[:, seen]))
        sim.append(map_ssim(original[box], m[box]))
    return layers, np.array(rho), np.array(sim), np.stack(maps)


def blurred(faces: np.ndarray) -> np.ndarray:
    """(N, H, W) float faces -> their Gaussian-blurred copies (the removed pixels' stand-in)."""
    return np.stack([cv2.GaussianBlur(f, (0, 0), BLUR_SIGMA) for f in faces])


@torch.no_grad()
def _class_probability(model, faces: np.ndarray, target: np.ndarray, chunk=512) -> np.ndarray:
    """(M,) probability of class target[i] for each of (M, H, W) faces, in large batches (the
    curves' forward passes are most of the checks' time; small batches waste the cores)."""
    out = []
    for i in range(0, len(faces), chunk):
        x = torch.from_numpy(faces[i : i + chunk]).float()[:, None]
        probs = torch.softmax(model(x).float(), 1)
        out.append(probs[torch.arange(len(x)), torch.as_tensor(target[i : i + chunk])].numpy())
    return np.concatenate(out)


def deletion_insertion(
    model: nn.Module, faces: np.ndarray, maps: np.ndarray, target: torch.Tensor
) -> tuple[np.ndarray, np.ndarray]:
    """(deletion, insertion) curves, each (STEPS + 1, N): the target class's probability as
    the map's top pixels are replaced by the blurred face (deletion), or the blurred face gets
    them back (insertion), in STEPS equal shares."""
    model.eval()
    n, h, w = faces.shape
    # Pixels the model never reads go last in every order (maps and baselines alike).
    ranked = np.where(seen_pixels(model, h, w), maps, -np.inf).reshape(n, -1)
    order = np.argsort(-ranked, axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(h * w)[None].repeat(n, 0), axis=1)
    flat_faces, flat_soft = faces.reshape(n, -1), blurred(faces).reshape(n, -1)
    # top[s, i, p]: pixel p of face i is among the map's first k(s) pixels
    k = np.round(np.arange(STEPS + 1) * h * w / STEPS).astype(int)
    top = rank[None] < k[:, None, None]
    deleted = np.where(top, flat_soft, flat_faces)
    inserted = np.where(top, flat_faces, flat_soft)
    both = np.concatenate([deleted, inserted]).reshape(-1, h, w).astype(np.float32)
    targets = np.tile(np.asarray(target), 2 * (STEPS + 1))
    probs = _class_probability(model, both, targets).reshape(2, STEPS + 1, n)
    return probs[0], probs[1]


def auc(curve: np.ndarray) -> float:
    """Area under a mean curve sampled at equal shares of [0, 1]."""
    return float(np.trapezoid(curve, dx=1 / (len(curve) - 1)))


def edge_maps(faces: np.ndarray) -> np.ndarray:
    """Sobel gradient magnitude of each face: a 'saliency map' that never looks at the model."""
    out = []
    for f in faces:
        gx = cv2.Sobel(f, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(f, cv2.CV_32F, 0, 1, ksize=3)
        out.append(np.hypot(gx, gy))
    return np.stack(out)


def stability(
    model, x: torch.Tensor, target: torch.Tensor, method: str, base: np.ndarray
) -> tuple[float, float]:
    """Mean Spearman of the faces' maps `base` against the maps of the faces shifted right by
    one pixel (shifted back) and of the mirrored faces (mirrored back)."""
    shifted = np.roll(batched_maps(model, x.roll(1, dims=-1), target, method), -1, axis=-1)
    flipped = batched_maps(model, x.flip(-1), target, method)[..., ::-1]
    seen = seen_pixels(model, *base.shape[-2:])
    inner = seen.copy()
    inner[:, [0, -1]] = False  # the wrapped column is not the face
    shifted_seen = inner & np.roll(seen, 1, axis=-1) & np.roll(seen, -1, axis=-1)
    shift = spearman(base[:, shifted_seen], shifted[:, shifted_seen])
    flip = spearman(base[:, seen], np.ascontiguousarray(flipped)[:, seen])
    return float(np.nanmean(shift)), float(np.nanmean(flip))


@dataclass
class TrustReport:
    n: int
    cascade_faces: int
    methods: dict[str, MethodTrust]
    random_order: dict  # deletion/insertion of a random pixel order: {"deletion_auc", ...}
    edge: dict  # the same for the edge-magnitude map
    shown: list[int]  # indices of the faces whose cascade maps are kept
    faces: np.ndarray = field(repr=False)  # (n, H, W) float in [0, 1]
    # methods the model cannot be explained with, and why (Grad-CAM needs a feature map)
    not_applicable: dict[str, str] = field(default_factory=dict)

    @property
    def best(self) -> str:
        """The method that passes randomization with the largest insertion - deletion gap."""
        passing = [m for m in self.methods.values() if m.passes_randomization] or list(
            self.methods.values()
        )
        return max(passing, key=lambda m: m.insertion_auc - m.deletion_auc).method

    def cascades(self) -> tuple[np.ndarray, dict[str, np.ndarray], list[str]]:
        """(shown faces, each method's cascade maps, column names): what plot_trust_cascade
        draws."""
        layers = next(iter(self.methods.values())).layers
        maps = {m: t.cascade_maps for m, t in self.methods.items()}
        return self.faces[self.shown], maps, ["trained", *layers]

    def to_dict(self) -> dict:
        return {
            "n": self.n,
            "cascade_faces": self.cascade_faces,
            "removed_pixels": f"the face's Gaussian-blurred copy (sigma {BLUR_SIGMA} px)",
            "pixels_compared": "those the model reads (its centre crop; the border goes last)",
            "steps": STEPS,
            "passes_randomization_below": RANDOMIZED_BELOW,
            "methods": {k: v.to_dict() for k, v in self.methods.items()},
            "baselines": {"random": self.random_order, "edge": self.edge},
            "not_applicable": self.not_applicable,
            "best": self.best,
        }


def _mean_over_faces(rho: np.ndarray) -> list[float]:
    """Per depth, the mean over the faces whose maps were not constant (0 where all were: a
    map gone flat shares nothing with the trained model's)."""
    counted = np.isfinite(rho).sum(1)
    total = np.where(np.isfinite(rho), rho, 0).sum(1)
    return np.where(counted > 0, total / np.maximum(counted, 1), 0.0).round(4).tolist()


def _curve_scores(deletion: np.ndarray, insertion: np.ndarray) -> dict:
    d, i = deletion.mean(1), insertion.mean(1)
    return {
        "deletion_auc": auc(d),
        "insertion_auc": auc(i),
        "deletion_curve": d.round(4).tolist(),
        "insertion_curve": i.round(4).tolist(),
    }


def check_saliency(
    model: nn.Module,
    faces: torch.Tensor,
    methods: tuple[str, ...] = METHODS,
    shown: int = 2,
    seed: int = 0,
    cascade_faces: int = 50,
) -> TrustReport:
    """Every check for every method on (N, 1, H, W) faces in [0, 1], each explained for the
    class the model answers on it: deletion and insertion on all N faces; the randomization
    cascade and stability, which recompute each map many times, on the first `cascade_faces`."""
    model = model.eval()
    skipped = not_applicable(model, methods)  # decided before minutes of the other methods
    methods = tuple(m for m in methods if m not in skipped)
    with torch.no_grad():
        target = model(faces).argmax(1)
    plain = faces[:, 0].numpy().astype(np.float32)
    few = slice(0, min(cascade_faces, len(faces)))
    results = {}
    for method in methods:
        trained = batched_maps(model, faces, target, method)  # each check starts from these
        layers, rho, sim, maps = randomization_cascade(
            model, faces[few], target[few], method, trained[few], seed
        )
        deletion, insertion = deletion_insertion(model, plain, trained, target)
        shift, flip = stability(model, faces[few], target[few], method, trained[few])
        scores = _curve_scores(deletion, insertion)
        results[method] = MethodTrust(
            method=method,
            layers=layers,
            spearman=_mean_over_faces(rho),
            ssim=sim.mean(1).round(4).tolist(),
            deletion_auc=round(scores["deletion_auc"], 4),
            insertion_auc=round(scores["insertion_auc"], 4),
            deletion_curve=scores["deletion_curve"],
            insertion_curve=scores["insertion_curve"],
            shift_spearman=round(shift, 4),
            flip_spearman=round(flip, 4),
            cascade_maps=maps[:, :shown],
        )
    rng = np.random.default_rng(seed)
    random_maps = rng.random(plain.shape).astype(np.float32)
    baselines = {}
    for name, maps in (("random", random_maps), ("edge", edge_maps(plain))):
        scores = _curve_scores(*deletion_insertion(model, plain, maps, target))
        baselines[name] = {k: round(v, 4) if isinstance(v, float) else v for k, v in scores.items()}
    return TrustReport(
        n=len(faces),
        cascade_faces=few.stop,
        methods=results,
        random_order=baselines["random"],
        edge=baselines["edge"],
        shown=list(range(min(shown, len(faces)))),
        faces=plain,
        not_applicable=skipped,
    )


def not_applicable(model: nn.Module, methods=METHODS) -> dict[str, str]:
    """The methods among `methods` this model cannot be explained with, and why."""
    if "gradcam" in methods and cam_layer(model) is None:
        return {"gradcam": "the model has no convolutional feature map to weigh (Grad-CAM)"}
    return {}


def verdict(name: str, m: dict, random: dict, edge: dict) -> str:
    """One sentence on a method, read off its scores (a `to_dict()` method entry and the two
    baselines'): does it follow the model, is it faithful, is it stable."""
    rho = m["spearman"][-1]
    follows = (
        f"changes when the model does (rank correlation {rho:.2f} with the trained model's "
        f"map once every layer is re-initialized; it passes below {RANDOMIZED_BELOW})"
        if m["passes_randomization"]
        else f"barely changes when the model's weights are re-initialized (rank correlation "
        f"{rho:.2f} with the trained model's map; it would pass below {RANDOMIZED_BELOW}), so "
        "it shows the face more than the model"
    )
    gap = m["insertion_auc"] - m["deletion_auc"]
    baselines = {"random": random, "edge": edge}
    baseline_gaps = {k: b["insertion_auc"] - b["deletion_auc"] for k, b in baselines.items()}
    beaten = [k for k, g in baseline_gaps.items() if gap > g]
    if len(beaten) == 2:
        faithful = "ranks the pixels the model uses better than a random order and the edge map"
    elif beaten:
        faithful = f"ranks the pixels the model uses better than the {beaten[0]} baseline only"
    else:
        faithful = "ranks the pixels the model uses no better than a random order or the edge map"
    stable = min(m["shift_spearman"], m["flip_spearman"])
    steady = "steady" if stable >= 0.7 else "fairly steady" if stable >= 0.4 else "unsteady"
    steady += f" under a one-pixel shift ({m['shift_spearman']:.2f})"
    steady += f" and a flip ({m['flip_spearman']:.2f})"
    return (
        f"{name} {follows}; it {faithful} (insertion minus deletion AUC {gap:+.3f}, against "
        f"{baseline_gaps['random']:+.3f} random and {baseline_gaps['edge']:+.3f} edge); it is "
        f"{steady}."
    )
