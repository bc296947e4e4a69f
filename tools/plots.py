"""Matplotlib PNGs for people who would rather look than read (Agg backend: no screen needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["plot_confusion", "plot_curves", "plot_localization_gallery", "plot_misses", "plot_roc"]


def _pyplot():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(history: dict[str, list[float]], path: Path, best_epoch: int | None = None) -> None:
    """Training and validation loss/accuracy per epoch."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("loss", "accuracy"), strict=True):
        for key, style in ((metric, "-"), (f"val_{metric}", "--")):
            if key in history:
                ax.plot(range(1, len(history[key]) + 1), history[key], style, label=key)
        if best_epoch:
            ax.axvline(best_epoch, color="grey", linestyle=":", label=f"best epoch {best_epoch}")
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_roc(curves: dict[str, tuple[np.ndarray, np.ndarray, float | None]], path: Path) -> None:
    """Good-vs-defect ROC curves, one line per model variant: name -> (fpr, tpr, auc)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for name, (fpr, tpr, auc) in curves.items():
        label = f"{name} (AUC {auc:.4f})" if auc is not None else name
        ax.plot(fpr, tpr, label=label)
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
    ax.set_xlabel("false positive rate (good parts rejected)")
    ax.set_ylabel("true positive rate (defects caught)")
    ax.set_title("Defect ROC")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_confusion(matrix: Sequence[Sequence[int]], class_names: list[str], title: str, path: Path) -> None:
    plt = _pyplot()
    data = np.asarray(matrix)
    size = 1.0 + 0.7 * len(class_names)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(data, cmap="Blues")
    ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    threshold = data.max() / 2 if data.size else 0
    for (row, col), value in np.ndenumerate(data):
        ax.text(
            col, row, str(value), ha="center", va="center", color="white" if value > threshold else "black"
        )
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_misses(
    images: list[np.ndarray], captions: list[str], title: str, path: Path, columns: int = 6
) -> None:
    """A grid of misclassified images (RGB or grey uint8), captioned 'true -> predicted (score)'."""
    plt = _pyplot()
    count = max(1, len(images))
    rows = (count + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(2.2 * columns, 2.4 * rows + 0.4), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, image, caption in zip(axes.ravel(), images, captions, strict=False):
        ax.imshow(image.squeeze(), cmap="gray" if image.shape[-1] == 1 else None)
        ax.set_title(caption, fontsize=7)
    if not images:
        axes[0][0].text(0.5, 0.5, "no misses", ha="center", va="center")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_localization_gallery(
    images: np.ndarray,
    heatmaps: np.ndarray,
    masks: np.ndarray,
    captions: list[str],
    title: str,
    path: Path,
    threshold: float | None = None,
) -> None:
    """One row per image: the image, its 0..1 heatmap over it (threshold contour), the ground-truth mask."""
    plt = _pyplot()
    rows = max(1, len(images))
    fig, axes = plt.subplots(rows, 3, figsize=(7.2, 2.3 * rows + 0.5), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for row, (image, heat, mask, caption) in enumerate(zip(images, heatmaps, masks, captions, strict=False)):
        grey = image.shape[-1] == 1
        axes[row][0].imshow(image.squeeze(), cmap="gray" if grey else None)
        axes[row][0].set_title(caption, fontsize=7)
        axes[row][1].imshow(image.squeeze(), cmap="gray" if grey else None)
        axes[row][1].imshow(heat, cmap="jet", alpha=0.5, vmin=0.0, vmax=1.0)
        if threshold is not None and heat.max() > threshold > heat.min():
            axes[row][1].contour(heat, levels=[threshold], colors="white", linewidths=0.8)
        axes[row][1].set_title(f"heatmap (peak {heat.max():.2f})", fontsize=7)
        axes[row][2].imshow(mask, cmap="gray", vmin=0, vmax=255)
        axes[row][2].set_title("ground truth", fontsize=7)
    if len(images) == 0:
        axes[0][0].text(0.5, 0.5, "no images with masks", ha="center", va="center")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
