"""Image store: count/bytes/age bounds, existing files, atomic writes, failures logged once, never raised."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest

from agent.imagestore import ImageStore, StoreLimits

JPEG = b"\xff\xd8" + b"x" * 98  # 100 bytes; the store does not look inside


def _old_files(root: Path, ages: list[float], now: float, size: int = 100) -> list[Path]:
    """Files ``age`` seconds old (by mtime) relative to ``now``."""
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for n, age in enumerate(ages):
        path = root / f"old{n}.jpg"
        path.write_bytes(b"o" * size)
        os.utime(path, (now - age, now - age))
        paths.append(path)
    return paths


@pytest.mark.parametrize(
    ("limits", "kept"),
    [
        (StoreLimits(max_count=3), ["e2", "e3", "e4"]),  # count: the oldest go first
        (StoreLimits(max_bytes=250), ["e3", "e4"]),  # bytes: 2 x 100 fit in 250, 3 do not
        (StoreLimits(max_count=1, max_bytes=50), []),  # one image larger than max_bytes is not kept
        (StoreLimits(), ["e0", "e1", "e2", "e3", "e4"]),  # defaults keep all of them
    ],
)
def test_retention_by_count_and_bytes(tmp_path: Path, limits: StoreLimits, kept: list[str]) -> None:
    store = ImageStore(tmp_path, limits)
    for n in range(5):
        assert store.save(f"e{n}.jpg", JPEG) == tmp_path / f"e{n}.jpg"
    assert sorted(p.stem for p in tmp_path.iterdir()) == kept
    assert (store.count, store.bytes, store.deleted) == (len(kept), 100 * len(kept), 5 - len(kept))


def test_retention_by_age(tmp_path: Path) -> None:
    now = 1_700_000_000.0
    old = _old_files(tmp_path, [100.0, 40.0, 10.0], now)
    store = ImageStore(tmp_path, StoreLimits(max_age_s=50.0))  # at start, by the real clock: all too old
    assert store.count == 0 and not any(p.exists() for p in old)

    old = _old_files(tmp_path, [100.0, 40.0, 10.0], now)
    store = ImageStore(tmp_path, StoreLimits(max_age_s=50.0e9))  # nothing too old at start
    assert store.count == 3
    store.prune(now=now)  # 100 s > 50 s
    store.limits = StoreLimits(max_age_s=50.0)
    store.prune(now=now)
    assert [p.exists() for p in old] == [False, True, True]
    store.prune(now=now + 35.0)  # now 75 s and 45 s old
    assert [p.exists() for p in old] == [False, False, True]
    assert (store.count, store.bytes) == (1, 100)


def test_existing_files_are_picked_up_at_start(tmp_path: Path) -> None:
    now = time.time()  # the default 30-day age bound runs on the real clock
    old = _old_files(tmp_path, [30.0, 20.0, 10.0], now, size=70)
    (tmp_path / "notes.txt").write_text("not an image")  # only .jpg files are the store's
    store = ImageStore(tmp_path, StoreLimits(max_count=3))
    assert (store.count, store.bytes) == (3, 210)
    store.save("new.jpg", JPEG)  # the fourth: the oldest existing file goes
    assert [p.exists() for p in old] == [False, True, True]
    assert (tmp_path / "notes.txt").exists()
    assert (store.count, store.bytes) == (3, 240)


def test_write_is_atomic(tmp_path: Path) -> None:
    store = ImageStore(tmp_path, StoreLimits())
    path = store.save("a.jpg", JPEG)
    assert path is not None and path.read_bytes() == JPEG
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jpg"]  # no .tmp left behind


def _unwritable(tmp_path: Path, how: str) -> Path:
    if how == "read-only dir":
        if os.geteuid() == 0:
            pytest.skip("root writes through chmod 0o500; the under-a-file case covers this")
        root = tmp_path / "ro"
        root.mkdir()
        root.chmod(0o500)
        return root
    (tmp_path / "file.txt").write_text("x")
    return tmp_path / "file.txt" / "sub"  # mkdir and writes fail with ENOTDIR, for root too


@pytest.mark.parametrize(
    "how",
    [
        "read-only dir",  # a read-only mount or wrong owner
        "under a file",  # a path that can never be a directory
    ],
)
def test_unwritable_store_counts_and_logs_once(
    tmp_path: Path, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    root = _unwritable(tmp_path, how)
    try:
        caplog.set_level(logging.ERROR, logger="agent.imagestore")
        store = ImageStore(root, StoreLimits())  # never raises
        caplog.clear()
        errors = store.write_errors
        for n in range(5):
            assert store.save(f"e{n}.jpg", JPEG) is None
        assert store.write_errors == errors + 5
        assert len([r for r in caplog.records if "cannot write images" in r.getMessage()]) == 1
        assert store.count == 0 and store.bytes == 0
    finally:
        if root.exists():
            root.chmod(0o700)


def test_a_new_cause_is_logged_again_after_recovery(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="agent.imagestore")
    store = ImageStore(tmp_path / "ok", StoreLimits())
    (tmp_path / "blocker").write_text("x")
    good_root, store.root = store.root, tmp_path / "blocker" / "sub"
    assert store.save("a.jpg", JPEG) is None
    assert store.save("b.jpg", JPEG) is None
    store.root = good_root
    assert store.save("c.jpg", JPEG) is not None  # success forgets the last error...
    store.root = tmp_path / "blocker" / "sub"
    assert store.save("d.jpg", JPEG) is None  # ...so the same failure is reported again
    assert len([r for r in caplog.records if "cannot write images" in r.getMessage()]) == 2
    assert store.write_errors == 3
