"""Plain data passed between the agent's stages (source -> trigger -> model -> decision -> publisher)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Frame"]


@dataclass(frozen=True)
class Frame:
    """One decoded image from a camera, stamped when the grabber received it.

    ``image`` is BGR (or single-channel grey) uint8, as OpenCV decodes it. ``index`` counts frames read
    from the source since the agent started (gaps mean the consumer skipped frames); ``source_pos`` is the
    source's own frame number where it has one (video files), else -1.
    """

    camera: str
    image: np.ndarray
    index: int
    wall_time: float  # time.time() at capture: for timestamps in messages
    mono_time: float  # time.monotonic() at capture: for latency and frame age
    source_pos: int = -1
    source_name: str = ""  # folder sources: the image file's name
