"""The sensor signals with true anomaly spans and the model's detected spans underneath, one PNG."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tools.plots import _pyplot

__all__ = ["plot_signals"]


def plot_signals(
    t: np.ndarray,
    values: np.ndarray,
    channels: Sequence[str],
    true_spans: Sequence[tuple[float, float]],
    detected: Sequence[tuple[float, float]],
    path: Path,
    title: str,
) -> None:
    """One row per channel; labelled anomalies shaded red, detections drawn as blue bars in the last row."""
    plt = _pyplot()
    fig, axes = plt.subplots(len(channels) + 1, 1, figsize=(12, 1.5 * len(channels) + 1.2), sharex=True)
    for ax, name, column in zip(axes, channels, values.T, strict=False):
        ax.plot(t, column, linewidth=0.6, color="black")
        for start, end in true_spans:
            ax.axvspan(start, end, color="tab:red", alpha=0.25, linewidth=0)
        ax.set_ylabel(name, fontsize=8)
        ax.grid(alpha=0.3)
    lane = axes[-1]
    for start, end in true_spans:
        lane.axvspan(start, end, ymin=0.55, ymax=0.95, color="tab:red", alpha=0.6, linewidth=0)
    for start, end in detected:
        lane.axvspan(start, end, ymin=0.05, ymax=0.45, color="tab:blue", alpha=0.7, linewidth=0)
    lane.set_yticks([0.25, 0.75], ["detected", "labelled"])
    lane.set_xlabel("seconds")
    axes[0].set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
