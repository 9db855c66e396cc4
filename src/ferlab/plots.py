"""Figures. Plotting only: every function takes computed numbers and writes a PNG."""

import io
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ferlab.atomic import write_bytes_atomic

# Figures are built with matplotlib's object API (no pyplot): nothing global is touched, so
# importing ferlab leaves the user's matplotlib backend as it was.


def _subplots(*grid, **kw):
    fig = Figure(figsize=kw.pop("figsize"))
    return fig, fig.subplots(*grid, **kw)


def save(fig, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    write_bytes_atomic(Path(path), buf.getvalue())
    return Path(path)


def plot_curves(histories: dict[str, dict[str, list]], path: Path, title: str = "") -> Path:
    """Accuracy and loss per epoch for one or more runs: {label: {epoch, train_acc, ...}}."""
    fig, (ax_acc, ax_loss) = _subplots(1, 2, figsize=(11, 4))
    for i, (label, h) in enumerate(histories.items()):
        color = f"C{i}"
        prefix = f"{label} " if len(histories) > 1 else ""
        for split, style in (("train", "--"), ("val", "-")):
            # Markers, so that a run of one epoch still shows its point.
            kw = dict(color=color, marker="o", markersize=3, label=f"{prefix}{split}")
            if h.get(f"{split}_acc"):
                ax_acc.plot(h["epoch"], h[f"{split}_acc"], style, **kw)
            if h.get(f"{split}_loss"):
                ax_loss.plot(h["epoch"], h[f"{split}_loss"], style, **kw)
    for ax, name in ((ax_acc, "accuracy"), (ax_loss, "loss")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return save(fig, path)


def plot_confusion(matrix: np.ndarray, labels: list[str], path: Path, title: str = "") -> Path:
    """Row-normalized confusion matrix with the rate printed in each cell."""
    fig, ax = _subplots(figsize=(6.5, 5.5))
    im = ax.imshow(matrix, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(labels)):
        for j in range(len(labels)):
            v = matrix[i, j]
            ax.text(
                j,
                i,
                f"{v:.2f}",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if v > 0.5 else "black",
            )
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax.set_title(title or "normalized confusion matrix")
    return save(fig, path)


def plot_saliency_panels(
    faces: np.ndarray,
    maps: np.ndarray,
    masked: np.ndarray,
    titles: list[str],
    path: Path,
    method: str = "gradient",
) -> Path:
    """One row per face: the face, its saliency (jet), the face with low-saliency pixels off."""
    n = len(faces)
    fig, axes = _subplots(n, 3, figsize=(6.6, 2.3 * n), squeeze=False)
    for i in range(n):
        axes[i, 0].imshow(faces[i], cmap="gray", vmin=0, vmax=255)
        axes[i, 1].imshow(maps[i], cmap="jet")
        axes[i, 2].imshow(masked[i], cmap="gray", vmin=0, vmax=255)
        axes[i, 0].set_title(titles[i], fontsize=8, loc="left")
        for ax in axes[i]:
            ax.set_axis_off()
    axes[0, 1].set_title(f"saliency ({method})", fontsize=8)
    axes[0, 2].set_title("most salient 25%", fontsize=8)
    return save(fig, path)


def plot_class_maps(maps: np.ndarray, labels: list[str], path: Path, title: str = "") -> Path:
    fig, axes = _subplots(1, len(labels), figsize=(2 * len(labels), 2.4))
    for ax, m, name in zip(axes, maps, labels, strict=True):
        ax.imshow(m, cmap="jet")
        ax.set_title(name, fontsize=9)
        ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=10)
    return save(fig, path)


def grid_figure(
    tiles: np.ndarray,
    captions: list[str] | None = None,
    per_row: int = 16,
    title: str = "",
    cmap: str = "gray",
):
    """Tiles (F, h, w), or a list of 2-D arrays of any sizes, in rows of `per_row`, each
    scaled on its own, caption above each."""
    n = len(tiles)
    rows = (n + per_row - 1) // per_row
    cols = min(per_row, n)
    fig, axes = _subplots(rows, cols, figsize=(1.05 * cols, 1.25 * rows + 0.4), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if k < n:
            ax.imshow(tiles[k], cmap=cmap)
            if captions:
                ax.set_title(captions[k], fontsize=6, pad=2)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


def plot_grid(
    tiles: np.ndarray,
    path: Path,
    captions: list[str] | None = None,
    per_row: int = 16,
    title: str = "",
    cmap: str = "gray",
) -> Path:
    return save(grid_figure(tiles, captions, per_row, title, cmap), path)


def plot_gradient_norms(series: dict[str, np.ndarray], path: Path, title: str = "") -> Path:
    """Per-layer gradient norms (log scale) against depth, one line per network and moment:
    {label: (layers,) norms}, layer 1 nearest the input."""
    fig, ax = _subplots(1, 1, figsize=(8, 4))
    for i, (label, norms) in enumerate(series.items()):
        ax.semilogy(
            np.arange(1, len(norms) + 1),
            norms,
            marker="o",
            markersize=3,
            color=f"C{i}",
            label=label,
        )
    return _save_gradient_axes(
        fig, ax, "weight layer (1 = next to the input)", title or "gradient norm per layer", path
    )


def _save_gradient_axes(fig, ax, xlabel: str, title: str, path: Path) -> Path:
    """The gradient figures' common frame: log-scale gradient norm, grid, legend, title."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel("|d loss / d weight|")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    ax.set_title(title)
    return save(fig, path)


def plot_activations(face: np.ndarray, maps: np.ndarray, layer: str, name: str, path: Path):
    """A prepared (48, 48) uint8 face, then the output of every filter of `layer` for it."""
    return plot_grid(
        [face / 255.0, *maps],  # the input keeps its size; deep maps are smaller
        path,
        ["input"] + [f"#{i} {m.mean():.2f}" for i, m in enumerate(maps)],
        per_row=16,
        title=f"{layer}: {len(maps)} filters for {name} (caption: filter, mean)",
        cmap="viridis",
    )


def plot_filter_images(
    images: np.ndarray,
    filters: list[int],
    final: np.ndarray,
    layer: str,
    steps: int,
    path: Path,
    names: list[str] | None = None,
) -> Path:
    """Gradient-ascent inputs, one per filter (or class, with `names`), captioned with the
    mean activation each reached."""
    captions = [
        f"{names[f] if names else f'#{f}'} {a:.2f}" for f, a in zip(filters, final, strict=True)
    ]
    return plot_grid(
        images,
        path,
        captions,
        per_row=16,
        title=f"{layer}: inputs maximizing each {'class' if names else 'filter'} "
        f"({steps} steps; caption: final mean activation)",
    )


def plot_class_saliency(maps: np.ndarray, labels: list[str], method: str, n: int, path: Path):
    return plot_class_maps(
        maps, labels, path, f"mean {method} saliency for the true class ({n} faces)"
    )


def plot_gradient_history(
    series: dict[str, tuple[np.ndarray, np.ndarray]], path: Path, title: str = ""
) -> Path:
    """During training: the gradient norm of the first and of the last weight layer of each
    network against the step, {label: (steps, (rows, layers) norms)}, log scale."""
    fig, ax = _subplots(1, 1, figsize=(8, 4))
    for i, (label, (steps, norms)) in enumerate(series.items()):
        ax.semilogy(steps, norms[:, 0], "-", color=f"C{i}", label=f"{label}: first layer")
        ax.semilogy(steps, norms[:, -1], ":", color=f"C{i}", label=f"{label}: last layer")
    return _save_gradient_axes(
        fig, ax, "training step", title or "gradient norm during training", path
    )


def plot_timeline(
    times: np.ndarray, probs: np.ndarray, labels: list[str], path: Path, unit: str, title: str = ""
) -> Path:
    """Each emotion's probability over a video: times (frames,) in `unit`, probs (frames,
    classes) with NaN rows where no face was found (drawn as gaps)."""
    fig, ax = _subplots(1, 1, figsize=(11, 3.6))
    for k, label in enumerate(labels):
        ax.plot(times, probs[:, k], color=f"C{k}", lw=1.4, marker="o", markersize=2, label=label)
    missing = np.isnan(probs).all(1)
    if missing.any():
        ax.plot(times[missing], np.zeros(missing.sum()), "|", color="0.5", label="no face")
    ax.set_ylim(0, 1)
    ax.set_xlabel(unit)
    ax.set_ylabel("probability")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=min(len(labels) + 1, 9), loc="upper center",
              bbox_to_anchor=(0.5, -0.18))  # fmt: skip
    if title:
        ax.set_title(title)
    return save(fig, path)


def plot_trust_curves(result: dict, path: Path) -> Path:
    """Deletion and insertion curves of each saliency method beside the random-order and edge
    baselines, and each method's randomization cascade (Spearman per depth): `result` as
    `ferlab explain check --json` prints it."""
    fig, (ax_del, ax_ins, ax_rand) = _subplots(1, 3, figsize=(15, 4))
    series = {**result["methods"], **{f"{k} (baseline)": v for k, v in result["baselines"].items()}}
    for i, (name, s) in enumerate(series.items()):
        style = "--" if "baseline" in name else "-"
        x = np.linspace(0, 1, len(s["deletion_curve"]))
        ax_del.plot(x, s["deletion_curve"], style, color=f"C{i}",
                    label=f"{name} ({s['deletion_auc']:.3f})")  # fmt: skip
        ax_ins.plot(x, s["insertion_curve"], style, color=f"C{i}",
                    label=f"{name} ({s['insertion_auc']:.3f})")  # fmt: skip
    for i, (name, m) in enumerate(result["methods"].items()):
        ax_rand.plot(range(1, len(m["spearman"]) + 1), m["spearman"], "-o", color=f"C{i}",
                     markersize=3, label=name)  # fmt: skip
    ax_rand.axhline(result["passes_randomization_below"], color="0.5", lw=0.8, ls=":")
    for ax, title, xlabel in (
        (ax_del, "deletion (lower is better)", "share of pixels replaced by the blur"),
        (ax_ins, "insertion (higher is better)", "share of pixels restored"),
        (ax_rand, "randomization cascade", "layers re-initialized, from the top"),
    ):
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    ax_del.set_ylabel("probability of the answered class")
    ax_rand.set_ylabel("Spearman with the trained model's map")
    return save(fig, path)


def plot_trust_cascade(
    faces: np.ndarray, cascades: dict[str, np.ndarray], columns: list[str], path: Path
) -> Path:
    """Rows: each method for each shown face; columns: the face, then its map for the trained
    model and after each further layer is re-initialized (cascades: method -> (depths + 1,
    faces, H, W))."""
    rows = [(m, j) for j in range(len(faces)) for m in cascades]
    size = (1.3 * (len(columns) + 1), 1.4 * len(rows))
    fig, axes = _subplots(len(rows), len(columns) + 1, figsize=size, squeeze=False)
    for r, (method, j) in enumerate(rows):
        axes[r, 0].imshow(faces[j], cmap="gray", vmin=0, vmax=1)
        axes[r, 0].set_ylabel(f"{method}\nface {j + 1}", fontsize=7)
        for c, name in enumerate(columns):
            m = cascades[method][c, j]
            axes[r, c + 1].imshow(m / m.max() if m.max() > 0 else m, cmap="inferno", vmin=0, vmax=1)
            if r == 0:
                axes[r, c + 1].set_title(name.replace("features.", ""), fontsize=6)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    return save(fig, path)


def plot_trust(result: dict, cascades: tuple, folder: Path) -> list[Path]:
    """trust_curves.png and trust_cascade.png in `folder`: `result` as `ferlab explain check
    --json` prints it, `cascades` as TrustReport.cascades() gives them."""
    return [
        plot_trust_curves(result, folder / "trust_curves.png"),
        plot_trust_cascade(*cascades, folder / "trust_cascade.png"),
    ]
