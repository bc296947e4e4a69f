"""The durable store-and-forward outbox: events and images are written to SQLite before they are published,
and a row is deleted only when the broker has acknowledged it (``MqttPublisher.on_published``).

    outbox = Outbox(Path("/var/lib/inspect-agent/outbox.sqlite3"), max_count=10000, max_bytes=200_000_000)
    forwarder = OutboxForwarder(outbox, publisher)      # an EventSink for agent.events.EventPublisher
    publisher.on_published = forwarder.on_published     # (or pass it to MqttPublisher's constructor)
    forwarder.start()

The table is one row per MQTT message, ``id`` (AUTOINCREMENT) being the publishing order. The file is
in WAL mode; ``synchronous=NORMAL`` (the default) survives a crash or SIGKILL of the agent, ``FULL``
also survives a power cut at the price of one fsync per message (numbers in docs/mqtt.md).

One agent per file: the outbox holds an exclusive lock on ``<file>.lock`` while open, and a second agent
configured with the same file stops at start with ``OutboxInUse`` (exit 78) rather than deleting rows the
first one is still sending.

Otherwise never fatal: a corrupt file is moved aside (``<name>.corrupt-<UTC stamp>``) and a new one started; a
file that cannot be opened, or a write that fails (disk full, read-only), is logged once per cause and
counted in ``write_errors``, and the message is published directly instead (not durable, but
inspection goes on). Eviction (oldest first, when ``max_count`` or ``max_bytes`` is exceeded) is
counted in ``evicted`` and logged once per burst.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from agent.messages import Event, SensorEvent, Topics
from agent.publisher import MqttPublisher
from agent.status import ExitStatus, InspectError

__all__ = ["Outbox", "OutboxForwarder", "OutboxInUse", "OutboxRow"]

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    qos INTEGER NOT NULL,
    retain INTEGER NOT NULL,
    created REAL NOT NULL
)
"""


@dataclass(frozen=True)
class OutboxRow:
    id: int
    topic: str  # suffix after <prefix>/<device>/, as MqttPublisher.publish takes it
    payload: bytes
    qos: int
    retain: bool
    created: float  # time.time() when stored


class OutboxInUse(InspectError):
    """Another running process holds this outbox."""


def _claim(path: Path) -> int | None:
    """An exclusive lock on ``<path>.lock`` held until the returned fd is closed (or the process dies);
    None when the lock file cannot be created (the outbox itself will then fail to open and say why)."""
    lock = path.with_name(path.name + ".lock")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise OutboxInUse(
            f"outbox {path} is in use by another running agent (pid {holder}, lock {lock}): "
            "give each agent its own outbox.path",
            ExitStatus.CONFIG,
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


class Outbox:
    """One SQLite connection shared by the event, forwarder and ack threads, serialised by a lock."""

    def __init__(
        self,
        path: Path,
        max_count: int = 10000,
        max_bytes: int = 200_000_000,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
    ) -> None:
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be NORMAL or FULL, got {synchronous!r}")
        self.path = Path(path)
        self.max_count, self.max_bytes, self.synchronous = max_count, max_bytes, synchronous
        self.evicted = self.write_errors = 0
        self._lock = threading.Lock()
        self._depth = self._bytes = 0
        self._burst = 0  # rows evicted in the current eviction burst (logged when it starts and ends)
        self._logged_errors: set[str] = set()
        self._db: sqlite3.Connection | None = None
        self._lock_fd = _claim(self.path)
        try:
            self._db = self._open()
        except (OSError, sqlite3.OperationalError) as exc:  # cannot create or open (permissions, not a dir)
            self._write_failed(exc, "open")
            return
        except sqlite3.DatabaseError as exc:  # not a database, or damaged
            self._db = self._recover(exc)
        if self._db is not None:
            self._depth, self._bytes = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(LENGTH(payload)), 0) FROM outbox"
            ).fetchone()
            if self._depth:
                log.info("outbox %s: %d message(s) pending from a previous run", self.path, self._depth)

    # --- opening -----------------------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=5.0, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={self.synchronous}")
            (check,) = db.execute("PRAGMA quick_check").fetchone()
            if check != "ok":
                raise sqlite3.DatabaseError(f"quick_check: {check}")
            db.execute(_SCHEMA)
        except BaseException:
            db.close()
            raise
        return db

    def _recover(self, exc: sqlite3.DatabaseError) -> sqlite3.Connection | None:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        try:
            self.path.rename(aside)
            for suffix in ("-wal", "-shm"):  # belong to the old file; a new file must not replay them
                extra = self.path.with_name(self.path.name + suffix)
                if extra.exists():
                    extra.rename(aside.with_name(aside.name + suffix))
            log.error(
                "outbox %s is corrupt (%s): moved aside to %s, starting a new one", self.path, exc, aside
            )
            return self._open()
        except (OSError, sqlite3.DatabaseError) as again:
            self._write_failed(again, "recover")
            return None

    # --- writing -----------------------------------------------------------------------------------

    def put(self, topic: str, payload: bytes, qos: int, retain: bool = False) -> int | None:
        """Store one message; returns its row id once committed (the durability point), or None when it
        could not be written (counted in ``write_errors``, logged once per cause)."""
        with self._lock:
            if self._db is None:
                self._write_failed(None, "put")
                return None
            db = self._db
            try:
                db.execute("BEGIN IMMEDIATE")
                cursor = db.execute(
                    "INSERT INTO outbox (topic, payload, qos, retain, created) VALUES (?, ?, ?, ?, ?)",
                    (topic, payload, qos, int(retain), time.time()),
                )
                row_id = cursor.lastrowid
                assert row_id is not None
                depth, size = self._depth + 1, self._bytes + len(payload)
                evicted = 0
                if depth > self.max_count or size > self.max_bytes:
                    evicted, depth, size = self._evict(db, row_id, depth, size)
                db.execute("COMMIT")
            except sqlite3.DatabaseError as exc:  # disk full, read-only, I/O error
                if db.in_transaction:
                    with contextlib.suppress(sqlite3.DatabaseError):
                        db.execute("ROLLBACK")
                self._write_failed(exc, "put")
                return None
            self._depth, self._bytes = depth, size
            self._note_eviction(evicted)
            return row_id

    def _evict(self, db: sqlite3.Connection, newest: int, depth: int, size: int) -> tuple[int, int, int]:
        """Delete the oldest rows (never ``newest``) until within both limits; inside put's transaction."""
        last, count = 0, 0
        for row_id, length in db.execute(
            "SELECT id, LENGTH(payload) FROM outbox WHERE id < ? ORDER BY id", (newest,)
        ):
            if depth <= self.max_count and size <= self.max_bytes:
                break
            last, count, depth, size = row_id, count + 1, depth - 1, size - length
        if count:
            db.execute("DELETE FROM outbox WHERE id <= ?", (last,))
        return count, depth, size

    def _note_eviction(self, evicted: int) -> None:
        if evicted:
            self.evicted += evicted
            if not self._burst:
                log.warning(
                    "outbox full (max_count %d, max_bytes %d): evicting the oldest undelivered messages",
                    self.max_count,
                    self.max_bytes,
                )
            self._burst += evicted
        elif self._burst:
            self._end_burst()

    def _end_burst(self) -> None:
        log.warning("outbox: %d undelivered message(s) evicted (%d since start)", self._burst, self.evicted)
        self._burst = 0

    def _write_failed(self, exc: BaseException | None, what: str) -> None:
        self.write_errors += 1
        cause = str(exc) if exc is not None else "not open"
        if cause not in self._logged_errors:  # once per cause; write_errors counts the rest
            self._logged_errors.add(cause)
            log.error(
                "outbox %s: %s failed (%s); events are published directly (not durable) while it fails",
                self.path,
                what,
                cause,
            )

    def ack(self, row_id: int) -> None:
        """Delete a delivered row (a row already evicted or acknowledged is ignored)."""
        with self._lock:
            if self._db is None:
                return
            try:
                cursor = self._db.execute(
                    "DELETE FROM outbox WHERE id = ? RETURNING LENGTH(payload)", (row_id,)
                )
                row = cursor.fetchone()
                cursor.close()
            except sqlite3.DatabaseError as exc:  # the row stays; it is sent again (at least once)
                self._write_failed(exc, "ack")
                return
            if row is not None:
                self._depth -= 1
                self._bytes -= row[0]

    # --- reading -----------------------------------------------------------------------------------

    def pending(self, limit: int) -> list[OutboxRow]:
        """The oldest ``limit`` undelivered rows, in publishing order."""
        with self._lock:
            if self._db is None:
                return []
            try:
                query = "SELECT id, topic, payload, qos, retain, created FROM outbox ORDER BY id LIMIT ?"
                rows = self._db.execute(query, (limit,)).fetchall()
            except sqlite3.DatabaseError as exc:
                self._write_failed(exc, "read")
                return []
        return [OutboxRow(i, t, bytes(p), q, bool(r), c) for i, t, p, q, r, c in rows]

    @property
    def depth(self) -> int:
        return self._depth

    @property
    def bytes(self) -> int:
        return self._bytes

    @property
    def usable(self) -> bool:
        return self._db is not None

    def close(self) -> None:
        """Checkpoint the WAL into the main file and close (pending rows stay for the next start)."""
        with self._lock:
            if self._burst:
                self._end_burst()
            try:
                self._close_db()
            finally:
                if self._lock_fd is not None:
                    os.close(self._lock_fd)  # releases the lock for the next agent
                    self._lock_fd = None

    def _close_db(self) -> None:
        if self._db is None:
            return
        try:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.DatabaseError as exc:
            log.warning("outbox %s: checkpoint on close failed: %s", self.path, exc)
        self._db.close()
        self._db = None
        if self._depth:
            log.info("outbox %s: %d message(s) kept for the next start", self.path, self._depth)


class OutboxForwarder:
    """An ``EventSink`` that stores every image and event in the outbox, and a thread that publishes the
    stored rows in order while connected, at most ``max_in_flight`` unacknowledged at a time.

    A row is deleted in ``on_published`` (the publisher's ack thread) when its mid is acknowledged. After a
    disconnect paho re-sends its unacknowledged messages itself (same mids); a row still unacknowledged
    ``resend_after_s`` after it was sent (or after the last reconnect) is sent again, so a lost message
    is never stuck. Delivery is at least once: subscribers de-duplicate on ``event_id``.
    """

    def __init__(
        self,
        outbox: Outbox,
        publisher: MqttPublisher,
        max_in_flight: int = 20,
        resend_after_s: float = 15.0,
        poll_s: float = 0.1,
    ) -> None:
        self.outbox = outbox
        self.publisher = publisher
        self.topics: Topics = publisher.topics
        self.qos = publisher.settings.qos_events
        self.max_in_flight, self.resend_after_s, self.poll_s = max_in_flight, resend_after_s, poll_s
        self.direct = 0  # messages published directly because the outbox could not store them
        self._lock = threading.Lock()  # held around publish() + recording, and in on_published
        self._by_mid: dict[int, int] = {}  # mid -> row id
        self._by_row: dict[int, tuple[int, float]] = {}  # row id -> (mid, monotonic time sent)
        self._connected_at = 0.0
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="outbox", daemon=True)

    # --- EventSink ---------------------------------------------------------------------------------

    def publish_image(self, camera: str, event_id: str, jpeg: bytes, raw: bool = False) -> int | None:
        return self._store(self._suffix(self.topics.image(camera, event_id, raw)), jpeg)

    def publish_event(self, camera: str, event: Event) -> int | None:
        return self._store(self._suffix(self.topics.event(camera)), event.model_dump_json().encode())

    def publish_sensor_event(self, group: str, event: SensorEvent) -> int | None:
        return self._store(self._suffix(self.topics.event(group)), event.model_dump_json().encode())

    def _suffix(self, topic: str) -> str:
        return topic[len(self.topics.base) + 1 :]

    def _store(self, suffix: str, payload: bytes) -> int | None:
        """The row id; when the outbox cannot store it, the message is published directly (its mid)."""
        row_id = self.outbox.put(suffix, payload, self.qos)
        if row_id is None:
            self.direct += 1
            ticket = self.publisher.publish(suffix, payload, self.qos)
            return ticket.mid if ticket.queued else None
        self._wake.set()
        return row_id

    # --- acks --------------------------------------------------------------------------------------

    def on_published(self, mid: int) -> None:
        """``MqttPublisher.on_published``: the broker acknowledged ``mid``; delete its row."""
        with self._lock:
            row_id = self._by_mid.pop(mid, None)
            if row_id is None:
                return  # not ours (online, state, replies) or already re-sent under another mid
            self._by_row.pop(row_id, None)
            self.outbox.ack(row_id)
        self._wake.set()

    @property
    def in_flight(self) -> int:
        with self._lock:
            return len(self._by_row)

    # --- the forwarding thread ---------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Wait (bounded, only while connected) for pending rows to be delivered, then end the thread.
        Whatever is left stays in the outbox for the next start."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.publisher.connected and self.outbox.depth:
            self._wake.set()
            time.sleep(0.02)
        self._stopping.set()
        self._wake.set()
        self._thread.join(max(0.1, deadline - time.monotonic()))

    def _run(self) -> None:
        was_connected = False
        while not self._stopping.is_set():
            connected = self.publisher.connected
            if connected and not was_connected:
                self._connected_at = time.monotonic()
            was_connected = connected
            if connected:
                try:
                    self._forward()
                except Exception:  # pragma: no cover - a bug here must not stop forwarding for good
                    log.exception("outbox forwarding failed")
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def _forward(self) -> None:
        """Publish the oldest rows not in flight, up to ``max_in_flight`` unacknowledged."""
        now = time.monotonic()
        with self._lock:
            for row_id, (mid, sent) in list(self._by_row.items()):  # bounded: at most max_in_flight
                if now - max(sent, self._connected_at) > self.resend_after_s:
                    del self._by_row[row_id]
                    self._by_mid.pop(mid, None)
            room = self.max_in_flight - len(self._by_row)
            if room <= 0:
                return
            busy = set(self._by_row)
        rows = [r for r in self.outbox.pending(room + len(busy)) if r.id not in busy][:room]
        for row in rows:
            with self._lock:
                if not self.publisher.connected:
                    return
                ticket = self.publisher.publish(row.topic, row.payload, row.qos, row.retain)
                if not ticket.queued:
                    return  # paho's queue is full; try again on the next round
                if row.qos > 0:
                    self._by_mid[ticket.mid] = row.id
                    self._by_row[row.id] = (ticket.mid, time.monotonic())
                    continue
            self.outbox.ack(row.id)  # QoS 0: no PUBACK will come; written to the socket is delivered
