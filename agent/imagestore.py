"""NG images on local disk, bounded by count, bytes and age (oldest deleted first).

A line engineer opens them when MQTT consumers were down or to review a shift; the bounds
keep a busy line from filling the SD card. A write that fails (full disk, read-only
mount) is logged once per cause and counted; inspection never stops for it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ImageStore", "StoreLimits"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoreLimits:
    max_count: int = 1000
    max_bytes: int = 500_000_000
    max_age_s: float = 30 * 86400.0


class ImageStore:
    def __init__(self, root: Path, limits: StoreLimits) -> None:
        self.root = root
        self.limits = limits
        self.write_errors = 0
        self.deleted = 0
        self._last_error: str | None = None
        self._files: list[tuple[float, int, Path]] = []  # (mtime, bytes, path), oldest first
        self._bytes = 0
        try:
            root.mkdir(parents=True, exist_ok=True)
            self._scan()
            self.prune()
        except OSError as exc:
            self._failed(f"image store {root} unusable: {exc}")

    def _scan(self) -> None:
        found = []
        for entry in os.scandir(self.root):
            if entry.is_file() and entry.name.endswith(".jpg"):
                st = entry.stat()
                found.append((st.st_mtime, st.st_size, Path(entry.path)))
        self._files = sorted(found)
        self._bytes = sum(size for _, size, _ in self._files)

    def save(self, name: str, data: bytes) -> Path | None:
        """Write ``name`` (e.g. ``<event_id>.jpg``) atomically; None when the disk refused it."""
        path = self.root / name
        tmp = path.with_suffix(".tmp")
        try:
            tmp.write_bytes(data)
            os.replace(tmp, path)
        except OSError as exc:
            with contextlib.suppress(OSError):  # ENOTDIR/EACCES here too: unlink(missing_ok) would raise
                tmp.unlink(missing_ok=True)
            self._failed(f"cannot write images to {self.root}: {exc.strerror or exc}")
            return None
        self._files.append((time.time(), len(data), path))
        self._bytes += len(data)
        self._last_error = None
        self.prune()
        return path

    def prune(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        limits = self.limits
        while self._files and (
            len(self._files) > limits.max_count
            or self._bytes > limits.max_bytes
            or now - self._files[0][0] > limits.max_age_s
        ):
            _, size, path = self._files.pop(0)
            self._bytes -= size
            try:
                path.unlink(missing_ok=True)
                self.deleted += 1
            except OSError as exc:
                self._failed(f"cannot delete old image {path}: {exc.strerror or exc}")

    @property
    def count(self) -> int:
        return len(self._files)

    @property
    def bytes(self) -> int:
        return self._bytes

    def _failed(self, message: str) -> None:
        self.write_errors += 1
        if message != self._last_error:  # one line per cause, not one per image
            log.error("%s", message)
            self._last_error = message
