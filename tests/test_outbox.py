"""The SQLite outbox alone (order, ack, eviction, corrupt file, full disk, reopen) and its forwarder against a
fake publisher (in-flight window, ack deletes, re-send, direct fallback)."""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, cast

import pytest

from agent.messages import Topics
from agent.outbox import Outbox, OutboxForwarder, OutboxInUse
from agent.publisher import BrokerSettings, MqttPublisher, PublishTicket
from agent.status import ExitStatus


def _topics(box: Outbox) -> list[str]:
    return [row.topic for row in box.pending(1000)]


def test_put_pending_in_order_and_ack_deletes(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite3")
    ids = [box.put(f"t/{i}", bytes([i]) * (i + 1), 1) for i in range(5)]
    assert ids == sorted(ids) and None not in ids
    assert (box.depth, box.bytes) == (5, 1 + 2 + 3 + 4 + 5)
    assert _topics(box) == [f"t/{i}" for i in range(5)]
    assert [r.payload for r in box.pending(2)] == [b"\x00", b"\x01\x01"]
    box.ack(ids[1])
    box.ack(ids[1])  # twice: ignored
    box.ack(10_000)  # unknown: ignored
    assert _topics(box) == ["t/0", "t/2", "t/3", "t/4"]
    assert (box.depth, box.bytes) == (4, 1 + 3 + 4 + 5)
    box.close()


def test_reopen_keeps_pending_rows_and_the_order_continues(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    box = Outbox(path)
    first = [box.put(f"a/{i}", b"x", 1, retain=i == 1) for i in range(3)]
    box.ack(first[2])  # the newest row delivered: AUTOINCREMENT never reuses its id
    box.close()
    box = Outbox(path)
    assert (box.depth, box.bytes) == (2, 2)
    later = box.put("b/0", b"y", 1)
    assert later is not None and first[2] is not None and later > first[2]
    rows = box.pending(10)
    assert [r.topic for r in rows] == ["a/0", "a/1", "b/0"]
    assert [r.retain for r in rows] == [False, True, False]
    box.close()


def test_a_second_agent_on_the_same_outbox_is_refused_until_the_first_closes(tmp_path: Path) -> None:
    # Two agents sharing one file would each delete the other's rows on their acks (depth went to -1
    # and the stats message failed validation): the second stops at start with a message naming both.
    path = tmp_path / "o.sqlite3"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, pathlib; from agent.outbox import Outbox; "
         "box = Outbox(pathlib.Path(sys.argv[1])); print('open', flush=True); sys.stdin.read()", str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        with pytest.raises(OutboxInUse) as refused:
            Outbox(path)
        assert refused.value.status == ExitStatus.CONFIG
        assert f"pid {holder.pid}" in str(refused.value) and "outbox.path" in str(refused.value)
    finally:
        holder.communicate("", timeout=30)  # stdin closed: the holder exits and its lock goes with it
    box = Outbox(path)
    with pytest.raises(OutboxInUse):
        Outbox(path)  # the same process opening it twice is refused too
    box.close()
    Outbox(path).close()  # close released it


@pytest.mark.parametrize(
    ("max_count", "max_bytes", "kept"),
    [
        (3, 10**9, ["t/7", "t/8", "t/9"]),  # by count
        (100, 25, ["t/8", "t/9"]),  # by bytes: 10 per row, 25 holds two
        (1, 5, ["t/9"]),  # a row bigger than max_bytes is kept alone, never evicts itself
    ],
)
def test_eviction_oldest_first_counted_and_logged_once_per_burst(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, max_count: int, max_bytes: int, kept: list[str]
) -> None:
    box = Outbox(tmp_path / "o.sqlite3", max_count=max_count, max_bytes=max_bytes)
    with caplog.at_level(logging.WARNING, logger="agent.outbox"):
        for i in range(10):
            box.put(f"t/{i}", b"0123456789", 1)
        assert _topics(box) == kept
        assert box.evicted == 10 - len(kept)
        assert box.depth == len(kept) and box.bytes == 10 * len(kept)
        starts = [r for r in caplog.records if "outbox full" in r.getMessage()]
        assert len(starts) == 1, caplog.text
        for row in box.pending(100):  # delivered: the burst ends with the next put
            box.ack(row.id)
        box.put("t/last", b"x", 1)
    summaries = [r for r in caplog.records if "evicted" in r.getMessage()]
    assert len(summaries) == 1 and f"{10 - len(kept)} undelivered" in summaries[0].getMessage()
    assert box.evicted == 10 - len(kept)
    box.close()


def test_corrupt_file_is_moved_aside_and_a_new_one_started(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "o.sqlite3"
    path.write_bytes(b"this is not a database, it is garbage " * 200)
    with caplog.at_level(logging.ERROR, logger="agent.outbox"):
        box = Outbox(path)
    (aside,) = tmp_path.glob("o.sqlite3.corrupt-*")
    assert aside.read_bytes().startswith(b"this is not a database")
    (line,) = [r.getMessage() for r in caplog.records]
    assert "corrupt" in line and str(aside) in line
    assert box.usable and box.depth == 0
    assert box.put("t", b"x", 1) is not None
    box.close()


def test_damaged_pages_are_detected_by_quick_check(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    box = Outbox(path)
    for i in range(200):
        box.put(f"t/{i}", bytes(2000), 1)
    box.close()
    data = bytearray(path.read_bytes())
    data[4096 * 2 : 4096 * 6] = b"\xff" * (4096 * 4)  # scribble over a few b-tree pages, header intact
    path.write_bytes(bytes(data))
    box = Outbox(path)
    assert list(tmp_path.glob("o.sqlite3.corrupt-*")), "quick_check must catch damaged pages"
    assert box.usable and box.depth == 0
    box.close()


def test_full_disk_is_counted_logged_once_and_keeps_what_was_stored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    box = Outbox(tmp_path / "o.sqlite3")
    stored = [box.put(f"t/{i}", bytes(100), 1) for i in range(3)]
    assert box._db is not None
    (pages,) = box._db.execute("PRAGMA page_count").fetchone()
    box._db.execute(f"PRAGMA max_page_count = {pages}")  # SQLITE_FULL from now on, like a full disk
    with caplog.at_level(logging.ERROR, logger="agent.outbox"):
        failed = [box.put(f"u/{i}", bytes(5000), 1) for i in range(5)]
    assert failed == [None] * 5
    assert box.write_errors == 5
    assert len(caplog.records) == 1 and "full" in caplog.records[0].getMessage(), caplog.text
    assert [r.id for r in box.pending(10)] == stored and box.depth == 3
    box.ack(stored[0])  # still works: deleting needs no new page
    box.close()
    assert [r.id for r in Outbox(tmp_path / "o.sqlite3").pending(10)] == stored[1:]


def test_unopenable_path_is_not_fatal(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "file").write_text("a file, not a folder")
    with caplog.at_level(logging.ERROR, logger="agent.outbox"):
        box = Outbox(tmp_path / "file" / "o.sqlite3")
        assert not box.usable
        assert box.put("t", b"x", 1) is None and box.pending(5) == []
    assert box.write_errors == 2 and len(caplog.records) == 2  # the open error, then "not open" once
    box.close()


# --- the forwarder against a fake publisher -------------------------------------------------------------


class FakePublisher:
    """What OutboxForwarder uses of MqttPublisher; records publishes, acks on demand."""

    def __init__(self, connected: bool = True) -> None:
        self.topics = Topics("inspect", "dev")
        self.settings = BrokerSettings()
        self.connected = connected
        self.sent: list[tuple[int, str, bytes]] = []
        self._mid = 0
        self._lock = threading.Lock()

    def publish(self, topic_suffix: str, payload: bytes, qos: int = 0, retain: bool = False) -> PublishTicket:
        with self._lock:
            self._mid += 1
            self.sent.append((self._mid, topic_suffix, payload))
            return PublishTicket(self._mid, topic_suffix, True)


def _forwarder(box: Outbox, pub: FakePublisher, **kw: Any) -> OutboxForwarder:
    return OutboxForwarder(box, cast(MqttPublisher, pub), poll_s=0.01, **kw)


def _wait(predicate: Any, timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return bool(predicate())


def test_forwarder_sends_in_order_within_the_window_and_deletes_on_ack(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite3")
    pub = FakePublisher(connected=False)
    fwd = _forwarder(box, pub, max_in_flight=4)
    for i in range(10):
        fwd.publish_image("cam", f"e{i}", b"jpeg%d" % i)
    fwd.start()
    time.sleep(0.1)
    assert pub.sent == [], "nothing is sent while disconnected"
    pub.connected = True
    assert _wait(lambda: len(pub.sent) == 4)
    time.sleep(0.05)
    assert len(pub.sent) == 4 and fwd.in_flight == 4  # the window is full until acks come
    acked = 0
    while acked < len(pub.sent) and acked < 50:
        fwd.on_published(pub.sent[acked][0])
        acked += 1
        want = min(10, acked + 4)
        assert _wait(lambda: len(pub.sent) >= want)  # noqa: B023 - called at once
    assert [t for _, t, _ in pub.sent] == [f"cam/image/e{i}" for i in range(10)]
    assert _wait(lambda: box.depth == 0)
    fwd.on_published(12345)  # someone else's mid (state, online): ignored
    fwd.stop(timeout=1)
    box.close()


def test_forwarder_resends_a_row_unacknowledged_for_too_long(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite3")
    pub = FakePublisher()
    fwd = _forwarder(box, pub, resend_after_s=0.2)
    fwd.publish_image("cam", "e1", b"x")
    fwd.start()
    assert _wait(lambda: len(pub.sent) == 2)  # the first mid was never acknowledged
    assert pub.sent[0][1:] == pub.sent[1][1:]
    fwd.on_published(pub.sent[0][0])  # the late ack of the forgotten mid deletes nothing...
    assert box.depth == 1
    fwd.on_published(pub.sent[1][0])  # ...the current one does
    assert box.depth == 0
    fwd.stop(timeout=1)
    box.close()


def test_forwarder_publishes_directly_when_the_outbox_cannot_store(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    box = Outbox(tmp_path / "file" / "o.sqlite3")  # unusable
    pub = FakePublisher()
    fwd = _forwarder(box, pub)
    mid = fwd.publish_image("cam", "e1", b"x")
    assert mid == 1 and pub.sent == [(1, "cam/image/e1", b"x")]
    assert fwd.direct == 1 and box.write_errors == 2  # the open, then the put
    box.close()


def test_stop_does_not_wait_while_disconnected(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite3")
    pub = FakePublisher(connected=False)
    fwd = _forwarder(box, pub)
    fwd.publish_image("cam", "e1", b"x")
    fwd.start()
    started = time.monotonic()
    fwd.stop(timeout=5)
    assert time.monotonic() - started < 1 and box.depth == 1
    box.close()
    assert sqlite3.connect(tmp_path / "o.sqlite3").execute("SELECT COUNT(*) FROM outbox").fetchone() == (1,)
